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


def non_finite(state_dict: dict) -> list[str]:
    """The names of the floating-point tensors of ``state_dict`` that hold a NaN or an infinity."""
    return [k for k, v in state_dict.items()
            if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())]


def save_checkpoint(state: dict, path: str | os.PathLike) -> None:
    """Write ``state`` to ``path`` so that a crash never leaves a partial file there.

    A temporary file in the same folder is fsynced and renamed over the old one
    (:func:`models.common.files.atomic_path`): the previous checkpoint survives any failure.
    Weights that are not finite are never written: :class:`NonFiniteWeights` instead, and the
    previous checkpoint stays.
    """
    bad = non_finite(state.get("model", {}))
    if bad:
        raise NonFiniteWeights(path, f"the weights became NaN or infinite ({_some(bad)}) at step "
                                     f"{state.get('step', '?')}; not written, the checkpoint there is kept: "
                                     f"try a lower --lr or --style-weight")
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
        raise InputFileError(path, f"not a loadable checkpoint ({_why_not(path, e)})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise InputFileError(path, f"not a checkpoint of this project (expected format {FORMAT})")
    for key in ("step", "model", "config"):
        if key not in ckpt:
            raise InputFileError(path, f"checkpoint lacks {key!r}")
    bad = non_finite(ckpt["model"]) if isinstance(ckpt["model"], dict) else []
    if bad:
        raise NonFiniteWeights(path, f"holds weights that are NaN or infinite ({_some(bad)}): it cannot be "
                                     f"exported, resumed or run; train again, with a lower --lr")
    return ckpt


class NonFiniteWeights(InputFileError):
    """A network's weights hold NaN or infinite values: never saved, exported, resumed or run."""


def _some(names: list[str], shown: int = 2) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return f"{', '.join(names[:shown])}{more}"


def _why_not(path: Path, error: Exception) -> str:
    """Why torch.load refused ``path``, in words the user can act on: never torch's advice to retry
    with ``weights_only=False`` (which would run any code a pickle holds)."""
    with open(path, "rb") as f:
        head = f.read(8)
    if not head.startswith(b"PK") and not head.startswith(b"\x80"):
        kind = ("a JPEG picture" if head.startswith(b"\xff\xd8") else "a PNG picture" if head.startswith(b"\x89PNG")
                else "an ONNX model or other file" if head[:1] == b"\x08" else "another kind of file")
        return f"not a PyTorch checkpoint: it looks like {kind}; give the checkpoint.pt of a training run"
    if "weights only load failed" in str(error).lower() or "unsupported global" in str(error).lower():
        return ("it holds Python objects that a checkpoint of this project never holds, and loading them "
                "could run code: refused")
    return f"corrupt or truncated: {first_line(error, 120)}"


def style_net_from_checkpoint(ckpt: dict, path: str | os.PathLike = "checkpoint") -> StyleNet:
    """The trained style network of a checkpoint, in eval mode on the CPU."""
    cfg = ckpt["config"]
    net = StyleNet(StyleNetConfig.from_dict(cfg["net"]), num_styles=len(cfg["styles"]))
    load_strictly(net, ckpt["model"], path, "weights do not fit its recorded architecture")
    return net.eval()
