"""What a training run depends on (:class:`TrainSettings`, stored in every checkpoint), and what a
resumed run must keep of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from models.common.errors import UserError
from models.common.files import same_file


@dataclass
class TrainSettings:
    """Everything a training run depends on; stored in every checkpoint."""

    style: list[str]
    data: str
    out: str
    loss_net: str = "auto"  # auto: vgg16 where its weights are at hand, else efficientnet_lite0
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
    # The settings the user gave on the command line (not defaults): a resumed run takes the others from
    # its checkpoint, and refuses these where they differ from it. Not recorded in checkpoints.
    given: tuple[str, ...] = ()


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
_NOT_RECORDED = ("resume", "given")  # TrainSettings fields kept out of a checkpoint's record


def _same_inputs(key: str, old, new, ckpt_cfg: dict, cfg: dict) -> bool:
    """Whether the style images or the data folder are the ones the checkpoint was trained on.

    Where the checkpoint records them, style images are compared by their content and the data
    folder by the names and sizes of its images (:func:`training.data.files_fingerprint`), so a
    painting or a folder that moved still resumes, and one changed in place does not. Older
    checkpoints compare paths as files, not as typed (``models/zoo/udnie.jpg`` and its absolute
    path are one painting)."""
    if key == "style" and ckpt_cfg.get("style_sha256") is not None:
        return ckpt_cfg["style_sha256"] == cfg.get("style_sha256")
    if key == "data" and ckpt_cfg.get("data_files") is not None:
        return ckpt_cfg["data_files"] == cfg.get("data_files")
    if key == "style" and isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return all(a == b or same_file(a, b) for a, b in zip(old, new))
    if key == "data" and old is not None and new is not None:
        return old == new or same_file(old, new)
    return old == new


def check_resume_compatible(ckpt_cfg: dict, cfg: dict, path: Path) -> None:
    pairs = [(k, ckpt_cfg.get(k), cfg.get(k)) for k in _RESUME_FIXED]
    pairs += [(k, ckpt_cfg.get("settings", {}).get(k), cfg["settings"].get(k)) for k in _RESUME_FIXED_SETTINGS]
    for key, old, new in pairs:
        if not _same_inputs(key, old, new, ckpt_cfg, cfg):
            what = " (the same paths, other contents)" if old == new else ""
            raise UserError(f"{path}: cannot resume with {key}={new!r}{what}: the checkpoint was trained with {old!r}")


# The loss settings a resumed run takes from its checkpoint, with their value in checkpoints written
# before the setting existed: the colour and tone terms and the pooled Grams did not exist (off), nor
# the calibration (the style weight was the weight itself).
_LOSS_BEFORE = {"color_weight": 0.0, "tone_weight": 0.0, "style_scales": [1]}
_FLAGS = {"content_weight": "--content-weight", "tv_weight": "--tv-weight", "tone_weight": "--tone-weight",
          "style_weight": "--style-weight", "structure_target": "--structure-target", "color_weight": "the colour term",
          "style_scales": "the pooled Grams", "style_factor": "--style-weight"}


def recorded_loss(ckpt_cfg: dict) -> dict:
    """The loss settings a checkpoint trained with, those it does not record at their value from before
    they existed (:data:`_LOSS_BEFORE`)."""
    return {**_LOSS_BEFORE, **ckpt_cfg.get("loss", {})}


def settings_to_resume(s: TrainSettings, ckpt_cfg: dict, path: Path) -> tuple[TrainSettings, dict, list[str]]:
    """The settings a ``--resume``d run goes on with: the loss terms and the calibration the checkpoint
    records (a checkpoint from before a term or the calibration existed trained without it), never
    today's defaults. Returns (settings, the loss settings to train with, what differs from today's
    defaults, in words). A setting given on the command line that differs from the checkpoint's is
    refused in one line naming both."""
    from dataclasses import replace

    loss = recorded_loss(ckpt_cfg)
    old = ckpt_cfg.get("settings", {})
    calibrated = float(old.get("structure_target", 0.0) or 0.0)  # absent: trained before the calibration
    keep = {"structure_target": calibrated, "calibration_start": old.get("calibration_start"),
            "calibration_end": old.get("calibration_end")}
    asked = {"content_weight": s.content_weight, "tv_weight": s.tv_weight, "tone_weight": s.tone_weight,
             "structure_target": s.structure_target}
    if calibrated > 0:
        keep["style_factor"] = float(old.get("style_factor", 1.0))
        asked["style_factor"] = s.style_factor
    else:
        asked["style_weight"] = s.style_weight if s.style_weight is not None else s.style_factor
    for key, value in asked.items():
        if key not in s.given or value is None:
            continue
        had = keep[key] if key in keep else loss.get(key)
        if had is None or abs(float(value) - float(had)) > 1e-12 * max(1.0, abs(float(had))):
            what = _FLAGS[key]
            before = " (it was trained before the calibration)" if key == "structure_target" and not calibrated else                 " (it was trained before this term)" if key in _LOSS_BEFORE and key not in ckpt_cfg.get("loss", {}) else ""
            if key == "style_weight" and not calibrated:
                had = loss.get("style_weight")
            raise UserError(f"{path}: cannot resume with {what} {value:g}: the checkpoint was trained with "
                            f"{float(had):g}{before}; leave it out to go on as it was trained")
    if s.loss_net == "auto" and ckpt_cfg.get("loss_net"):  # the loss network it trained with
        keep["loss_net"] = ckpt_cfg["loss_net"]
    resumed = replace(s, **keep, content_weight=loss.get("content_weight", s.content_weight),
                      tv_weight=loss.get("tv_weight", s.tv_weight), tone_weight=loss["tone_weight"])
    notes = [f"{name} off" for key, name in (("color_weight", "the colour term"), ("tone_weight", "the tone term"))
             if not loss[key]] + ([] if calibrated else ["no calibration"])
    return resumed, loss, notes
