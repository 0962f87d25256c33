"""The style models for the fast-style tab: the shipped zoo and the user's own, loaded once each.

The picker shows one tile per painting (its thumbnail and name) and one per model of several
styles (its blend). What is at hand is read from ``models.catalogue`` at each refresh,
so a style trained from the page appears without a restart.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models import catalogue
from models.common.errors import UserError
from models.common.images import read_rgb, resize_max_side
from models.inference.onnx_style import OnnxStyleModel, parse_blend

THUMB_SIDE = 160


@dataclass(frozen=True)
class StyleTile:
    """One tile of the picker: a painting, or the blend of a model of several styles."""

    model: str  # the model it runs
    style: str  # the style it starts with (a blend tile: the model's first)
    thumb: str | None  # the painting's image file; None: the style shown on the sample photo
    caption: str
    blend: bool = False  # a model of several styles: its sliders open, all styles mixed equally


def zoo_models() -> list[str]:
    """Names of the style models at hand (shipped, default first, then the user's)."""
    return [m.name for m in catalogue.entries()]


def tiles() -> list[StyleTile]:
    """One tile per painting at hand, run by the model its name finds (a one-style model first,
    as ``--style NAME`` does), then one blend tile per model of several styles: shipped first, then
    the user's. Smaller networks of a style (``starry_night_tiny``) get no tile: the live ladder
    chooses them."""
    entries = catalogue.entries()
    found: list[StyleTile] = []
    for name in dict.fromkeys(n for e in entries for n in e.style_names):
        model = catalogue.find(name)
        style = next(s for s in model.styles if s.name == name)
        found.append(StyleTile(model.name, name, str(style.thumb) if style.thumb else None, name))
    for e in entries:
        if len(e.styles) > 1:
            found.append(StyleTile(e.name, e.styles[0].name, str(e.styles[0].thumb) if e.styles[0].thumb else None,
                                   f"blend of {len(e.styles)}", blend=True))
    return found


def tile_images(items: list[StyleTile]) -> list[tuple[np.ndarray, str]]:
    """The picker's gallery value: (thumbnail, caption) per tile; a blend tile shows its styles side by side."""
    out = []
    for t in items:
        if t.blend:
            model = catalogue.find(t.model)
            thumbs = [_thumb(t.model, s.name, str(s.thumb) if s.thumb else None) for s in model.styles]
            out.append((_strip(thumbs), t.caption))
        else:
            out.append((_thumb(t.model, t.style, t.thumb), t.caption))
    return out


def _strip(images: list[np.ndarray]) -> np.ndarray:
    """Vertical slices of each image side by side, at the first one's size."""
    h, w = images[0].shape[:2]
    cuts = np.linspace(0, w, len(images) + 1).round().astype(int)
    out = images[0].copy()
    for k, img in enumerate(images):
        img = img if img.shape[:2] == (h, w) else cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        out[:, cuts[k]:cuts[k + 1]] = img[:, cuts[k]:cuts[k + 1]]
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
