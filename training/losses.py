"""The perceptual loss of fast style training: which layers and weights, per backbone.

The terms themselves (content, Gram style, total variation) live in
``visualize.losses`` and are shared with the optimisation methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from models.backbones import Backbone, fast_frozen_copy
from visualize.losses import content_loss, gram, style_loss, tv_loss


@dataclass(frozen=True)
class LossConfig:
    """Which layers and weights make the perceptual loss of one backbone."""

    content_layers: dict[str, float]
    style_layers: dict[str, float]
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)

    def with_overrides(self, content_weight: float | None = None, style_weight: float | None = None,
                       tv_weight: float | None = None, content_layers: Sequence[str] | None = None,
                       style_layers: Sequence[str] | None = None) -> "LossConfig":
        """A copy with the given values replaced; layers given by name get weight 1 each."""
        changes: dict = {}
        for key, value in (("content_weight", content_weight), ("style_weight", style_weight),
                           ("tv_weight", tv_weight)):
            if value is not None:
                changes[key] = value
        if content_layers:
            changes["content_layers"] = {l: 1.0 for l in content_layers}
        if style_layers:
            changes["style_layers"] = {l: 1.0 for l in style_layers}
        return replace(self, **changes)


# Default loss settings per backbone, for training fast style networks.
TRAINING_LOSSES: dict[str, LossConfig] = {
    # Johnson et al. 2016.
    "vgg16": LossConfig(content_layers={"relu2_2": 1.0},
                        style_layers={"relu1_2": 1.0, "relu2_2": 1.0, "relu3_3": 1.0, "relu4_3": 1.0}),
    "vgg19": LossConfig(content_layers={"relu2_2": 1.0},
                        style_layers={"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0, "relu4_1": 1.0,
                                      "relu5_1": 1.0}),
    # Measured on the offline network (shared notes): outputs of the blocks, signed;
    # content at block2 and block4 together keeps faces, block4 alone distorts them.
    "efficientnet_lite0": LossConfig(
        content_layers={"block2": 1.0, "block4": 1.0},
        style_layers={"stem": 0.2, "block0": 0.2, "block2": 1.0, "block4": 1.0, "block7": 1.0},
        content_weight=1.0, style_weight=10.0, tv_weight=1.0),
}


def default_loss_config(backbone: str) -> LossConfig:
    try:
        return TRAINING_LOSSES[backbone]
    except KeyError:
        raise ValueError(f"no default loss settings for backbone {backbone!r}; known: {sorted(TRAINING_LOSSES)}") from None


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
        with torch.no_grad():
            per_style = [self.backbone.features(s, config.style_layers) for s in style_images]
            for layer in config.style_layers:
                grams = torch.cat([gram(f[layer]) for f in per_style])  # (N, C, C)
                self.register_buffer(f"gram_{layer}", grams, persistent=False)
        self.num_styles = len(style_images)
        self._layers = sorted({*config.content_layers, *config.style_layers}, key=backbone.layer_names.index)

    def target_grams(self, style_index: torch.Tensor) -> dict[str, torch.Tensor]:
        return {l: getattr(self, f"gram_{l}")[style_index] for l in self.config.style_layers}

    def forward(self, stylized: torch.Tensor, content: torch.Tensor,
                style_index: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mean losses over the batch: ``total``, ``content``, ``style``, ``tv``."""
        with torch.no_grad():
            content_feats = self.backbone.features(content, self.config.content_layers)
        out_feats = self.backbone.features(stylized, self._layers)
        c = content_loss(out_feats, content_feats, self.config.content_layers).mean()
        s = style_loss(out_feats, self.target_grams(style_index), self.config.style_layers).mean()
        t = tv_loss(stylized).mean()
        cfg = self.config
        total = cfg.content_weight * c + cfg.style_weight * s + cfg.tv_weight * t
        return {"total": total, "content": c, "style": s, "tv": t}


__all__ = ["LossConfig", "TRAINING_LOSSES", "default_loss_config", "PerceptualLoss"]
