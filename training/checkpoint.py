"""Training checkpoints: written atomically, loaded with ``weights_only=True``.

A checkpoint is a plain dict of tensors and primitives, so loading it never runs
code: ``format``, ``step``, ``model`` (state dict), ``optimizer``, ``rng`` and
``config`` (architecture, styles, loss settings, training arguments).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch

from models.common.errors import InputFileError, first_line, load_strictly
from models.common.files import atomic_path
from models.style_net import StyleNet, StyleNetConfig

FORMAT = "stylelens-checkpoint-1"
CHECKPOINT_NAME = "checkpoint.pt"


def save_checkpoint(state: dict, path: str | os.PathLike) -> None:
    """Write ``state`` to ``path`` so that a crash never leaves a partial file there.

    A temporary file in the same folder is fsynced and renamed over the old one
    (:func:`models.common.files.atomic_path`): the previous checkpoint survives any failure.
    """
    buffer = io.BytesIO()  # serialised first: torch.save to a file turns a full disk into a vague RuntimeError
    torch.save({"format": FORMAT, **state}, buffer)
    had_one = Path(path).is_file()
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            f.write(buffer.getbuffer())
    except InputFileError as e:
        if had_one:
            raise InputFileError(path, f"{e.problem}; the previous checkpoint there is kept") from None
        raise


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
        raise InputFileError(path, f"not a loadable checkpoint (refused or corrupt: {first_line(e)})") from None
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
    load_strictly(net, ckpt["model"], path, "weights do not fit its recorded architecture")
    return net.eval()
