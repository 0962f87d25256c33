"""What the network's weights look like (lecture 12: first-layer filters as images).

The first layer's 3-channel kernels can be shown as small colour images (oriented edges,
colour blobs); deeper layers' kernels mix many channels, so they are shown per
(filter, input channel) pair as a grey grid, which says less but still shows structure.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.backbones import Backbone


def _minmax(w: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """Scale ``w`` to [0, 1] over ``dims``; a constant block becomes 0.5 (no contrast to show)."""
    lo = w.amin(dim=dims, keepdim=True)
    hi = w.amax(dim=dims, keepdim=True)
    span = hi - lo
    out = (w - lo) / span.clamp_min(1e-12)
    return torch.where(span > 0, out, torch.full_like(out, 0.5))


def _convs(module: nn.Module) -> list[nn.Conv2d]:
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


def first_layer_filters(model: Backbone, scale: int = 8, pad: int = 1) -> torch.Tensor:
    """The kernels of the first convolution as colour tiles in a near-square grid.

    Each kernel is min-max scaled on its own (over its 3 channels together, so colours keep
    their balance) and enlarged ``scale`` times (nearest). Tiles are separated by ``pad``
    white pixels. Returns (3, H, W) in [0, 1] on the model's device.
    """
    if scale < 1 or pad < 0:
        raise ValueError(f"scale must be >= 1 and pad >= 0, got scale={scale}, pad={pad}")
    conv = next((c for stage in model.stages.values() for c in _convs(stage)), None)
    if conv is None:
        raise ValueError(f"{model.name} has no Conv2d in its stages")
    w = conv.weight.detach().float()
    if w.shape[1] != 3:
        raise ValueError(f"the first convolution of {model.name} has {w.shape[1]} input channels, not 3")
    tiles = _minmax(w, (1, 2, 3))
    tiles = F.interpolate(tiles, scale_factor=scale, mode="nearest")
    n, _, h, wd = tiles.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = tiles.new_ones(3, rows * (h + pad) - pad, cols * (wd + pad) - pad)
    for i in range(n):
        r, q = divmod(i, cols)
        grid[:, r * (h + pad):r * (h + pad) + h, q * (wd + pad):q * (wd + pad) + wd] = tiles[i]
    return grid


def layer_filters(model: Backbone, layer: str, max_filters: int = 32, max_inputs: int = 16, scale: int = 8,
                  pad: int = 1, index: int = 0) -> torch.Tensor:
    """The weights of a convolution in stage ``layer`` as a grey grid (H, W) in [0, 1].

    One row per output filter (up to ``max_filters``), one column per input channel it
    sees (up to ``max_inputs``; a depthwise convolution has one column). The convolution is
    the ``index``-th Conv2d inside the stage (0: the first; in an EfficientNet block 0 is
    the 1x1 expansion where there is one, 1 the depthwise kernel). Each kernel is min-max
    scaled on its own; 1x1 kernels hold a single weight, so they are scaled per filter
    across its shown inputs instead (which inputs a filter favours). Separators are
    ``pad`` white pixels. Raises ValueError when the stage has no such convolution.
    """
    model.check_layers([layer])
    if max_filters < 1 or max_inputs < 1 or scale < 1 or pad < 0:
        raise ValueError("max_filters, max_inputs and scale must be >= 1 and pad >= 0")
    convs = _convs(model.stages[layer])
    if not convs:
        raise ValueError(f"layer {layer!r} of {model.name} holds no convolution "
                         f"({type(model.stages[layer]).__name__}); pick a conv layer")
    if not 0 <= index < len(convs):
        raise ValueError(f"layer {layer!r} holds {len(convs)} convolution(s); index {index} is out of range")
    w = convs[index].weight.detach().float()[:max_filters, :max_inputs]
    o, i, kh, kw = w.shape
    tiles = _minmax(w, (1, 2, 3) if kh * kw == 1 else (2, 3))
    tiles = F.interpolate(tiles, scale_factor=scale, mode="nearest")  # (o, i, kh*s, kw*s)
    h, wd = tiles.shape[-2:]
    grid = tiles.new_ones(o * (h + pad) - pad, i * (wd + pad) - pad)
    for r in range(o):
        for q in range(i):
            grid[r * (h + pad):r * (h + pad) + h, q * (wd + pad):q * (wd + pad) + wd] = tiles[r, q]
    return grid
