"""Perceptual losses in one place: content, Gram-matrix style and total variation.

Shared by the optimisation methods here (texture synthesis, Gatys style transfer,
feature inversion) and by fast style training (``training.losses``), which sits a
layer above. Each term is normalised by the size of its target (the squared norm of
the target feature or Gram), so one set of weights serves every layer and backbone.
Grams and losses are computed in fp32 even when the network runs in bf16.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch


def gram(feat: torch.Tensor) -> torch.Tensor:
    """Gram matrix F F^T / (H W) of (B, C, H, W) features, in fp32: (B, C, C)."""
    b, c, h, w = feat.shape
    f = feat.float().reshape(b, c, h * w)
    return f @ f.transpose(1, 2) / (h * w)


def _relative_sq_error(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image ||x - t||^2 / ||t||^2, shape (B,)."""
    dims = tuple(range(1, x.dim()))
    x, target = x.float(), target.float()
    return ((x - target) ** 2).sum(dims) / (target ** 2).sum(dims).clamp_min(1e-8)


def content_loss(feats: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor],
                 layer_weights: Mapping[str, float]) -> torch.Tensor:
    """Feature reconstruction loss, each layer relative to its target, per image: (B,)."""
    total = sum(w * _relative_sq_error(feats[l], targets[l]) for l, w in layer_weights.items())
    return total / sum(layer_weights.values())


def style_loss(feats: Mapping[str, torch.Tensor], target_grams: Mapping[str, torch.Tensor],
               layer_weights: Mapping[str, float]) -> torch.Tensor:
    """Gram-matrix style loss, each layer relative to its target Gram, per image: (B,).

    ``target_grams[l]`` is (B, C, C) or (1, C, C) to broadcast over the batch.
    """
    total = 0.0
    for l, w in layer_weights.items():
        g = gram(feats[l])
        t = target_grams[l].expand_as(g)
        total = total + w * _relative_sq_error(g, t)
    return total / sum(layer_weights.values())


def tv_loss(img: torch.Tensor) -> torch.Tensor:
    """Total variation as the mean absolute difference of neighbouring pixels, per image: (B,)."""
    img = img.float()
    dx = (img[..., :, 1:] - img[..., :, :-1]).abs().mean(dim=(1, 2, 3))
    dy = (img[..., 1:, :] - img[..., :-1, :]).abs().mean(dim=(1, 2, 3))
    return dx + dy


__all__ = ["gram", "content_loss", "style_loss", "tv_loss"]
