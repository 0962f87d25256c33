"""Training checkpoints: written atomically, loaded with ``weights_only=True``.

A checkpoint is a plain dict of tensors and primitives, so loading it never runs
code: ``format``, ``step``, ``model`` (state dict), ``optimizer``, ``rng`` and
``config`` (architecture, styles, loss settings, training arguments).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from models.errors import InputFileError
from models.style_net import StyleNet, StyleNetConfig

FORMAT = "stylelens-checkpoint-1"
CHECKPOINT_NAME = "checkpoint.pt"


def save_checkpoint(state: dict, path: str | os.PathLike) -> None:
    """Write ``state`` to ``path`` so that a crash never leaves a partial file there.

    Writes a temporary file in the same folder, fsyncs it, then renames it over the
    old one; the previous checkpoint survives any failure before the rename.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save({"format": FORMAT, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint safely, or raise InputFileError naming the file and the problem."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise InputFileError(path, "checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise InputFileError(path, f"not a loadable checkpoint (refused or corrupt: {first})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise InputFileError(path, f"not a checkpoint of this project (expected format {FORMAT})")
    for key in ("step", "model", "config"):
        if key not in ckpt:
            raise InputFileError(path, f"checkpoint lacks {key!r}")
    return ckpt


def style_net_from_checkpoint(ckpt: dict, path: str | os.PathLike = "checkpoint") -> StyleNet:
    """The trained style network of a checkpoint, in eval mode on the CPU."""
    cfg = ckpt["config"]
    net = StyleNet(StyleNetConfig.from_dict(cfg["net"]), num_styles=len(cfg["styles"]))
    try:
        net.load_state_dict(ckpt["model"], strict=True)
    except RuntimeError as e:
        raise InputFileError(path, f"weights do not fit its recorded architecture: {str(e).splitlines()[0][:200]}") from None
    return net.eval()
