"""The shipped style networks for the fast-style tab, loaded once each."""

from __future__ import annotations

import functools

from models import zoo
from models.onnx_style import OnnxStyleModel, parse_blend


def zoo_models() -> list[str]:
    """Names of the shipped ONNX style models, the default first."""
    return [m["name"] for m in zoo.manifest()["models"]]


@functools.lru_cache(maxsize=8)
def style_model(name: str) -> OnnxStyleModel:
    try:
        path = zoo.model_path(name or None)
    except KeyError as e:
        raise ValueError(str(e.args[0])) from None
    return OnnxStyleModel(path)


def parse_style_blend(text: str | None) -> dict[str, float] | str | None:
    """'udnie' -> a style name; 'wave=0.7, udnie=0.3' -> a blend; empty -> the model's first style."""
    text = (text or "").strip()
    if not text:
        return None
    if "=" not in text:
        return text
    return parse_blend([item.strip() for item in text.split(",") if item.strip()])
