"""The perceptual loss of fast style training: which layers and weights, per backbone,
and the calibration that sets each painting's style weight.

The terms themselves (content, Gram style, total variation) live in
``models.losses`` and are shared with the optimisation methods.

Why a calibration: one fixed style weight suits some paintings and not others. On the
offline network, weight 10 was right for Starry Night but replaced the photo with the
painting's own shapes for busy paintings (Udnie, Composition VII, a new colourful one),
and weight 3 left calm ones faint. The photo's distance to each painting (its style loss
before training) is nearly the same for all five paintings (0.83-0.93), so normalising by
it cannot tell them apart; what differs is how far the network gives up the photo for a
given weight. :class:`StyleCalibration` therefore measures that: during a phase after
warm-up it adjusts each style's weight until the photo's edges survive in the output to one
set degree (:func:`structure_kept`), then freezes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.backbones import Backbone, fast_frozen_copy
from models.losses import (color_distribution_loss, content_loss, correlation, gram, grey, image_pixels, loss_layers,
                           pooled, style_loss, tone_loss, tv_loss)


@dataclass(frozen=True)
class LossConfig:
    """Which layers and weights make the perceptual loss of one backbone."""

    content_layers: dict[str, float]
    style_layers: dict[str, float]
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 1.0
    # Style Grams are also matched on the output and painting average-pooled by these factors
    # (1 = full size only): the pooled terms see the painting's marks at 2x their size.
    style_scales: tuple[int, ...] = (1,)
    # Weight of the painting's colour distribution (models.losses.color_distribution_loss)
    # within the style term; 0: Grams alone.
    color_weight: float = 0.0
    # Weight of the photo's light-and-dark layout (models.losses.tone_loss), beside content; 0: off.
    tone_weight: float = 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["style_scales"] = list(self.style_scales)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "LossConfig":
        """The config a checkpoint records (``to_dict``), keys it does not know left out."""
        from dataclasses import fields

        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        if "style_scales" in d:
            d["style_scales"] = tuple(int(f) for f in d["style_scales"])
        return cls(**d)

    def with_overrides(self, content_weight: float | None = None, style_weight: float | None = None,
                       tv_weight: float | None = None, tone_weight: float | None = None,
                       content_layers: Sequence[str] | None = None,
                       style_layers: Sequence[str] | None = None) -> "LossConfig":
        """A copy with the given values replaced; layers given by name get weight 1 each."""
        changes: dict = {}
        for key, value in (("content_weight", content_weight), ("style_weight", style_weight),
                           ("tv_weight", tv_weight), ("tone_weight", tone_weight)):
            if value is not None:
                changes[key] = value
        if content_layers:
            changes["content_layers"] = {l: 1.0 for l in content_layers}
        if style_layers:
            changes["style_layers"] = {l: 1.0 for l in style_layers}
        return replace(self, **changes)


# Training's weights of the terms per backbone; the layers come from models.losses.LOSS_LAYERS. On
# efficientnet_lite0 the tone term kept The Scream's sky light (orange) where without it the sky was
# painted dark, and took the dark smudge off the five-style network's clouds.
_TRAINING_WEIGHTS: dict[str, dict] = {
    "vgg16": {},
    "vgg19": {},
    "efficientnet_lite0": dict(content_weight=1.0, style_weight=10.0, tv_weight=1.0, style_scales=(1, 2),
                               color_weight=1.0, tone_weight=1.0),
}


def default_loss_config(backbone: str) -> LossConfig:
    """Training's loss settings for ``backbone``: its layers (``models.losses.LOSS_LAYERS``) and weights."""
    layers = loss_layers(backbone)
    return LossConfig(content_layers=dict.fromkeys(layers.content, 1.0), style_layers=dict(layers.style),
                      **_TRAINING_WEIGHTS.get(backbone, {}))


