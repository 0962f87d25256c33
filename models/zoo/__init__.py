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


# The user's own styles ------------------------------------------------------------------------
# Their folder (models.paths.user_styles_dir) holds ONNX files and a manifest.json with entries
# like the shipped manifest's; a file without an entry is listed under its file name.
USER_MANIFEST = "manifest.json"


def user_manifest(folder: Path | None = None) -> dict:
    """The user folder's manifest, ``{"models": [...]}``; empty when there is none (or it is unreadable)."""
    from models.paths import user_styles_dir

    path = Path(folder or user_styles_dir()) / USER_MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"models": []}
    return data if isinstance(data, dict) and isinstance(data.get("models"), list) else {"models": []}


def catalogue(folder: Path | None = None) -> list[dict]:
    """Every style model at hand: the shipped ones (the default first), then the user's by name.

    Each entry is its manifest entry plus ``origin`` ("shipped" or "user"), ``path`` (the ONNX
    file) and, per style, ``thumb`` (the painting's image, or None).
    """
    from models.paths import user_styles_dir

    folder = Path(folder or user_styles_dir())
    found = []
    for origin, base, entries in (("shipped", ZOO_DIR, manifest()["models"]),
                                  ("user", folder, user_manifest(folder)["models"])):
        for m in entries:
            path = base / m["file"]
            if not path.is_file():
                continue
            styles = [{**s, "thumb": base / s["image"] if s.get("image") and (base / s["image"]).is_file() else None}
                      for s in m.get("styles") or [{"name": m["name"]}]]
            found.append({**m, "origin": origin, "path": path, "styles": styles})
    listed = {m["path"].name for m in found if m["origin"] == "user"}
    if folder.is_dir():
        found += [{"name": p.stem, "file": p.name, "origin": "user", "path": p,
                   "styles": [{"name": p.stem, "thumb": None}]}
                  for p in sorted(folder.glob("*.onnx")) if p.name not in listed]
    return found


def find_model(name: str, folder: Path | None = None) -> Path:
    """The ONNX file of a model named ``name``, or of the model holding a style of that name,
    shipped or in the user's folder (a model's own name first, then a one-style model)."""
    from models.errors import UserError

    models = catalogue(folder)
    for m in models:
        if m["name"] == name:
            return m["path"]
    for m in sorted(models, key=lambda m: len(m["styles"])):  # a model of that style alone first
        if any(s["name"] == name for s in m["styles"]):
            return m["path"]
    raise UserError(f"no style or model named {name!r}; known: {', '.join(m['name'] for m in models)}")


def resolve_model(model: str | None = None, style: str | None = None) -> Path:
    """The ONNX file for a ``--model`` (a file, or a model or style name) and ``--style``: with no
    model, the default if it holds ``style``, else the model holding ``style``."""
    if model:
        if model.lower().endswith(".onnx") or Path(model).exists():
            return Path(model)
        return find_model(model)
    if style and not any(s["name"] == style for s in manifest()["models"][0]["styles"]):
        return find_model(style)
    return model_path()
