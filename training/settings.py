"""What a training run depends on (:class:`TrainSettings`, stored in every checkpoint), and what a
resumed run must keep of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from models.common.errors import UserError


@dataclass
class TrainSettings:
    """Everything a training run depends on; stored in every checkpoint."""

    style: list[str]
    data: str
    out: str
    loss_net: str = "efficientnet_lite0"
    loss_net_weights: str | None = None
    arch: str = "johnson"
    size: int = 256
    style_size: int | None = None  # longer side of the style images; default: 2 * size
    batch: int = 4
    steps: int = 2000
    lr: float = 1e-3
    content_weight: float | None = None  # None: the loss network's default
    # With calibration (the default), the style factor multiplies each style's calibrated weight
    # from the end of the calibration on; without (structure_target 0), style_weight is the weight
    # itself (None: the loss network's default). The CLI's --style-weight sets whichever applies.
    style_factor: float = 1.0
    style_weight: float | None = None
    structure_target: float = 0.55  # the photo's edges kept, for the style calibration; 0: no calibration
    # The calibration's steps [start, end); None: from the run's length (StyleCalibration.for_run).
    # A resumed run keeps the schedule it started with.
    calibration_start: int | None = None
    calibration_end: int | None = None
    tv_weight: float | None = None
    tone_weight: float | None = None  # the photo's light-and-dark layout kept (None: the loss network's default)
    stability_weight: float = 0.0  # noise stability (Gupta et al. 2017); 0: off
    stability_noise: float = 0.03  # its noise, standard deviation in [0, 1] pixel units
    sample_every: int = 250
    checkpoint_every: int = 250
    seed: int = 0
    precision: str = "auto"  # auto | fp32 | bf16
    device: str = "auto"  # auto | cpu | cuda
    workers: int | None = None
    resume: bool = False
    names: list[str] = field(default_factory=list)  # style names; default: file stems


def style_names(settings: TrainSettings) -> list[str]:
    names = settings.names or [Path(s).stem for s in settings.style]
    if len(names) != len(settings.style):
        raise UserError(f"{len(names)} style names given for {len(settings.style)} style images")
    if len(set(names)) != len(names):
        raise UserError(f"style names must differ: {names}")
    return names


# Settings that define the network or the stream of training batches: a resumed run must keep them.
_RESUME_FIXED = ("arch", "styles", "loss_net", "world_size")
_RESUME_FIXED_SETTINGS = ("size", "style_size", "batch", "seed", "data", "style")


def check_resume_compatible(ckpt_cfg: dict, cfg: dict, path: Path) -> None:
    pairs = [(k, ckpt_cfg.get(k), cfg.get(k)) for k in _RESUME_FIXED]
    pairs += [(k, ckpt_cfg.get("settings", {}).get(k), cfg["settings"].get(k)) for k in _RESUME_FIXED_SETTINGS]
    for key, old, new in pairs:
        if old != new:
            raise UserError(f"{path}: cannot resume with {key}={new!r}: the checkpoint was trained with {old!r}")
