"""The style catalogue: every style model at hand, shipped or the user's, as typed entries.

Two folders hold style models: the shipped zoo (``models/zoo``: ONNX files, the paintings'
thumbnails and ``manifest.json``, whose first entry is the default) and the user's own folder
(:func:`models.common.paths.user_styles_dir`, with a manifest of the same form written by the
page's "Your painting" tab; an ONNX file there without an entry is listed under its file name).
This module is the only reader and writer of those manifests: it finds a model by its name or by
a style it holds, the smaller networks of the same style (siblings), and the order ``n``/``p``
step through. No torch, no onnxruntime.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from models.common.errors import InputFileError, UserError

SHIPPED_DIR = Path(__file__).resolve().parent / "zoo"
SAMPLE_PHOTO = SHIPPED_DIR / "chicago.jpg"
MANIFEST_NAME = "manifest.json"
SHIPPED, USER = "shipped", "user"
# Cost of a network relative to ``lite`` before it is measured (onnxruntime and OpenVINO at 640x480);
# the order is also the quality order of the siblings of one style (best first).
ARCH_COST = {"johnson": 4.0, "c32": 1.4, "lite": 1.0, "tiny": 0.45}
# Fields of a manifest entry that the typed entry holds; everything else is kept as written.
_TYPED = ("name", "file", "arch", "styles", "loss_net", "border_pad", "siblings")


@dataclass(frozen=True)
class StyleEntry:
    """One style of a model: its name and the painting's thumbnail (None when there is none)."""

    name: str
    thumb: Path | None = None


@dataclass(frozen=True)
class ModelEntry:
    """One ONNX style model and what its manifest says of it.

    ``siblings``: the names of the same style(s) in networks of other sizes (None: found by
    their styles among the shipped models). ``record``: the rest of the manifest entry (loss,
    training command, machine, wall time, parity, date, size), as written.
    """

    name: str
    file: str
    folder: Path
    origin: str  # SHIPPED or USER
    styles: tuple[StyleEntry, ...]
    arch: str | None = None
    loss_net: str | None = None
    border_pad: int = 0  # the mirrored margin the model runs on, in pixels
    siblings: tuple[str, ...] | None = None
    record: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def path(self) -> Path:
        return self.folder / self.file

    @property
    def style_names(self) -> list[str]:
        return [s.name for s in self.styles]

    @property
    def cost(self) -> float:
        """Its cost per pixel relative to ``lite`` (1.0 when its network is unknown)."""
        return ARCH_COST.get(self.arch or "", 1.0)

    @classmethod
    def from_manifest(cls, entry: dict, folder: Path, origin: str) -> "ModelEntry":
        folder = Path(folder)
        styles = tuple(StyleEntry(s["name"], folder / s["image"] if s.get("image") and (folder / s["image"]).is_file()
                                  else None) for s in entry.get("styles") or [{"name": entry["name"]}])
        siblings = entry.get("siblings")
        return cls(entry["name"], entry["file"], folder, origin, styles, entry.get("arch"), entry.get("loss_net"),
                   int(entry.get("border_pad", 0) or 0), tuple(siblings) if siblings is not None else None,
                   {k: v for k, v in entry.items() if k not in _TYPED})

    def to_manifest(self) -> dict:
        """The entry as a manifest holds it (thumbnails by file name, relative to the folder)."""
        out: dict = {"name": self.name, "file": self.file, "arch": self.arch,
                     "styles": [{"name": s.name, **({"image": s.thumb.name} if s.thumb else {})} for s in self.styles],
                     "loss_net": self.loss_net}
        if self.border_pad:
            out["border_pad"] = self.border_pad
        if self.siblings is not None:
            out["siblings"] = list(self.siblings)
        return {**out, **self.record}


# reading and writing manifests ------------------------------------------------------------------

def read_manifest(folder: str | os.PathLike, origin: str = USER) -> list[ModelEntry]:
    """The entries of ``folder/manifest.json`` in its order; empty when there is none or it is
    unreadable (a user's folder may hold only files)."""
    folder = Path(folder)
    try:
        data = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
        entries = data["models"] if isinstance(data, dict) and isinstance(data.get("models"), list) else []
        return [ModelEntry.from_manifest(e, folder, origin) for e in entries]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def write_manifest(folder: str | os.PathLike, entries: list[ModelEntry]) -> Path:
    """Write ``entries`` as ``folder/manifest.json``, atomically (a crash leaves the old one)."""
    from models.common.files import atomic_path

    path = Path(folder) / MANIFEST_NAME
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"models": [e.to_manifest() for e in entries]}, indent=2) + "\n", encoding="utf-8")
    return path


def add_to_manifest(folder: str | os.PathLike, entry: ModelEntry, first: bool = False) -> Path:
    """Add ``entry`` to ``folder``'s manifest, replacing one of the same name; ``first``: as the default."""
    kept = [e for e in read_manifest(folder, entry.origin) if e.name != entry.name]
    return write_manifest(folder, [entry, *kept] if first else [*kept, entry])


def new_entry(record: dict, folder: str | os.PathLike, origin: str = USER) -> ModelEntry:
    """A typed entry from a manifest entry written by ``training.export.manifest_entry``."""
    return ModelEntry.from_manifest(record, Path(folder), origin)


