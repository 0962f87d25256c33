"""The input gradient of EfficientNet-Lite0 written out as forward ops, so the fast engines run it.

ONNX has no autograd, so the backward pass of the saliency and DeepDream effects is spelled out
here as ordinary operations (transposed convolutions, masks, sums) and exported with the forward
pass into one ONNX graph per input size: ONNX Runtime or OpenVINO then compute the gradient of a
class score (or of DeepDream's objective) with respect to the pixels without PyTorch's per-op
dispatch, which at the live effects' 160-256 px cost more than the arithmetic. The network is the
copy with its BatchNorms folded (``models.backbones.fold_batchnorm``); the result matches
``torch.autograd.grad`` on it to rounding (a test checks it).

Objectives: ``class`` (the logit of a class given as weights over the 1000 classes; all zeros: the
top class of each image), ``guided`` (the same through guided backpropagation: only positive
gradients pass back through the ReLU6s), and ``dream:LAYER`` (the mean squared activation of a
layer, DeepDream's ascent direction).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.backbones import Backbone, fold_batchnorm
from models.efficientnet_lite import Conv2dSame, MBConvBlock


def _pads(conv: nn.Conv2d, h: int, w: int) -> tuple[int, int, int, int]:
    """TensorFlow's "same" padding (left, right, top, bottom) of ``conv`` for an input of h x w."""
    (kh, kw), (sh, sw) = conv.weight.shape[-2:], conv.stride
    ph = max((math.ceil(h / sh) - 1) * sh + kh - h, 0)
    pw = max((math.ceil(w / sw) - 1) * sw + kw - w, 0)
    return pw // 2, pw - pw // 2, ph // 2, ph - ph // 2


def _conv(conv: nn.Conv2d, x: torch.Tensor, tape: list) -> torch.Tensor:
    h, w = int(x.shape[-2]), int(x.shape[-1])
    pads = _pads(conv, h, w)
    xp = F.pad(x, pads) if any(pads) else x
    tape.append((pads, (int(xp.shape[-2]), int(xp.shape[-1])), (h, w)))
    return F.conv2d(xp, conv.weight, conv.bias, conv.stride, 0, 1, conv.groups)


def _conv_back(conv: nn.Conv2d, g: torch.Tensor, saved) -> torch.Tensor:
    pads, (hp, wp), (h, w) = saved
    (kh, kw), (sh, sw) = conv.weight.shape[-2:], conv.stride
    extra = (hp - ((int(g.shape[-2]) - 1) * sh + kh), wp - ((int(g.shape[-1]) - 1) * sw + kw))
    gx = F.conv_transpose2d(g, conv.weight, None, conv.stride, 0, extra, conv.groups)
    return gx[..., pads[2]:pads[2] + h, pads[0]:pads[0] + w]


def _relu6(x: torch.Tensor, tape: list) -> torch.Tensor:
    tape.append(((x > 0) & (x < 6)).to(x.dtype))
    return x.clamp(0, 6)


def _relu6_back(g: torch.Tensor, mask: torch.Tensor, guided: bool) -> torch.Tensor:
    return (g.clamp_min(0) if guided else g) * mask


class InputGradient(nn.Module):
    """The gradient of an objective with respect to RGB [0, 1] input, forward ops only.

    ``forward(image, class_weights)`` -> (gradient like ``image``, logits or the layer's activation);
    ``class_weights`` (B, 1000) weighs the logits ("class" and "guided"; zeros: the top class)."""

    def __init__(self, backbone: Backbone, objective: str = "class"):
        super().__init__()
        if not has_written_out_gradient(backbone):
            raise ValueError("the written-out gradient covers this project's efficientnet_lite0 (same-padded "
                             f"convolutions), not {backbone.name!r} as given")
        self.net = fold_batchnorm(backbone)
        if self.net is backbone or any(isinstance(m, nn.BatchNorm2d) for m in self.net.modules()):
            raise ValueError("efficientnet_lite0 could not be folded")
        self.guided = objective == "guided"
        self.layer = objective.split(":", 1)[1] if objective.startswith("dream:") else None
        if self.layer is not None:
            self.net.check_layers([self.layer])
        elif objective not in ("class", "guided"):
            raise ValueError(f"unknown objective {objective!r}: class, guided or dream:LAYER")
        linear = self.net.classifier[-1]
        self.register_buffer("fc_weight", linear.weight.detach().clone(), persistent=False)

    def _stage(self, stage: nn.Module, x: torch.Tensor, tape: list) -> torch.Tensor:
        if isinstance(stage, MBConvBlock):
            h = x
            if stage.has_expand:
                h = _relu6(_conv(stage._expand_conv, h, tape), tape)
            h = _relu6(_conv(stage._depthwise_conv, h, tape), tape)
            h = _conv(stage._project_conv, h, tape)
            return h + x if stage.skip else h
        conv, _, _ = stage  # stem and head: conv, (folded BatchNorm), ReLU6
        return _relu6(_conv(conv, x, tape), tape)

    def _stage_back(self, stage: nn.Module, g: torch.Tensor, tape: list) -> torch.Tensor:
        if isinstance(stage, MBConvBlock):
            skip = g if stage.skip else None
            g = _conv_back(stage._project_conv, g, tape.pop())
            g = _relu6_back(g, tape.pop(), self.guided)
            g = _conv_back(stage._depthwise_conv, g, tape.pop())
            if stage.has_expand:
                g = _relu6_back(g, tape.pop(), self.guided)
                g = _conv_back(stage._expand_conv, g, tape.pop())
            return g + skip if skip is not None else g
        conv, _, _ = stage
        g = _relu6_back(g, tape.pop(), self.guided)
        return _conv_back(conv, g, tape.pop())

    def forward(self, image: torch.Tensor, class_weights: torch.Tensor):
        net = self.net
        h = (image - net.mean) / net.std
        tapes: list[list] = []
        stages = []
        for name, stage in net.stages.items():
            tape: list = []
            h = self._stage(stage, h, tape)
            tapes.append(tape)
            stages.append(stage)
            if name == self.layer:
                break
        if self.layer is not None:  # d mean(a^2) / d a
            g, out = 2 * h / h[0].numel(), h
        else:
            hw = int(h.shape[-2]) * int(h.shape[-1])
            logits = net.classifier(h)
            top = (logits == logits.max(dim=1, keepdim=True).values).to(logits.dtype)
            weights = torch.where(class_weights.abs().sum(dim=1, keepdim=True) > 0, class_weights, top)
            g = (weights @ self.fc_weight)[:, :, None, None].expand_as(h) / hw
            out = logits
        for stage, tape in zip(reversed(stages), reversed(tapes)):
            g = self._stage_back(stage, g, tape)
        return g / net.std, out


def has_written_out_gradient(backbone: Backbone) -> bool:
    """Whether :class:`InputGradient` covers ``backbone``: EfficientNet-Lite0 as this project builds
    it (its same-padded convolutions); other networks (VGG) keep PyTorch's autograd."""
    return backbone.name == "efficientnet_lite0" and any(isinstance(m, Conv2dSame) for m in backbone.modules())


def gradient_fn(backbone: Backbone, objective: str = "class") -> InputGradient | None:
    """``InputGradient`` for ``backbone``, or None where the gradient is not written out (VGG)."""
    if not has_written_out_gradient(backbone):
        return None
    return InputGradient(backbone, objective).eval()
