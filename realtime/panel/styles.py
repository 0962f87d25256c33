"""The style models for the fast-style tab: the shipped zoo and the user's own, loaded once each.

The picker shows one tile per style (a multi-style model gives one per style): the painting's
thumbnail with its name. What is at hand is read from ``models.catalogue`` at each refresh,
so a style trained from the page appears without a restart.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models import catalogue
from models.common.errors import UserError
from models.common.images import read_rgb, resize_max_side
from models.inference.onnx_style import OnnxStyleModel, parse_blend

THUMB_SIDE = 160


@dataclass(frozen=True)
class StyleTile:
    """One tile of the picker: a style of a model, and its painting."""

    model: str
    style: str
    thumb: str | None  # the painting's image file; None: the style shown on the sample photo
    styles_in_model: int


def zoo_models() -> list[str]:
    """Names of the style models at hand (shipped, default first, then the user's)."""
    return [m.name for m in catalogue.entries()]


def tiles() -> list[StyleTile]:
    """Every style at hand, shipped first (in the manifest's order), then the user's."""
    found = []
    for m in catalogue.entries():
        for s in m.styles:
            found.append(StyleTile(m.name, s.name, str(s.thumb) if s.thumb else None, len(m.styles)))
    return found


def tile_images(items: list[StyleTile]) -> list[tuple[np.ndarray, str]]:
    """The picker's gallery value: (thumbnail, caption) per tile. The caption is the style's name;
    a style of a multi-style model, or one a one-style model before it holds too, also names its model."""
    seen: set[str] = set()
    out = []
    for t in items:
        plain = t.styles_in_model == 1 and t.style not in seen
        if t.styles_in_model == 1:
            seen.add(t.style)
        out.append((_thumb(t.model, t.style, t.thumb), t.style if plain else f"{t.style} ({t.model})"))
    return out


@functools.lru_cache(maxsize=64)
def _thumb(model: str, style: str, image: str | None) -> np.ndarray:
    if image:
        try:
            return resize_max_side(read_rgb(image), THUMB_SIDE)
        except UserError:
            pass
    photo = resize_max_side(read_rgb(catalogue.SAMPLE_PHOTO), THUMB_SIDE)
    return style_model(model).stylize(photo, style)


@functools.lru_cache(maxsize=16)
def style_model(name: str) -> OnnxStyleModel:
    """A model at hand by name (shipped or the user's); the default for an empty name."""
    try:
        path = catalogue.find_model(name) if name else catalogue.model_path()
    except UserError as e:
        raise ValueError(str(e)) from None
    return OnnxStyleModel(path)


def parse_style_blend(text: str | None) -> dict[str, float] | str | None:
    """'udnie' -> a style name; 'wave=0.7, udnie=0.3' -> a blend; empty -> the model's first style."""
    text = (text or "").strip()
    if not text:
        return None
    if "=" not in text:
        return text
    return parse_blend([item.strip() for item in text.split(",") if item.strip()])


def blend_text(styles: list[str], weights: list[float]) -> str:
    """Slider values as the blend text the handlers take; weights normalised to sum 1."""
    total = sum(max(0.0, float(w)) for w in weights)
    if total <= 0:
        raise UserError("move at least one style slider above 0")
    return ", ".join(f"{s}={max(0.0, float(w)) / total:.4g}" for s, w in zip(styles, weights) if w > 0)


def blend_percentages(styles: list[str], weights: list[float]) -> str:
    """What the sliders mean once normalised, e.g. 'starry_night 60% · the_scream 40%'."""
    total = sum(max(0.0, float(w)) for w in weights)
    if total <= 0:
        return "all sliders at 0: move one up"
    return " · ".join(f"{s} {100 * max(0.0, float(w)) / total:.0f}%" for s, w in zip(styles, weights) if w > 0)


def model_file(name: str) -> Path:
    """The ONNX file of a model at hand by name (the default for an empty name)."""
    return catalogue.find_model(name) if name else catalogue.model_path()
