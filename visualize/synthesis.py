"""Image synthesis by optimising pixels: each backbone's settings and texture synthesis.

- ``texture_synthesis``: match the Gram matrices of a texture from noise (Gatys et al. 2015).
- Gatys style transfer, with the same settings, is in :mod:`visualize.style_transfer`.

Speed: the targets (style Grams, content features) are computed once per scale; each
loss evaluation is one ``features()`` call that stops at the deepest layer needed, on a copy of
the network with its BatchNorms folded into the convolutions and each convolution fused with its
activation (:func:`models.backbones.fast_frozen_copy`), and the
losses come from :mod:`models.losses` (each term relative to its target's size).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from models.backbones import Backbone, fast_frozen_copy, optimisation_memory_format
from models.losses import gram, image_pixels, loss_layers, style_loss, tv_loss
from visualize.optimise import NOISE, Progress, StepCounter, check_optimizer, optimise

LayerSpec = Sequence[str] | Mapping[str, float] | None


@dataclass(frozen=True)
class SynthesisConfig:
    """Loss settings for pixel optimisation on one backbone.

    Weights apply to loss terms that are each normalised by the size of their target
    (see :mod:`models.losses`), so they are comparable across layers and backbones.
    ``style_layer_weights`` pairs with ``style_layers`` (None: equal weights).
    """

    style_layers: tuple[str, ...]
    content_layers: tuple[str, ...]
    style_weight: float
    content_weight: float
    tv_weight: float
    steps: int = 300  # L-BFGS iterations for a finished look (150 already painterly at 256-320 px)
    style_layer_weights: tuple[float, ...] | None = None
    # Grams also of the result average-pooled by these factors (bigger strokes), and the weight of
    # the painting's colour distribution inside the style term: as the training loss has them.
    style_scales: tuple[int, ...] = (1,)
    color_weight: float = 0.0

    def style_layer_map(self) -> dict[str, float]:
        w = self.style_layer_weights or (1.0,) * len(self.style_layers)
        return dict(zip(self.style_layers, w, strict=True))


def _from_layers(backbone: str, **weights) -> SynthesisConfig:
    """A backbone's optimisation settings: its loss layers (``models.losses.LOSS_LAYERS``; the style
    layers weighed equally, the deep content layer) and the weights of the terms."""
    layers = loss_layers(backbone)
    return SynthesisConfig(style_layers=layers.style_layers, content_layers=(layers.optimisation_content,), **weights)


# The weights of the terms, relative (each term is normalised by its target's size). Measured on
# efficientnet_lite0 (shared notes): L-BFGS from the content image, 150-300 iterations; with the
# training loss's pooled Grams and colour term (256 px, 300 steps, five paintings side by side): more
# saturated Composition VII and Scream, bigger Starry Night swirls, darker Udnie planes, at 1.8x the
# time per step. VGG: the same relative weights.
OPTIMISATION_LOSSES: dict[str, SynthesisConfig] = {
    "efficientnet_lite0": _from_layers("efficientnet_lite0", style_weight=1e3, content_weight=1.0, tv_weight=20.0,
                                       steps=300, style_scales=(1, 2), color_weight=1.0),
    "vgg19": _from_layers("vgg19", style_weight=1e3, content_weight=1.0, tv_weight=20.0, steps=300),
    "vgg16": _from_layers("vgg16", style_weight=1e3, content_weight=1.0, tv_weight=20.0, steps=300),
}

def synthesis_config(model: Backbone) -> SynthesisConfig:
    """The default loss settings for ``model``, or a ValueError naming the known backbones."""
    try:
        return OPTIMISATION_LOSSES[model.name]
    except KeyError:
        raise ValueError(f"no default synthesis layers for backbone {model.name!r} (known: "
                         f"{sorted(OPTIMISATION_LOSSES)}); pass the layers explicitly") from None


@dataclass
class Synthesis:
    """Result of texture synthesis: the image (1, 3, H, W) and the Gram loss per evaluation."""

    image: torch.Tensor
    losses: list[float]
    initial_loss: float
    final_loss: float


# ----------------------------------------------------------------------------- helpers

def _check_image(x: torch.Tensor, what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{what} must be a (1, 3, H, W) tensor, got {shape}")
    return x.detach().float()


def _layer_map(model: Backbone, layers: LayerSpec, default: Mapping[str, float], what: str) -> dict[str, float]:
    """Layers as {name: weight}; a sequence gets equal weights; checked against the model."""
    if layers is None:
        out = dict(default)
    elif isinstance(layers, Mapping):
        out = {str(k): float(v) for k, v in layers.items()}
    elif isinstance(layers, str):
        out = {layers: 1.0}
    else:
        out = {str(l): 1.0 for l in layers}
    if not out:
        raise ValueError(f"{what} must name at least one layer")
    model.check_layers(out)
    if any(w < 0 or not math.isfinite(w) for w in out.values()) or sum(out.values()) <= 0:
        raise ValueError(f"{what} weights must be >= 0 with a positive sum, got {out}")
    return out


def _check_weight(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


def _scaled_size(h: int, w: int, factor: float) -> tuple[int, int]:
    return max(1, round(h * factor)), max(1, round(w * factor))


@torch.no_grad()
def _target_grams(model: Backbone, images: Sequence[torch.Tensor], weights: Sequence[float],
                  layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """The weighted mean over images of each layer's Gram matrix, (1, C, C) per layer."""
    total = sum(weights)
    out: dict[str, torch.Tensor] = {}
    for img, w in zip(images, weights, strict=True):
        if w == 0:
            continue
        feats = model.features(img, layers)
        for l in layers:
            g = gram(feats[l]) * (w / total)
            out[l] = g if l not in out else out[l] + g
    return out


