"""Stylise one image with an exported ONNX model (onnxruntime only, no torch)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from models.errors import InputFileError, NotEnoughMemoryError
from models.images import check_image_suffix, read_rgb, resize_max_side, write_rgb
from models.onnx_style import OnnxStyleModel, parse_blend
from models.tiles import TILE


def stylize_file(model: str | os.PathLike, image: str | os.PathLike, out: str | os.PathLike,
                 blend: Sequence[str] = (), max_size: int | None = None,
                 providers: Sequence[str] | None = None, tile: int | None = TILE) -> Path:
    """Read ``image``, stylise it with ``model`` (in tiles when larger than ``tile``) and write ``out``."""
    check_image_suffix(out)
    m = OnnxStyleModel(model, providers=providers)
    weights = parse_blend(blend) if blend else None
    rgb = resize_max_side(read_rgb(image), max_size)
    try:
        styled = m.stylize(rgb, weights, tile=tile)
    except NotEnoughMemoryError:
        raise InputFileError(image, f"not enough memory to stylise its {rgb.shape[1]}x{rgb.shape[0]} pixels; "
                                    f"try --max-size 2048 or a smaller --tile") from None
    write_rgb(out, styled)
    return Path(out)
