"""The style models at hand: the shipped zoo and the user's own folder, and a contact sheet.

``stylelens styles`` lists them (file, size, architecture, loss network, the styles each
holds); ``--sheet`` renders every style on one photo. What a model holds is read from its
ONNX metadata, so the user's own models are described as well as the shipped ones.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models import catalogue
from models.common.errors import UserError
from models.common.images import check_image_suffix, draw_text, read_rgb, resize_max_side, write_rgb
from models.inference.onnx_style import META_ARCH, OnnxStyleModel


@dataclass
class StyleModel:
    """One ONNX style model file and what it holds; ``error`` says why it cannot be used."""

    name: str
    origin: str  # "shipped" or "user"
    path: Path
    bytes: int
    styles: list[str] = field(default_factory=list)
    arch: str | None = None
    loss_net: str | None = None
    border_pad: int = 0
    error: str | None = None
    model: OnnxStyleModel | None = field(default=None, repr=False)

    def as_json(self) -> dict:
        return {"name": self.name, "origin": self.origin, "path": str(self.path), "bytes": self.bytes,
                "styles": self.styles, "arch": self.arch, "loss_net": self.loss_net,
                "border_pad": self.border_pad, "error": self.error}


def _open(entry: catalogue.ModelEntry) -> StyleModel:
    """Describe a catalogue entry from its file's metadata (the manifest fills what a file lacks); never raises."""
    path = entry.path
    found = StyleModel(entry.name, entry.origin, path, path.stat().st_size if path.is_file() else 0)
    try:
        model = OnnxStyleModel(path, providers=["CPUExecutionProvider"], threads=1)
    except UserError as e:
        found.error = str(e)
        return found
    found.model = model
    found.styles = model.styles
    found.arch = model.metadata.get(META_ARCH) or entry.arch
    found.loss_net = model.training.get("loss_net") or entry.loss_net
    found.border_pad = model.border_pad
    return found


def list_styles() -> list[StyleModel]:
    """The catalogue's models in its order: shipped (the default first), then the user's."""
    return [_open(e) for e in catalogue.entries()]


def contact_sheet(models: list[StyleModel], photo: str | os.PathLike, out: str | os.PathLike,
                  tile: int = 256, columns: int = 4) -> dict:
    """Write the photo and every style of every usable model, each labelled, as one image.

    Each tile is the photo at ``tile`` pixels on its longer side (never enlarged), under a
    label band: the style's name, and the model that holds it. Returns what was written.
    """
    check_image_suffix(out)
    small = resize_max_side(read_rgb(photo), tile)
    tiles = [("photo", Path(photo).name, small)]
    for m in models:
        if m.model is None:
            continue
        for style in m.styles:
            tiles.append((style, m.name, m.model.stylize(small, style)))
    h, w = small.shape[:2]
    band, gap = max(30, tile // 7), 4
    cols = min(columns, len(tiles))
    rows = math.ceil(len(tiles) / cols)
    sheet = np.full((rows * (h + band + gap) + gap, cols * (w + gap) + gap, 3), 24, np.uint8)
    for i, (title, subtitle, image) in enumerate(tiles):
        x = gap + (i % cols) * (w + gap)
        y = gap + (i // cols) * (h + band + gap)
        sheet[y:y + h, x:x + w] = image
        draw_text(sheet, title, (x, y + h, w, band // 2 + 2), 0.5, (255, 255, 255), align="left")
        draw_text(sheet, subtitle, (x, y + h + band // 2, w, band - band // 2), 0.4, (170, 170, 170), align="left")
    write_rgb(out, sheet)
    return {"path": str(Path(out).resolve()), "bytes": Path(out).stat().st_size, "width": sheet.shape[1],
            "height": sheet.shape[0], "tiles": [{"style": t, "model": s} for t, s, _ in tiles[1:]],
            "photo": str(Path(photo).resolve()), "tile_width": w, "tile_height": h}
