"""Stylise one image with an exported ONNX model (onnxruntime only, no torch)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from models.images import check_image_suffix, read_rgb, resize_max_side, write_rgb
from models.onnx_style import OnnxStyleModel, parse_blend


def stylize_file(model: str | os.PathLike, image: str | os.PathLike, out: str | os.PathLike,
                 blend: Sequence[str] = (), max_size: int | None = None,
                 providers: Sequence[str] | None = None) -> Path:
    """Read ``image``, stylise it with ``model`` and write ``out``; returns ``out``."""
    check_image_suffix(out)
    m = OnnxStyleModel(model, providers=providers)
    weights = parse_blend(blend) if blend else None
    rgb = resize_max_side(read_rgb(image), max_size)
    write_rgb(out, m.stylize(rgb, weights))
    return Path(out)
