"""What one unit responds to: the image patches that excite it most (lecture 12,
after Girshick et al. 2014 and Zeiler & Fergus 2014).

A unit of a deep layer sees only part of the input, its receptive field; cropping each
of the top activations' receptive fields from a gallery shows the unit's preferred pattern.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.backbones import Backbone

# Activations and normalisations made the identity while measuring a receptive field (see _geometry).
_IDENTITY = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Hardswish,
             nn.Hardsigmoid, nn.Hardtanh, nn.Sigmoid, nn.Tanh, nn.Mish, nn.Dropout,
             nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm, nn.GroupNorm,
             nn.LayerNorm, nn.LocalResponseNorm)
_MAX_MEASURE_SIZE = 2048


@dataclass(frozen=True)
class _Geometry:
    rf: int  # receptive field side, input pixels
    stride: int  # input pixels between neighbouring units
    offset: tuple[int, int]  # (y, x) input position of the top-left pixel of unit (0, 0)'s field


_CACHE: dict[tuple[str, str, int], _Geometry] = {}


def _wiring(model: Backbone, layer: str, narrow: bool) -> nn.Module:
    """A copy of the stages up to ``layer`` with the same wiring (kernel sizes, strides,
    padding, dilation, skips, pools) made linear and positive: every convolution averages
    its inputs, normalisations and activations are the identity, max pools average.

    ``narrow`` also cuts every convolution to one input and one output channel (all channels
    of the uniform network carry the same values anyway), which makes the measurement about
    a hundred times cheaper; it fails on wiring that changes channel counts elsewhere
    (concatenation), where the full-width copy serves.
    """
    stages = []
    for name, stage in model.stages.items():
        stages.append(stage)
        if name == layer:
            break
    net = copy.deepcopy(nn.Sequential(*stages)).float().cpu()
    for parent in list(net.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, _IDENTITY):
                setattr(parent, child_name, nn.Identity())
            elif isinstance(child, nn.MaxPool2d):
                setattr(parent, child_name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding,
                                                         child.ceil_mode))
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            if narrow:
                m.weight = nn.Parameter(m.weight.new_empty(1, 1, *m.weight.shape[2:]))
                m.in_channels = m.out_channels = m.groups = 1
            m.weight.data.fill_(1.0 / m.weight[0].numel())
            m.bias = None
    return net.eval().requires_grad_(False)


def _geometry(model: Backbone, layer: str, size: int) -> _Geometry:
    """Receptive field, stride and offset of ``layer``'s units, measured by back-propagation.

    Stride is ``size`` over the layer's feature size at ``size``. The field is the bounding
    box of the non-zero input gradient of the centre unit (summed over channels) on a
    constant grey input. To make that robust, it is measured on a copy of the stages with
    the same wiring but uniform positive weights (each convolution an average, cut to one
    channel where the wiring allows), identity activations and normalisations, and average
    instead of max pools (see :func:`_wiring`): the gradient is then
    positive wherever a path of connections exists, whatever the input, with no dead or
    saturated ReLU6 units, no cancelling weights, no max-pool routing to one pixel and no
    underflow at the field's faint edge. (So it is the field of the wiring; a learned
    weight that happens to be zero does not shrink it.) Where the field touches the
    border of the input it is clipped, so the input is doubled until it does not (up to
    2048 px, beyond which the clipped size is reported). The offset (where unit (0, 0)'s
    field starts) comes from that measurement; with TensorFlow "same" padding it may be a
    pixel off for sizes that are not a multiple of the stride.
    """
    key = (model.name, layer, size)
    if key in _CACHE:
        return _CACHE[key]
    model.check_layers([layer])
    if size < 8:
        raise ValueError(f"size must be >= 8, got {size}")
    try:
        net, channels = _wiring(model, layer, narrow=True), 1
        with torch.no_grad():
            feat = net(torch.full((1, channels, size, size), 0.5))
    except RuntimeError:
        net, channels = _wiring(model, layer, narrow=False), 3
        with torch.no_grad():
            feat = net(torch.full((1, channels, size, size), 0.5))
    if feat.ndim != 4:
        raise ValueError(f"layer {layer!r} has no spatial map")
    stride = max(1, round(size / feat.shape[-1]))
    side = size
    while True:
        x = torch.full((1, channels, side, side), 0.5, requires_grad=True)
        out = net(x)
        cy, cx = out.shape[-2] // 2, out.shape[-1] // 2
        (g,) = torch.autograd.grad(out[0, :, cy, cx].sum(), x)
        mask = g[0].abs().amax(0) > 0
        ys = mask.any(1).nonzero().flatten()
        xs = mask.any(0).nonzero().flatten()
        if len(ys) == 0:
            raise ValueError(f"layer {layer!r}: the centre unit has no input gradient; cannot measure its field")
        y0, y1, x0, x1 = int(ys[0]), int(ys[-1]), int(xs[0]), int(xs[-1])
        touches = y0 == 0 or x0 == 0 or y1 == side - 1 or x1 == side - 1
        if not touches or side * 2 > _MAX_MEASURE_SIZE:
            break
        side *= 2
    rf = max(y1 - y0 + 1, x1 - x0 + 1)
    geo = _Geometry(rf, stride, (y0 - cy * stride, x0 - cx * stride))
    _CACHE[key] = geo
    return geo


def receptive_field(model: Backbone, layer: str, size: int = 224) -> tuple[int, int]:
    """(receptive field side in input pixels, stride) of one unit of ``layer``.

    Measured, not computed from a table, so it holds for any backbone: see
    :func:`_geometry` for how. Results are cached per (model name, layer, size).
    """
    geo = _geometry(model, layer, size)
    return geo.rf, geo.stride


@dataclass
class Patches:
    """The top-k receptive-field crops of one channel over a gallery, strongest first.

    ``sources`` holds (image index, y, x) of each unit in the layer's feature map.
    """

    images: torch.Tensor  # (k, 3, p, p) in [0, 1]
    activations: torch.Tensor  # (k,)
    sources: list[tuple[int, int, int]]
    receptive_field: int


def max_activating_patches(model: Backbone, gallery: torch.Tensor, layer: str, channel: int, k: int = 9,
                           batch: int = 16, progress: Callable[[int, int], None] | None = None,
                           patch_size: int | None = None, fill: float = 0.5) -> Patches:
    """The ``k`` units of ``channel`` in ``layer`` with the largest activation over ``gallery``.

    Every (image, y, x) unit is a candidate once, so several patches may come from one
    image but never the same position twice. Each crop is the unit's receptive field
    (padded with grey ``fill`` beyond the image's border), resized to ``patch_size``
    (default: the field itself, at most 128 px). Sorted by activation, largest first;
    k is clipped to the number of units.
    """
    model.check_layers([layer])
    if gallery.ndim != 4 or gallery.shape[1] != 3 or gallery.shape[0] == 0:
        raise ValueError(f"gallery must be (N, 3, H, W) with N >= 1, got {tuple(gallery.shape)}")
    if k < 1 or batch < 1:
        raise ValueError(f"k and batch must be >= 1, got k={k}, batch={batch}")
    n, _, h, w = gallery.shape
    maps = []
    with torch.no_grad():
        for start in range(0, n, batch):
            a = model.features(gallery[start:start + batch], [layer])[layer]
            if a.ndim != 4:
                raise ValueError(f"layer {layer!r} has no spatial map")
            if not 0 <= channel < a.shape[1]:
                raise ValueError(f"channel {channel} out of range: {layer!r} has {a.shape[1]} channels")
            maps.append(a[:, channel].float())
            if progress is not None:
                progress(min(start + batch, n), n)
    acts = torch.cat(maps)  # (N, fh, fw)
    fh, fw = acts.shape[1:]
    k = min(k, acts.numel())
    values, flat = torch.topk(acts.flatten(), k)  # sorted, largest first; each unit at most once
    geo = _geometry(model, layer, max(h, w))
    rf = geo.rf
    p = patch_size or min(rf, 128)
    # Pad once so every field lies inside; then each crop is a plain slice.
    margin = rf + geo.stride + abs(geo.offset[0]) + abs(geo.offset[1])
    padded = F.pad(gallery, (margin, margin, margin, margin), value=fill)
    crops, sources = [], []
    for idx in flat.tolist():
        i, rem = divmod(idx, fh * fw)
        y, x = divmod(rem, fw)
        top = y * geo.stride + geo.offset[0] + margin
        left = x * geo.stride + geo.offset[1] + margin
        crops.append(padded[i, :, top:top + rf, left:left + rf])
        sources.append((i, y, x))
    crops_t = torch.stack(crops).float()
    if p != rf:
        crops_t = F.interpolate(crops_t, size=(p, p), mode="bilinear", align_corners=False,
                                antialias=True).clamp(0, 1)
    return Patches(crops_t, values, sources, rf)
