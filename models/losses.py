"""Perceptual losses in one place: each backbone's loss layers, and the terms (content, Gram-matrix
style, colour distribution, tone, total variation).

Shared by the optimisation methods (``visualize``: texture synthesis, Gatys style transfer,
feature inversion) and by fast style training (``training.losses``), both a layer above. Each term is normalised by the size of its target (the squared norm of
the target feature or Gram), so one set of weights serves every layer and backbone.
Grams and losses are computed in fp32 even when the network runs in bf16.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossLayers:
    """Which layers of one backbone carry its style and content, for every method that uses them.

    ``style`` maps each style layer to its weight in fast style training (per-image optimisation
    weighs them equally); ``content`` holds the content layers of training, shallow to deep;
    per-image optimisation matches ``deep_content`` (default: the deepest content layer), where a
    result may move further from the photo's pixels.
    """

    style: Mapping[str, float]
    content: tuple[str, ...]
    deep_content: str | None = None

    @property
    def style_layers(self) -> tuple[str, ...]:
        return tuple(self.style)

    @property
    def optimisation_content(self) -> str:
        return self.deep_content or self.content[-1]


_GATYS_VGG19 = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")

# The loss layers of each backbone, written once. efficientnet_lite0 (measured, shared notes): the
# outputs of the blocks, signed; content at block2 and block4 together keeps faces in training
# (block4 alone distorts them), block4 alone serves per-image optimisation. VGG16: Johnson et al.
# 2016 (style relu1_2, relu2_2, relu3_3, relu4_3; content relu2_2). VGG19: Gatys et al. 2016.
LOSS_LAYERS: dict[str, LossLayers] = {
    "efficientnet_lite0": LossLayers(style={"stem": 0.2, "block0": 0.2, "block2": 1.0, "block4": 1.0, "block7": 1.0},
                                     content=("block2", "block4")),
    "vgg16": LossLayers(style={"relu1_2": 1.0, "relu2_2": 1.0, "relu3_3": 1.0, "relu4_3": 1.0},
                        content=("relu2_2",), deep_content="relu4_2"),
    "vgg19": LossLayers(style=dict.fromkeys(_GATYS_VGG19, 1.0), content=("relu2_2",), deep_content="relu4_2"),
}


def loss_layers(backbone: str) -> LossLayers:
    """The loss layers of ``backbone``, or a ValueError naming the known backbones."""
    try:
        return LOSS_LAYERS[backbone]
    except KeyError:
        raise ValueError(f"no loss layers for backbone {backbone!r}; known: {sorted(LOSS_LAYERS)}") from None


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


def pooled(x: torch.Tensor, factor: int) -> torch.Tensor:
    """``x`` average-pooled by ``factor`` (itself for 1): the scale at which a style term sees strokes
    ``factor`` times bigger. An image smaller than ``factor`` either way is pooled by its smaller side
    (a 5x3 image by 3, a 1x1 by 1), not refused ("Output size is too small")."""
    factor = max(1, min(int(factor), *x.shape[-2:]))
    return x if factor == 1 else F.avg_pool2d(x, factor)


def image_pixels(img: torch.Tensor, count: int | None = None) -> torch.Tensor:
    """The RGB pixels of ``img`` (B, 3, H, W) as (B, count, 3), taken evenly over the image
    (all of them for ``count`` None): the palette :func:`color_distribution_loss` compares with."""
    pix = img.float().flatten(2).transpose(1, 2)
    if count is None or count == pix.shape[1]:
        return pix
    return pix[:, torch.linspace(0, pix.shape[1] - 1, count, device=pix.device).long()]


# The painting's colour variance is floored at that of a standard deviation of 0.1 (25 grey levels): a
# flat painting (a wall of one colour) would otherwise divide by 1e-6 and give losses of millions
# (2.7e6 against 12.9 for Gatys from a photo), which swamp every other term.
COLOR_VARIANCE_FLOOR = 1e-2


def color_distribution_loss(img: torch.Tensor, target_pixels: torch.Tensor, samples: int = 4096,
                            directions: int = 32, generator: torch.Generator | None = None) -> torch.Tensor:
    """How far the colours of each image are from a painting's, per image: (B,).

    Sliced Wasserstein distance between the RGB pixel distributions: ``samples`` random pixels
    of each image and of ``target_pixels`` ((B, P, 3) or (1, P, 3), values in [0, 1]) are
    projected on ``directions`` random unit vectors, sorted, and compared; the squared
    distance is divided by the painting's own colour variance along the same directions (at least
    :data:`COLOR_VARIANCE_FLOOR`), so the term is about 1 for a photo and 0 for the painting's palette. Gram matrices of the
    first layers hold mostly the mean colour; this term asks for the painting's whole
    palette, its saturated patches included (per-image optimisation moved Composition VII from
    beige to its reds, blues and yellows with it).
    """
    b = img.shape[0]
    pix = img.float().flatten(2).transpose(1, 2)  # (B, HW, 3)
    target = target_pixels.float().expand(b, -1, -1)
    dev = img.device
    i = torch.randint(pix.shape[1], (b, samples), device=dev, generator=generator)
    j = torch.randint(target.shape[1], (b, samples), device=dev, generator=generator)
    a = torch.gather(pix, 1, i[..., None].expand(-1, -1, 3))
    t = torch.gather(target, 1, j[..., None].expand(-1, -1, 3))
    d = torch.randn(3, directions, device=dev, generator=generator)
    d = d / d.norm(dim=0, keepdim=True)
    pa, _ = (a @ d).sort(dim=1)
    pt, _ = (t @ d).sort(dim=1)
    return ((pa - pt) ** 2).mean(dim=(1, 2)) / pt.var(dim=1).mean(dim=1).clamp_min(COLOR_VARIANCE_FLOOR)


def grey(img: torch.Tensor) -> torch.Tensor:
    """The luma (BT.601 weights) of RGB images (B, 3, H, W), in fp32: (B, 1, H, W)."""
    weights = torch.tensor([0.299, 0.587, 0.114], device=img.device).view(1, 3, 1, 1)
    return (img.float() * weights).sum(1, keepdim=True)


def correlation(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Pearson correlation of each image's values in ``a`` and ``b`` (B, ...), per image: (B,).
    ``eps`` bounds the product of the norms from below, for flat images."""
    a, b = a.flatten(1), b.flatten(1)
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(eps)