def _blend_pixels(images: Sequence[torch.Tensor], weights: Sequence[float], count: int = 65536) -> torch.Tensor:
    """The styles' pixels mixed by ``weights``, (1, P, 3): each style gives its share of ``count``
    pixels, taken evenly over the image."""
    total = sum(weights)
    parts = [image_pixels(img, round(count * w / total)) for img, w in zip(images, weights, strict=True)
             if round(count * w / total)]
    return torch.cat(parts, dim=1)


# ----------------------------------------------------------------------------- texture synthesis

def texture_synthesis(model: Backbone, texture: torch.Tensor, size: tuple[int, int] | None = None,
                      layers: Sequence[str] | None = None, steps: int = 200, optimizer: str = "lbfgs",
                      seed: int = 0, progress: Progress = None, *, lr: float | None = None,
                      line_search: bool = False, tv_weight: float = 0.0, noise: float = NOISE,
                      channels_last: bool | None = None) -> Synthesis:
    """A new image with the texture's Gram matrices, from noise (Gatys et al. 2015).

    Which layers are matched sets the scale of what is reproduced: shallow layers give
    colours and fine grain, deeper ones larger structures. ``layers`` (a list, or a
    {layer: weight} mapping) defaults to the backbone's style layers
    (:data:`OPTIMISATION_LOSSES`). ``size`` (H, W) defaults to the texture's size.

    The start is the texture's mean colour plus uniform noise of width ``noise`` (0.1: noise of full
    range is left behind as coloured pixel noise, which this backbone's stride-2 stem hardly sees), so
    a flat texture stays flat and keeps its colour.
    ``tv_weight`` > 0 adds a smoothness prior (not in the paper).
    ``losses`` holds the Gram loss (without the TV term) at each evaluation.
    """
    texture = _check_image(texture, "texture")
    check_optimizer(optimizer)
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    tv_weight = _check_weight("tv_weight", tv_weight)
    noise = _check_weight("noise", noise)
    weights = _layer_map(model, layers, synthesis_config(model).style_layer_map() if layers is None else {},
                         "layers")
    h, w = (int(v) for v in (size if size is not None else texture.shape[-2:]))
    if h < 1 or w < 1:
        raise ValueError(f"size must be positive, got {size}")
    fmt = optimisation_memory_format(channels_last, texture.device)
    model = fast_frozen_copy(model)
    targets = _target_grams(model, [texture.contiguous(memory_format=fmt)], [1.0], list(weights))
    gen = torch.Generator().manual_seed(seed)
    # Noise around the texture's mean colour, not around grey: Grams of a flat image are nearly those
    # of any flat image, and from grey a flat dark texture came out mid-grey (mean 0.495 from 0.0).
    mean = texture.mean(dim=(2, 3), keepdim=True).cpu()
    x0 = (mean + (torch.rand((1, 3, h, w), generator=gen) - 0.5) * min(noise, 1.0)).clamp(0, 1)
    x0 = x0.to(texture.device)

    history: list[torch.Tensor] = []

    def gram_loss(x: torch.Tensor) -> torch.Tensor:
        return style_loss(model.features(x.contiguous(memory_format=fmt), weights), targets, weights).sum()

    def loss_fn(x: torch.Tensor) -> torch.Tensor:
        loss = gram_loss(x)
        history.append(loss.detach())
        return loss + tv_weight * tv_loss(x).sum() if tv_weight else loss

    with torch.no_grad():
        initial = float(gram_loss(x0))
    bar = StepCounter(steps, progress)
    x = optimise(x0, loss_fn, steps, optimizer, lr, line_search, bar)
    with torch.no_grad():
        final = float(gram_loss(x))
    losses = torch.stack(history).tolist() if history else []
    return Synthesis(image=x.contiguous(), losses=losses, initial_loss=initial, final_loss=final)


__all__ = ["SynthesisConfig", "OPTIMISATION_LOSSES", "synthesis_config", "Synthesis", "texture_synthesis"]
