"""The shipped style models: ONNX files, their style images and a manifest.

``manifest.json`` lists each model (file, kind, styles with their image thumbnails,
architecture, loss network, training command, machine and wall time). The first
entry is the embedded default used when the user names no model.
"""

from __future__ import annotations

import json
from pathlib import Path

ZOO_DIR = Path(__file__).resolve().parent
MANIFEST = ZOO_DIR / "manifest.json"
SAMPLE_PHOTO = ZOO_DIR / "chicago.jpg"


def manifest() -> dict:
    """The parsed manifest: ``{"models": [...]}``."""
    with open(MANIFEST, encoding="utf-8") as f:
        return json.load(f)


def model_path(name: str | None = None) -> Path:
    """The ONNX file of a shipped model by name; the default model when ``name`` is None."""
    models = manifest()["models"]
    if name is None:
        return ZOO_DIR / models[0]["file"]
    for entry in models:
        if entry["name"] == name:
            return ZOO_DIR / entry["file"]
    raise KeyError(f"no shipped model {name!r}; shipped: {[m['name'] for m in models]}")