def tone_loss(img: torch.Tensor, photo: torch.Tensor, factor: int = 8) -> torch.Tensor:
    """How far the light-and-dark layout of each image is from the photo's, per image: (B,), in [0, 2].

    One minus the correlation of the grey images average-pooled by ``factor``: 0 when the output
    is any brighter, darker or flatter copy of the photo's layout, 2 when it is the photo's
    negative. The colour term asks for the painting's pixel distribution and cares not which
    pixel is which, and neither the content features nor the edge measure of the calibration
    (gradient magnitudes) see an inversion: a five-style network learned to paint the dark
    door light and the white clouds dark for every style.
    """
    factor = max(1, min(factor, *img.shape[-2:]))
    return 1 - correlation(pooled(grey(img), factor), pooled(grey(photo), factor), eps=1e-6)


def tv_loss(img: torch.Tensor) -> torch.Tensor:
    """Total variation as the mean absolute difference of neighbouring pixels, per image: (B,)."""
    img = img.float()
    dx = (img[..., :, 1:] - img[..., :, :-1]).abs().mean(dim=(1, 2, 3))
    dy = (img[..., 1:, :] - img[..., :-1, :]).abs().mean(dim=(1, 2, 3))
    return dx + dy


__all__ = ["gram", "content_loss", "style_loss", "color_distribution_loss", "grey", "correlation", "tone_loss",
           "tv_loss"]