class PerceptualLoss(nn.Module):
    """Content + style + TV loss of a fast style network's output, for N styles at once.

    The style Grams are computed once from the style images; each image of a batch is
    compared with the Grams of its own style (``style_index``). The loss network is a
    copy of ``backbone`` with its batch norms folded and each convolution fused with its
    activation (``models.backbones.fast_frozen_copy``),
    in channels_last (faster with oneDNN on CPUs and with tensor cores on GPUs). It sees
    the content batch without autograd and only down to the deepest content layer, and
    the stylised batch once: one pass over both together spends the backward on the
    content half too. On 2 CPU
    cores (``lite``, 256 px, batch 4) a training step took 0.84 CPU s with one unfolded
    NCHW pass, 0.69 s folded in channels_last, 0.60 s with the passes apart; later, with
    the activations fused, 10.0 -> 12.4 images/s (``scripts/bench_train.py``).
    """

    def __init__(self, backbone: Backbone, config: LossConfig, style_images: Sequence[torch.Tensor]):
        super().__init__()
        backbone.check_layers([*config.content_layers, *config.style_layers])
        # A folded copy when there are batch norms; a network without (VGG) is used as it is.
        self.backbone = fast_frozen_copy(backbone).to(memory_format=torch.channels_last)
        self.config = config
        if not config.style_scales or any(int(f) < 1 for f in config.style_scales):
            raise ValueError(f"style_scales must be pooling factors >= 1, got {config.style_scales}")
        with torch.no_grad():
            for f in config.style_scales:
                per_style = [self.backbone.features(pooled(s, f), config.style_layers) for s in style_images]
                for layer in config.style_layers:
                    grams = torch.cat([gram(x[layer]) for x in per_style])  # (N, C, C)
                    self.register_buffer(f"gram_{f}_{layer}", grams, persistent=False)
        # Every pixel of each painting (at its training size) for the colour term, (N, P, 3);
        # paintings of different sizes are resampled to the first one's pixel count.
        count = style_images[0].shape[-2] * style_images[0].shape[-1]
        pixels = [image_pixels(s, count) for s in style_images]
        self.register_buffer("style_pixels", torch.cat(pixels), persistent=False)
        self.num_styles = len(style_images)
        # Each style's weight relative to config.style_weight, set by StyleCalibration (1: as configured).
        self.register_buffer("style_scale", torch.ones(self.num_styles))
        self._layers = sorted({*config.content_layers, *config.style_layers}, key=backbone.layer_names.index)

    def target_grams(self, style_index: torch.Tensor, factor: int = 1) -> dict[str, torch.Tensor]:
        return {l: getattr(self, f"gram_{factor}_{l}")[style_index] for l in self.config.style_layers}

    def forward(self, stylized: torch.Tensor, content: torch.Tensor,
                style_index: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mean losses over the batch: ``total``, ``content``, ``style``, ``tv`` (and ``tone`` when weighted)."""
        cfg = self.config
        with torch.no_grad():
            content_feats = self.backbone.features(content, cfg.content_layers)
        out_feats = self.backbone.features(stylized, self._layers)
        c = content_loss(out_feats, content_feats, cfg.content_layers)
        s = 0.0
        for f in cfg.style_scales:
            feats = out_feats if f == 1 else self.backbone.features(pooled(stylized, f), cfg.style_layers)
            s = s + style_loss(feats, self.target_grams(style_index, f), cfg.style_layers)
        s = s / len(cfg.style_scales)
        if cfg.color_weight:
            s = s + cfg.color_weight * color_distribution_loss(stylized, self.style_pixels[style_index])
        t = tv_loss(stylized).mean()
        weighted_style = (self.style_scale[style_index] * s).mean()
        total = cfg.content_weight * c.mean() + cfg.style_weight * weighted_style + cfg.tv_weight * t
        losses = {"total": total, "content": c.mean(), "style": s.mean(), "tv": t}
        if cfg.tone_weight:
            losses["tone"] = tone_loss(stylized, content).mean()
            losses["total"] = total + cfg.tone_weight * losses["tone"]
        return losses


def structure_kept(output: torch.Tensor, photo: torch.Tensor, sigma: float = 2.0) -> torch.Tensor:
    """How readable the photo still is in a stylised output, per image: (B,), in [-1, 1].

    The correlation of the Sobel gradient magnitudes of the grey output and photo, each blurred
    by a Gaussian of ``sigma`` pixels: 1 when every edge of the photo is where it was, about 0
    when the painting's own shapes replaced them. Johnson et al.'s published models keep
    0.57-0.66 of ``chicago.jpg`` at 510x338; the figure of the shared notes, computed with
    OpenCV, is this one (``scripts/compare_styles.py`` uses this function).
    """
    radius = max(1, math.ceil(4 * sigma))
    t = torch.arange(-radius, radius + 1, device=output.device, dtype=torch.float32)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    g = g / g.sum()
    sobel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=output.device)
    kernels = torch.stack([sobel_x, sobel_x.T])[:, None]  # (2, 1, 3, 3)

    def edges(img: torch.Tensor) -> torch.Tensor:
        y = grey(img)
        y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="reflect"), g.view(1, 1, 1, -1))
        y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="reflect"), g.view(1, 1, -1, 1))
        d = F.conv2d(F.pad(y, (1, 1, 1, 1), mode="reflect"), kernels)
        return d.pow(2).sum(1).sqrt().flatten(1)

    return correlation(edges(output), edges(photo), eps=1e-12)


class StyleCalibration:
    """Sets each style's weight so that the photo stays readable by one measure, then freezes it.

    After a warm-up in which the network learns to paint at all, and for ``steps`` steps, each
    style's scale ``criterion.style_scale[k]`` moves multiplicatively toward the weight at which
    :func:`structure_kept` of the training outputs settles at ``target``: down when the painting's
    shapes replace the photo's edges, up when the output keeps more of the photo than asked.
    A first try held the content loss (feature distance to the photo) at one value instead: the
    same content loss was a readable Starry Night and a Composition VII with the bear of the
    sample gone, because the painting's palette alone moves the features by different amounts.
    After the phase the scale is multiplied by ``style_factor`` (the user's ``--style-weight``) and
    kept, so the rest of training optimises one fixed loss. The scale lives in the criterion's
    state and is saved in checkpoints.
    """

    def __init__(self, criterion: "PerceptualLoss", target: float, start: int, steps: int,
                 style_factor: float = 1.0, gain: float = 0.3, max_change: float = 0.03, smoothing: float = 0.8,
                 num_styles: int = 1):
        if not 0 < target < 1:
            raise ValueError(f"the calibration's structure target must be between 0 and 1, got {target}")
        if style_factor <= 0 or not math.isfinite(style_factor):
            raise ValueError(f"the style weight must be > 0, got {style_factor}")
        self.criterion, self.target, self.start, self.steps = criterion, float(target), int(start), int(steps)
        # Each style's outputs follow its weight about num_styles times more slowly (see for_run).
        n = max(1, int(num_styles))
        self.style_factor, self.gain, self.max_change, self.smoothing = (float(style_factor), float(gain) / n,
                                                                     float(max_change) / n, float(smoothing))
        self.measured: dict[int, float] = {}  # smoothed structure_kept per style

    @classmethod
    def for_run(cls, criterion: "PerceptualLoss", total_steps: int, target: float,
                style_factor: float = 1.0, num_styles: int = 1) -> "StyleCalibration":
        """The default phase for a run of ``total_steps``: a tenth of the run (at most 100 steps)
        of warm-up, then calibration until the last fifth of the run, which trains on the frozen weight.

        Why so long: the network keeps changing after the weight is frozen, and the balance with it.
        A single-style run calibrated for 600 of 1500 steps held structure kept 0.55 when it froze,
        but Udnie's network went on learning the photo and ended at 0.69 on training crops (0.78 on
        chicago.jpg); Wave's drifted the other way (0.54 to 0.49). The last fifth is left so that a
        ``style_factor`` other than 1 is trained on for a few hundred steps.

        A network of ``num_styles`` styles sees each style in about 1/n of its samples, so a
        style's outputs follow a change of its weight about n times more slowly. With one style's
        pace, a five-style network's weights ran ahead of what its outputs showed: Udnie's fell to
        the floor (0.001) while its outputs still looked over-painted, and ended at structure kept
        0.94, nearly the photo. So each change is n times smaller.
        """
        n = max(1, int(num_styles))
        warmup = min(100, total_steps // 10)
        end = max(warmup + 1, total_steps - total_steps // 5)
        return cls(criterion, target, warmup, end - warmup, style_factor, num_styles=n)

    @property
    def end(self) -> int:
        return self.start + self.steps

    def active(self, step: int) -> bool:
        return self.start <= step < self.end

    @torch.no_grad()
    def update(self, step: int, output: torch.Tensor, photo: torch.Tensor, style_index: torch.Tensor) -> None:
        """After training step ``step`` (0-based), with its outputs and photos (B, 3, H, W)."""
        if not self.active(step):
            return
        kept = structure_kept(output, photo).cpu()
        idx = style_index.cpu()
        scale = self.criterion.style_scale
        for k in idx.unique().tolist():
            value = float(kept[idx == k].mean())
            if not math.isfinite(value):
                continue
            ema = self.smoothing * self.measured.get(k, value) + (1 - self.smoothing) * value
            self.measured[k] = ema
            change = max(-self.max_change, min(self.max_change, self.gain * (ema - self.target)))
            scale[k] = float(min(1e3, max(1e-3, float(scale[k]) * math.exp(change))))
        if step == self.end - 1 and self.style_factor != 1.0:
            scale.mul_(self.style_factor)


__all__ = ["LossConfig", "default_loss_config", "PerceptualLoss", "StyleCalibration", "structure_kept"]
