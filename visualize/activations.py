"""What a layer responds to: its activation maps for one image (Yosinski et al. 2015)."""

from __future__ import annotations

import math

import torch

from models.backbones import Backbone


def activation_maps(model: Backbone, image: torch.Tensor, layer: str) -> torch.Tensor:
    """The (C, h, w) activations of ``layer`` for the first image, each map scaled to [0, 1]."""
    with torch.no_grad():
        a = model.features(image[:1], [layer])[layer][0].float()
    lo = a.flatten(1).amin(1)[:, None, None]
    hi = a.flatten(1).amax(1)[:, None, None]
    return (a - lo) / (hi - lo).clamp_min(1e-6)


def strongest_channel(model: Backbone, image: torch.Tensor, layer: str) -> int:
    """The channel of ``layer`` with the largest mean activation for the first image."""
    with torch.no_grad():
        a = model.features(image[:1], [layer])[layer][0]
    return int(a.float().mean(dim=(1, 2)).argmax())


def tile(maps: torch.Tensor, max_maps: int = 64, pad: int = 1) -> torch.Tensor:
    """Maps (C, h, w) laid out as a near-square grid (H, W), separated by ``pad`` zero pixels."""
    maps = maps[:max_maps]
    c, h, w = maps.shape
    cols = math.ceil(math.sqrt(c))
    rows = math.ceil(c / cols)
    grid = maps.new_zeros(rows * (h + pad) - pad, cols * (w + pad) - pad)
    for i in range(c):
        r, q = divmod(i, cols)
        grid[r * (h + pad):r * (h + pad) + h, q * (w + pad):q * (w + pad) + w] = maps[i]
    return grid
