"""Gatys style transfer: keep a content image's features and take on the Grams of one or more
style images (Gatys et al. 2016), optionally on luminance only and coarse to fine (Gatys et al. 2017,
"Controlling perceptual factors in neural style transfer"), by optimising the pixels of the result.

Settings per backbone come from :data:`visualize.synthesis.OPTIMISATION_LOSSES`; the terms from
:mod:`models.losses`; the targets are computed once per scale on a folded, fused copy of the network.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from models.backbones import Backbone, fast_frozen_copy, optimisation_memory_format
from models.losses import color_distribution_loss, content_loss, pooled, style_loss, tv_loss
from visualize.optimise import INITS, NOISE, Progress, StepCounter, check_optimizer, optimise, split_steps
from visualize.synthesis import (OPTIMISATION_LOSSES, LayerSpec, _blend_pixels, _check_image, _check_weight,
                                 _layer_map, _scaled_size, _target_grams, synthesis_config)
from visualize.transforms import resize


@dataclass
class LossTerms:
    """The weighted loss terms of one evaluation (total = content + style + tv)."""

    content: float
    style: float
    tv: float
    total: float


@dataclass
class StyleTransfer:
    """Result of style transfer: the image (1, 3, H, W), the loss terms at start and end
    (at full size: the init image and the result), and the terms per evaluation (``history``,
    across all scales)."""

    image: torch.Tensor
    initial: LossTerms
    final: LossTerms
    history: list[LossTerms]

    @property
    def losses(self) -> list[float]:
        return [t.total for t in self.history]


# YIQ (NTSC): Y is luminance, I and Q carry the colour.
_RGB2YIQ = torch.tensor([[0.299, 0.587, 0.114],
                         [0.595716, -0.274453, -0.321263],
                         [0.211456, -0.522591, 0.311135]])


def rgb_to_yiq(x: torch.Tensor) -> torch.Tensor:
    """RGB (B, 3, H, W) -> YIQ (B, 3, H, W)."""
    return torch.einsum("ij,bjhw->bihw", _RGB2YIQ.to(x), x)


def yiq_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """YIQ (B, 3, H, W) -> RGB (B, 3, H, W), not clamped."""
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(_RGB2YIQ.double()).to(x), x)


def _luminance(x: torch.Tensor) -> torch.Tensor:
    return rgb_to_yiq(x)[:, :1]


def _match_luminance(style: torch.Tensor, content_y: torch.Tensor) -> torch.Tensor:
    """The style's luminance as grey RGB, shifted and scaled to the content luminance's mean and std."""
    y = _luminance(style)
    y = (y - y.mean()) / y.std().clamp_min(1e-6) * content_y.std() + content_y.mean()
    return y.clamp(0, 1).expand(-1, 3, -1, -1)


def style_transfer(model: Backbone, content: torch.Tensor, styles: Sequence[torch.Tensor],
                   style_blend: Sequence[float] | None = None, content_weight: float | None = None,
                   style_weight: float | None = None, tv_weight: float | None = None,
                   content_layers: LayerSpec = None, style_layers: LayerSpec = None,
                   preserve_color: bool = False, scales: int = 1, optimizer: str = "lbfgs", steps: int = 300,
                   init: str = "content", seed: int = 0, progress: Progress = None, *,
                   lr: float | None = None, line_search: bool = False,
                   channels_last: bool | None = None, style_scales: Sequence[int] | None = None,
                   color_weight: float | None = None) -> StyleTransfer:
    """Gatys et al. (2016) style transfer by optimising the pixels of the result.

    Loss = content_weight * content + style_weight * style + tv_weight * total variation, with
    defaults from :data:`OPTIMISATION_LOSSES` for this backbone. Layers may be a list (equal
    weights) or a {layer: weight} mapping.

    - Several styles: the target Gram of each layer is the ``style_blend``-weighted mean of the
      styles' Grams (equal weights by default). Style images may have any size.
    - ``preserve_color``: luminance-only transfer (Gatys et al. 2017): the optimisation runs on
      the YIQ luminance (each style's luminance matched to the content's mean and std, shown to
      the network as grey), and the result's luminance is recombined with the content's I and Q.
    - ``scales`` > 1: coarse to fine. Scale k of s runs at the full size / 2^(s-1-k) (content and
      styles shrunk by the same factor, so strokes keep their size relative to the image), each
      result upsampled as the next scale's start. ``steps`` is split equally across the scales,
      the remainder going to the finest; the coarse scales cost 1/4, 1/16 ... per step.
    - ``optimizer``: "lbfgs" (``steps`` iterations; ``line_search`` turns on the strong-Wolfe line
      search) or "adam" (``lr``, default 0.05). Measured at 96 and 256 px: L-BFGS without the line
      search reaches a lower loss per evaluation than with it (20.2 against 20.4 after 100) and
      than Adam (27 after 100, 9.9 against 12.6 at 256 px); evaluations are the cost.
    - ``init``: "content", "noise" (uniform, from ``seed``) or "style" (the first style resized).
    - ``style_scales``: the Gram loss also on the result average-pooled by each factor, against
      the styles pooled alike (averaged over the factors); ``color_weight``: the sliced
      Wasserstein distance of the RGB pixel distributions (``models.losses``), with the same
      pixels and directions at every evaluation so that L-BFGS sees one function; both inside the
      style term, as in training. Off for ``preserve_color`` (the colours are the photo's).
    ``initial``/``final`` are the terms at full size for the init image and for the result.
    """
    content = _check_image(content, "content")
    styles, blend = _style_images(content, styles, style_blend)
    check_optimizer(optimizer)
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; choose one of {list(INITS)}")
    if scales < 1 or steps < 0:
        raise ValueError(f"scales must be >= 1 and steps >= 0, got scales={scales}, steps={steps}")
    terms = _Terms.resolve(model, content_weight, style_weight, tv_weight, content_layers, style_layers,
                           style_scales, 0.0 if preserve_color else None, color_weight)
    fmt = optimisation_memory_format(channels_last, content.device)
    model = fast_frozen_copy(model)

    # What the network sees: RGB, or the luminance as grey RGB.
    if preserve_color:
        content_yiq = rgb_to_yiq(content)
        seen_content = content_yiq[:, :1].expand(-1, 3, -1, -1)
        seen_styles = [_match_luminance(s, content_yiq[:, :1]) for s in styles]
    else:
        seen_content, seen_styles = content, styles
    x = _initial(init, seen_content, seen_styles, seed, preserve_color)

    history: list[torch.Tensor] = []
    ends: list[torch.Tensor] = []  # the terms at full size for the init image and the result
    bar, (h, w) = StepCounter(steps, progress), content.shape[-2:]
    full_loss = _Loss(model, terms, fmt, seen_content, seen_styles, blend, seed, preserve_color)
    with torch.no_grad():
        full_loss(x, ends)
    for k, n in enumerate(split_steps(steps, scales)):
        factor = 0.5 ** (scales - 1 - k)
        size = _scaled_size(h, w, factor)
        if factor == 1:
            loss_fn = full_loss
        else:
            s_sized = [resize(s, _scaled_size(*s.shape[-2:], factor)) for s in seen_styles]
            loss_fn = _Loss(model, terms, fmt, resize(seen_content, size), s_sized, blend, seed, preserve_color)
        x = optimise(resize(x, size), lambda v, f=loss_fn: f(v, history), n, optimizer, lr, line_search, bar)
    bar.finish()
    with torch.no_grad():
        full_loss(x, ends)

    image = yiq_to_rgb(torch.cat([x, content_yiq[:, 1:]], dim=1)).clamp(0, 1) if preserve_color else x
    start, end = (LossTerms(*v) for v in torch.stack(ends).tolist())
    hist = [LossTerms(*v) for v in torch.stack(history).tolist()] if history else []
    return StyleTransfer(image=image.contiguous(), initial=start, final=end, history=hist)


def _style_images(content: torch.Tensor, styles, style_blend: Sequence[float] | None
                  ) -> tuple[list[torch.Tensor], list[float]]:
    """The style images checked and on the content's device, and their blend weights."""
    if isinstance(styles, torch.Tensor):
        styles = [styles] if styles.dim() == 4 and styles.shape[0] == 1 else list(styles.unbind(0))
    styles = [_check_image(s[None] if isinstance(s, torch.Tensor) and s.dim() == 3 else s, f"styles[{i}]")
              .to(content.device) for i, s in enumerate(styles)]
    if not styles:
        raise ValueError("styles is empty: give at least one style image")
    if style_blend is None:
        return styles, [1.0] * len(styles)
    blend = [float(b) for b in style_blend]
    if len(blend) != len(styles):
        raise ValueError(f"style_blend has {len(blend)} weights for {len(styles)} styles")
    if any(b < 0 or not math.isfinite(b) for b in blend) or sum(blend) <= 0:
        raise ValueError(f"style_blend weights must be >= 0 with a positive sum, got {blend}")
    return styles, blend


def _initial(init: str, content: torch.Tensor, styles: Sequence[torch.Tensor], seed: int,
             preserve_color: bool) -> torch.Tensor:
    """The start of the optimisation: the content, the first style resized, or noise around grey."""
    h, w = content.shape[-2:]
    if init == "content":
        x = content
    elif init == "style":
        x = resize(styles[0], (h, w))
    else:
        gen = torch.Generator().manual_seed(seed)
        x = (0.5 + (torch.rand((1, 3, h, w), generator=gen) - 0.5) * NOISE).to(content.device)
    if preserve_color:
        x = _luminance(x) if init == "noise" else x[:, :1]  # optimise one channel, shown as grey
    return x


@dataclass(frozen=True)
class _Terms:
    """The layers and weights of one style transfer, the backbone's defaults filled in."""

    style_layers: dict[str, float]
    content_layers: dict[str, float]
    content: float
    style: float
    tv: float
    pool_factors: tuple[int, ...]
    color: float

    @classmethod
    def resolve(cls, model: Backbone, content_weight, style_weight, tv_weight, content_layers: LayerSpec,
                style_layers: LayerSpec, style_scales, color_off: float | None, color_weight) -> "_Terms":
        """``color_off``: the colour weight to use whatever was asked (0 when the colours are the photo's)."""
        if model.name not in OPTIMISATION_LOSSES and (style_layers is None or content_layers is None):
            synthesis_config(model)  # raises the ValueError naming the known backbones
        # Another backbone with explicit layers: the weights of the relative losses still serve.
        known = OPTIMISATION_LOSSES.get(model.name, OPTIMISATION_LOSSES["efficientnet_lite0"])
        pool = tuple(int(f) for f in (style_scales if style_scales is not None else known.style_scales))
        if not pool or min(pool) < 1:
            raise ValueError(f"style_scales must be pooling factors >= 1, got {style_scales}")
        return cls(
            _layer_map(model, style_layers, known.style_layer_map(), "style_layers"),
            _layer_map(model, content_layers, dict.fromkeys(known.content_layers, 1.0), "content_layers"),
            _check_weight("content_weight", content_weight if content_weight is not None else known.content_weight),
            _check_weight("style_weight", style_weight if style_weight is not None else known.style_weight),
            _check_weight("tv_weight", tv_weight if tv_weight is not None else known.tv_weight),
            pool,
            color_off if color_off is not None else _check_weight(
                "color_weight", color_weight if color_weight is not None else known.color_weight))


class _Loss:
    """The loss at one scale, with its targets (Grams, content features, palette) computed once.

    ``loss(img, record)`` returns the total and appends the weighted terms to ``record``."""

    def __init__(self, model: Backbone, terms: _Terms, fmt: torch.memory_format, content: torch.Tensor,
                 styles: Sequence[torch.Tensor], blend: Sequence[float], seed: int, preserve_color: bool):
        self.model, self.terms, self.fmt, self.seed, self.preserve_color = model, terms, fmt, seed, preserve_color
        self.layers = list(dict.fromkeys([*terms.style_layers, *terms.content_layers]))
        content = content.contiguous(memory_format=fmt)
        self.grams = {f: _target_grams(model, [pooled(s, f).contiguous(memory_format=fmt) for s in styles], blend,
                                       list(terms.style_layers)) for f in terms.pool_factors}
        self.palette = _blend_pixels(styles, blend) if terms.color else None
        with torch.no_grad():
            self.content = self.model.features(content, terms.content_layers)

    def style_term(self, img: torch.Tensor, feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        t, fmt = self.terms, self.fmt
        s = sum(style_loss(feats if f == 1 else self.model.features(pooled(img, f).contiguous(memory_format=fmt),
                                                                   list(t.style_layers)), self.grams[f], t.style_layers)
                for f in t.pool_factors) / len(t.pool_factors)
        if self.palette is not None:  # the same samples at every evaluation: one function for L-BFGS
            gen = torch.Generator(device=img.device).manual_seed(self.seed)
            s = s + t.color * color_distribution_loss(img, self.palette, generator=gen)
        return s

    def __call__(self, img: torch.Tensor, record: list[torch.Tensor] | None = None) -> torch.Tensor:
        t = self.terms
        if self.preserve_color:
            img = img.expand(-1, 3, -1, -1)
        feats = self.model.features(img.contiguous(memory_format=self.fmt), self.layers)
        zero = img.new_zeros((), dtype=torch.float32)
        lc = t.content * content_loss(feats, self.content, t.content_layers).sum() if t.content else zero
        ls = t.style * self.style_term(img, feats).sum() if t.style else zero
        lt = t.tv * tv_loss(img).sum() if t.tv else zero
        total = lc + ls + lt
        if record is not None:  # tensors, not floats: no device sync per evaluation
            record.append(torch.stack([lc.detach(), ls.detach(), lt.detach(), total.detach()]))
        return total

__all__ = ["LossTerms", "StyleTransfer", "style_transfer", "rgb_to_yiq", "yiq_to_rgb"]