# what is at hand ------------------------------------------------------------------------------

def shipped() -> list[ModelEntry]:
    """The shipped models in the manifest's order (the default first)."""
    return read_manifest(SHIPPED_DIR, SHIPPED)


def user_models(folder: str | os.PathLike | None = None) -> list[ModelEntry]:
    """The user's models: manifest entries whose file exists, then the other ONNX files by name."""
    from models.common.paths import user_styles_dir

    folder = Path(folder or user_styles_dir())
    found = [e for e in read_manifest(folder, USER) if e.path.is_file()]
    listed = {e.file for e in found}
    if folder.is_dir():
        found += [ModelEntry(p.stem, p.name, folder, USER, (StyleEntry(p.stem),))
                  for p in sorted(folder.glob("*.onnx")) if p.name not in listed]
    return found


def entries(folder: str | os.PathLike | None = None) -> list[ModelEntry]:
    """Every style model at hand: the shipped ones whose file exists (the default first), then the user's."""
    return [e for e in shipped() if e.path.is_file()] + user_models(folder)


def default_model() -> ModelEntry:
    models = shipped()
    if not models:
        raise UserError(f"no shipped style model: {SHIPPED_DIR / MANIFEST_NAME} is missing or empty")
    return models[0]


def model_path(name: str | None = None) -> Path:
    """The ONNX file of a shipped model by name; the default model's when ``name`` is None."""
    if name is None:
        return default_model().path
    for e in shipped():
        if e.name == name:
            return e.path
    raise KeyError(f"no shipped model {name!r}; shipped: {[e.name for e in shipped()]}")


def find(name: str, folder: str | os.PathLike | None = None) -> ModelEntry:
    """The model named ``name``, or the model holding a style of that name, shipped or the user's
    (a model's own name first, then a model of that style alone, then a model of several)."""
    models = entries(folder)
    for m in models:
        if m.name == name:
            return m
    for m in sorted(models, key=lambda m: len(m.styles)):
        if name in m.style_names:
            return m
    raise UserError(f"no style or model named {name!r}; known: {', '.join(m.name for m in models)}")


def find_model(name: str, folder: str | os.PathLike | None = None) -> Path:
    """:func:`find`'s file."""
    return find(name, folder).path


def resolve_model(model: str | None = None, style: str | None = None) -> Path:
    """The ONNX file for a ``--model`` (a file, or a model or style name) and ``--style``: with no
    model, the default if it holds ``style``, else the model holding ``style``."""
    if model:
        if model.lower().endswith(".onnx") or Path(model).exists():
            path = Path(model)
            if path.is_dir():
                raise InputFileError(path, "is a folder; --model takes an .onnx file or a style name")
            return path
        return find_model(model)
    if style and style not in default_model().style_names:
        return find_model(style)
    return model_path()


def entry_of(path: str | os.PathLike) -> ModelEntry | None:
    """The catalogue's entry of the model in ``path`` (shipped first), or None for another file."""
    path = Path(path).resolve()
    return next((e for e in entries() if e.path.resolve() == path), None)


def shipped_entry(path: str | os.PathLike) -> ModelEntry | None:
    """The shipped manifest's entry of the model in ``path``; None for a file that is not shipped."""
    path = Path(path).resolve()
    return next((e for e in shipped() if e.path.resolve() == path), None)


def siblings(path: str | os.PathLike) -> list[ModelEntry]:
    """The same style in cheaper shipped networks, best first, after ``path``'s own entry.

    A shipped entry may list them (``siblings``); otherwise the shipped models holding the same
    styles are its siblings, ``c32`` before ``lite`` before ``tiny``. A file that is not shipped has none
    (the list is empty)."""
    mine = shipped_entry(path)
    if mine is None:
        return []
    order = list(ARCH_COST)
    rank = lambda e: order.index(e.arch) if e.arch in order else len(order)  # noqa: E731
    if mine.siblings is not None:
        others = [e for e in shipped() if e.name in mine.siblings]
    else:
        others = [e for e in shipped() if e.name != mine.name and e.style_names == mine.style_names]
    return [mine] + sorted((e for e in others if rank(e) > rank(mine)), key=rank)


def style_cycle(current: str | os.PathLike, folder: str | os.PathLike | None = None) -> list[Path]:
    """The model files ``n``/``p`` step through, in :func:`entries` order: one network per set of
    shipped styles (the smaller siblings are the adaptive ladder's to choose), ``current`` always
    among them; empty when ``current`` is not in the catalogue (a file of the user's elsewhere)."""
    current = Path(current).resolve()
    order: list[Path] = []
    seen: set[tuple[str, ...]] = set()
    for m in entries(folder):
        path, styles = m.path.resolve(), tuple(m.style_names)
        if m.origin == SHIPPED and styles in seen and path != current:
            continue
        seen.add(styles)
        if path not in order:
            order.append(path)
    return order if current in order else []


def taken_names(folder: str | os.PathLike | None = None) -> set[str]:
    """Every model and style name at hand (a new style may not reuse one)."""
    return {n for m in entries(folder) for n in (m.name, *m.style_names)}
