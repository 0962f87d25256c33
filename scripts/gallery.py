"""Regenerate the README's gallery: every shipped style network beside Gatys optimisation.

One JPEG (written atomically, kept under --max-kb): a header row of style thumbnails
(with the model each column comes from), then for each content photo two rows:

  fast network (ONNX)       one forward pass of the zoo's model        (milliseconds)
  Gatys optimisation        style_transfer() on the same loss network  (about 36 s per image at
                                                                        256 px on 2 busy CPU cores)

A model of several styles (a conditional network) gives one column per style (one-hot
weights) and a column for the equal blend of all of them; its Gatys column matches the
equal mix of the styles' Gram matrices. Both methods see the same content at --size.
Gatys uses the project's defaults (visualize.synthesis) and each style image at the size the
network was trained with it (twice the training crop, 384 px), so strokes have the same scale:
the zoo's 256 px thumbnails are enlarged for that, --style-dir gives full-size paintings.

    python scripts/gallery.py --style-dir ../shared/data/styles   # docs/gallery.jpg, about 37 min on 2 CPU cores (VGG16 Gatys)
    python scripts/gallery.py --no-gatys --out /tmp/fast.jpg         # fast networks only, seconds
    python scripts/gallery.py --zoo my_zoo/ --gatys-steps 150        # another manifest.json, quicker Gatys
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from models import catalogue
from models.common.cli import min_int
from models.common.errors import InputFileError, UserError
from models.common.images import draw_text, encode_rgb, letterbox, read_rgb, resize_max_side, write_rgb
from models.inference.onnx_style import OnnxStyleModel, parse_blend

PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = PROJECT / "docs" / "gallery.jpg"
DEFAULT_CONTENT_DIR = PROJECT.parent / "shared" / "data" / "content"  # the data folder beside a checkout
DEFAULT_CONTENTS = ("chicago.jpg", "amber.jpg")
DEFAULT_TRAINING_SIZE = 192  # training crop when a manifest entry does not say

# Drawing: white page, grey caption bands, dark text (RGB).
PAGE, BAND, TEXT, MUTED = (255, 255, 255), (236, 236, 236), (25, 25, 25), (90, 90, 90)
GAP = 4  # pixels between neighbouring images
FAST_REPEATS = 3  # fast calls per image, the best one timed


# ----------------------------------------------------------------------------- what to show

@dataclass(frozen=True)
class Column:
    """One style column: which model, which style weights, which style images to compare with."""

    model: str  # manifest name of the model
    model_file: Path
    title: str  # style name, or "equal blend"
    blend: dict[str, float] | None  # None: the model's only style
    style_images: tuple[Path, ...]  # one per style the column holds (equal weights)
    style_side: int  # longer side of the style images for Gatys: as in training
    loss_net: str
    arch: str


@dataclass(frozen=True)
class Content:
    """A content photo, and its copy at the processing size."""

    name: str
    photo: np.ndarray  # as read (for the content column, shown sharp)
    small: np.ndarray  # longer side --size: what both methods stylise


def read_manifest(zoo_dir: Path) -> list[catalogue.ModelEntry]:
    """The entries of ``zoo_dir/manifest.json``, checked enough for the gallery."""
    path = zoo_dir / catalogue.MANIFEST_NAME
    if not path.is_file():
        raise InputFileError(path, "no manifest.json in this --zoo folder")
    entries = catalogue.read_manifest(zoo_dir, catalogue.SHIPPED)
    if not entries:
        raise InputFileError(path, "lists no models (or is not a zoo manifest)")
    for e in entries:
        if not all(st.thumb for st in e.styles):
            raise InputFileError(path, f"entry {e.name!r}: every style needs an image beside the manifest")
    return entries


def style_image(style_dir: Path | None, style: catalogue.StyleEntry) -> Path:
    """The style's image: ``style_dir/<name>.jpg`` when given, else the zoo's thumbnail."""
    path = style_dir / f"{style.name}.jpg" if style_dir else style.thumb
    if path is None or not path.is_file():
        raise InputFileError(path or style_dir or ".", f"style image of {style.name!r} not found")
    return path


def columns_of(zoo_dir: Path, style_dir: Path | None) -> list[Column]:
    """One column per style of every model; a model of several styles adds its equal blend."""
    columns = []
    for e in read_manifest(zoo_dir):
        training = e.record.get("training", {})
        side = int(training.get("style_size") or 2 * training.get("size", DEFAULT_TRAINING_SIZE))
        common = dict(model=e.name, model_file=e.path, style_side=side,
                      loss_net=e.loss_net or "efficientnet_lite0", arch=e.arch or "?")
        images = [style_image(style_dir, s) for s in e.styles]
        names = e.style_names
        if len(names) == 1:
            columns.append(Column(title=names[0], blend=None, style_images=(images[0],), **common))
            continue
        for name, image in zip(names, images):
            columns.append(Column(title=name, blend={name: 1.0}, style_images=(image,), **common))
        columns.append(Column(title="equal blend", blend=parse_blend(names), style_images=tuple(images), **common))
    return columns


def read_contents(content_dir: Path, names: Sequence[str], size: int) -> list[Content]:
    """The content photos; chicago.jpg falls back to the copy bundled with the zoo.

    A missing photo is skipped with a warning, so the gallery still builds on a machine
    that lacks the data folder; none at all is an error.
    """
    contents = []
    for name in names:
        path = content_dir / name
        if not path.is_file() and name == catalogue.SAMPLE_PHOTO.name:
            path = catalogue.SAMPLE_PHOTO
        if not path.is_file():
            print(f"warning: {path}: not found, left out of the gallery", file=sys.stderr)
            continue
        photo = read_rgb(path)
        contents.append(Content(Path(name).stem, photo, resize_max_side(photo, size, enlarge=True)))
    if not contents:
        raise UserError(f"none of the content photos {list(names)} was found in {content_dir}")
    return contents


# ----------------------------------------------------------------------------- the two methods

def run_fast(columns: Sequence[Column], contents: Sequence[Content]) -> tuple[dict, list[float], str]:
    """Every column on every content with onnxruntime.

    Returns {(content, column index): RGB}, seconds per image (the best of ``FAST_REPEATS``
    calls: on shared cores one call can take several times longer) and the provider used.
    """
    results, seconds = {}, []
    models: dict[Path, OnnxStyleModel] = {}
    with tqdm(total=len(columns) * len(contents), desc="fast networks", unit="image") as bar:
        for i, col in enumerate(columns):
            if col.model_file not in models:
                m = models[col.model_file] = OnnxStyleModel(col.model_file)
                m.stylize(contents[0].small, col.blend)  # warm-up: the first call allocates
            m = models[col.model_file]  # a blend naming a style the model lacks raises a UserError
            for c in contents:
                best = float("inf")
                for _ in range(FAST_REPEATS):
                    t0 = time.perf_counter()
                    results[c.name, i] = m.stylize(c.small, col.blend)
                    best = min(best, time.perf_counter() - t0)
                seconds.append(best)
                bar.update()
    provider = next(iter(models.values())).providers[0].removesuffix("ExecutionProvider")
    return results, seconds, provider


def run_gatys(columns: Sequence[Column], contents: Sequence[Content],
              steps: int | None) -> tuple[dict, list[float], int, str]:
    """Gatys style transfer with the project's defaults for each column and content.

    Returns {(content, column index): RGB}, seconds per image, the steps used and the device
    (CUDA when there is one). Columns with the same style images and loss network share one
    optimisation.
    """
    import torch  # only here: the fast path needs no torch

    from models.backbones import load_backbone
    from models.common.images import rgb_to_tensor, tensor_to_rgb
    from visualize.style_transfer import style_transfer
    from visualize.synthesis import synthesis_config

    device = "cuda" if torch.cuda.is_available() else "cpu"
    backbones = {}
    jobs: dict[tuple, list[tuple[str, int]]] = {}  # one optimisation -> the cells it fills
    for i, col in enumerate(columns):
        if col.loss_net not in backbones:
            backbones[col.loss_net] = load_backbone(col.loss_net, device=device)
        for c in contents:
            key = (c.name, col.style_images, col.style_side, col.loss_net)
            jobs.setdefault(key, []).append((c.name, i))
    steps = synthesis_config(next(iter(backbones.values()))).steps if steps is None else steps
    by_name = {c.name: c for c in contents}
    results, seconds = {}, []
    style_cache: dict[tuple[Path, int], torch.Tensor] = {}
    with tqdm(total=steps * len(jobs), desc="Gatys optimisation", unit="step") as bar:
        for (name, images, side, loss_net), cells in jobs.items():
            styles = []
            for p in images:
                if (p, side) not in style_cache:
                    style_cache[p, side] = rgb_to_tensor(resize_max_side(read_rgb(p), side, enlarge=True)).to(device)
                styles.append(style_cache[p, side])
            bar.set_postfix_str(f"{name} x {'+'.join(Path(p).stem for p in images)}")
            done = 0

            def progress(n: int, total: int) -> None:
                nonlocal done
                bar.update(n - done)
                done = n

            t0 = time.perf_counter()
            out = style_transfer(backbones[loss_net], rgb_to_tensor(by_name[name].small).to(device), styles,
                                 steps=steps, progress=progress)
            seconds.append(time.perf_counter() - t0)
            bar.update(steps - done)
            rgb = tensor_to_rgb(out.image)
            for cell in cells:
                results[cell] = rgb
    return results, seconds, steps, device.upper()


# ----------------------------------------------------------------------------- drawing

def strips(images: Sequence[np.ndarray], width: int, height: int) -> np.ndarray:
    """Vertical strips of several images side by side (the thumbnail of a blend)."""
    out = np.empty((height, width, 3), np.uint8)
    edges = np.linspace(0, width, len(images) + 1).round().astype(int)
    for img, x0, x1 in zip(images, edges[:-1], edges[1:]):
        h, w = img.shape[:2]
        s = max((x1 - x0) / w, height / h)  # cover the strip, then crop its centre
        big = resize_max_side(img, max(1, round(max(h, w) * s)) + 1, enlarge=True)
        y, x = (big.shape[0] - height) // 2, (big.shape[1] - (x1 - x0)) // 2
        out[:, x0:x1] = big[y:y + height, x:x + x1 - x0]
    return out


@dataclass
class Layout:
    """Where everything goes, in pixels.

    A page margin, then the header (model names spanning their columns, style thumbnails, style
    names), then one group per content: for each method (fast, then Gatys) a caption band and a
    row of images. Every column is ``cell`` wide (column 0 holds the content photos); a content's
    rows are as tall as its aspect asks. ``boxes`` maps (content, "fast"/"gatys"/"content",
    column) to the (x, y, w, h) of each image drawn.
    """

    width: int
    columns: int  # style columns (the content column comes first)
    shapes: list[tuple[int, int]]  # (height, width) of each content as stylised
    methods: int  # 1 (fast) or 2 (fast and Gatys)
    boxes: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.margin = max(GAP, self.width // 200)
        self.cell = (self.width - 2 * self.margin) // (self.columns + 1)
        if self.cell < 32:
            raise UserError(f"--width {self.width} leaves {self.cell} px per column for {self.columns + 1} "
                            f"columns; give at least {32 * (self.columns + 1) + 2 * self.margin}")
        self.left = (self.width - self.cell * (self.columns + 1)) // 2
        self.inner = self.cell - GAP  # image width inside a column
        self.font = max(0.35, min(0.8, self.width / 2000))
        self.text_h = max(14, round(40 * self.font))
        self.thumb_h = max(16, round(0.45 * self.cell))
        self.row_heights = [max(8, round(self.inner * h / w)) for h, w in self.shapes]

    @property
    def header_height(self) -> int:
        return self.margin + 2 * self.text_h + self.thumb_h + GAP

    def group_height(self, row_h: int) -> int:
        return self.methods * (self.text_h + row_h + GAP)

    @property
    def height(self) -> int:
        return self.header_height + sum(self.group_height(h) for h in self.row_heights) + self.margin - GAP

    def x(self, column: int) -> int:
        """Left edge of a column; column 0 holds the content photos."""
        return self.left + column * self.cell


METHODS = ("fast", "gatys")


def render(columns: Sequence[Column], contents: Sequence[Content], fast: dict, gatys: dict | None,
           band_text: Sequence[str], width: int) -> tuple[np.ndarray, Layout]:
    """The gallery image (RGB) and its layout."""
    methods = 1 if gatys is None else 2
    L = Layout(width, len(columns), [c.small.shape[:2] for c in contents], methods)
    canvas = np.empty((L.height, L.width, 3), np.uint8)
    canvas[:] = PAGE
    results_x0, results_x1 = L.x(1), L.x(1 + len(columns)) - GAP

    # Header: model names spanning their columns, style thumbnails, style names.
    y = L.margin
    start = 0
    for i in range(1, len(columns) + 1):
        if i == len(columns) or columns[i].model != columns[start].model:
            x0, x1 = L.x(1 + start), L.x(1 + i) - GAP
            draw_text(canvas, columns[start].model, (x0, y, x1 - x0, L.text_h - GAP - 2), L.font, MUTED)
            cv2.line(canvas, (x0 + GAP, y + L.text_h - GAP), (x1 - GAP, y + L.text_h - GAP), MUTED, 1)
            start = i
    draw_text(canvas, "model", (L.x(0), y, L.inner, L.text_h), L.font, MUTED)
    y += L.text_h
    thumbs: dict[Path, np.ndarray] = {}
    for i, col in enumerate(columns):
        for p in col.style_images:
            if p not in thumbs:
                thumbs[p] = resize_max_side(read_rgb(p), 2 * L.cell)
        images = [thumbs[p] for p in col.style_images]
        tile = letterbox(images[0], (L.inner, L.thumb_h), PAGE) if len(images) == 1 else strips(images, L.inner, L.thumb_h)
        canvas[y:y + L.thumb_h, L.x(1 + i):L.x(1 + i) + L.inner] = tile
        draw_text(canvas, col.title, (L.x(1 + i), y + L.thumb_h, L.inner, L.text_h), L.font, TEXT)
    draw_text(canvas, "style", (L.x(0), y, L.inner, L.thumb_h), L.font, MUTED)
    draw_text(canvas, "content", (L.x(0), y + L.thumb_h, L.inner, L.text_h), L.font, TEXT)
    y = L.header_height

    # One group per content: per method a caption band over the results, then the images.
    for c, row_h in zip(contents, L.row_heights):
        top = y
        for m in range(methods):
            canvas[y:y + L.text_h, results_x0:results_x1] = BAND
            draw_text(canvas, band_text[m], (results_x0, y, results_x1 - results_x0, L.text_h), L.font, TEXT, align="left")
            y += L.text_h
            results = fast if m == 0 else gatys
            for i in range(len(columns)):
                x = L.x(1 + i)
                canvas[y:y + row_h, x:x + L.inner] = letterbox(results[c.name, i], (L.inner, row_h), PAGE)
                L.boxes[c.name, METHODS[m], i] = (x, y, L.inner, row_h)
            y += row_h + GAP
        # The content photo once for its rows: its name beside the first band, the photo centred below.
        draw_text(canvas, c.name, (L.x(0), top, L.inner, L.text_h), L.font, TEXT)
        area_top = top + L.text_h
        py = area_top + (y - GAP - area_top - row_h) // 2
        canvas[py:py + row_h, L.x(0):L.x(0) + L.inner] = letterbox(c.photo, (L.inner, row_h), PAGE)
        L.boxes[c.name, "content", 0] = (L.x(0), py, L.inner, row_h)
    return canvas, L


def write_jpeg(path: Path, rgb: np.ndarray, max_bytes: int) -> tuple[int, int]:
    """Write the image as JPEG at the best quality (95 down to 40) that stays under ``max_bytes``.

    Atomic (models.common.images.write_rgb). Returns (quality, bytes); warns when even quality 40 is
    larger.
    """
    for quality in range(95, 35, -5):
        buf = encode_rgb(path, rgb, jpeg_quality=quality)
        if buf.size <= max_bytes:
            break
    else:
        print(f"warning: {path}: {buf.size / 1e3:.0f} KB even at JPEG quality {quality}; give a smaller --width",
              file=sys.stderr)
    write_rgb(path, rgb, encoded=buf)
    return quality, int(buf.size)


# ----------------------------------------------------------------------------- command line

@dataclass
class Gallery:
    """What :func:`main` made: the file, its layout (cell boxes), the columns and the timings."""

    path: Path
    layout: Layout
    columns: list[Column]
    contents: list[str]
    fast_seconds: list[float]
    gatys_seconds: list[float]
    jpeg_quality: int
    bytes: int


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help="the gallery, a .jpg file (default: docs/gallery.jpg in the project)")
    ap.add_argument("--zoo", type=Path, default=catalogue.SHIPPED_DIR,
                    help="a folder holding manifest.json, its ONNX models and style thumbnails "
                         "(default: the shipped zoo, models/zoo)")
    ap.add_argument("--content-dir", type=Path, default=DEFAULT_CONTENT_DIR,
                    help=f"folder of the content photos (default: {DEFAULT_CONTENT_DIR}; chicago.jpg falls "
                         "back to the copy in models/zoo, other missing photos are left out with a warning)")
    ap.add_argument("--contents", nargs="+", default=list(DEFAULT_CONTENTS), metavar="NAME",
                    help=f"content photo file names in --content-dir (default: {' '.join(DEFAULT_CONTENTS)})")
    ap.add_argument("--style-dir", type=Path, default=None,
                    help="folder of full-size style images named <style>.jpg for Gatys and the header "
                         "(default: the thumbnails beside the models in --zoo)")
    ap.add_argument("--size", type=min_int(16), default=256,
                    help="longer side in pixels of the content both methods stylise (default: 256)")
    ap.add_argument("--width", type=min_int(64), default=1600, help="width of the gallery in pixels (default: 1600)")
    ap.add_argument("--gatys-steps", type=min_int(0), default=None,
                    help="L-BFGS iterations per Gatys image (default: the library's, 300 for efficientnet_lite0)")
    ap.add_argument("--no-gatys", action="store_true", help="fast networks only (seconds instead of minutes)")
    ap.add_argument("--max-kb", type=min_int(10), default=400,
                    help="largest file size; JPEG quality is lowered until it fits (default: 400)")
    args = ap.parse_args(argv)
    if args.out.suffix.lower() not in (".jpg", ".jpeg"):
        ap.error(f"--out {args.out}: the gallery is a JPEG; name it .jpg")
    return args


def _duration(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms" if seconds < 1 else f"{seconds:.0f} s"


def _device(name: str) -> str:
    """"CPU" with its core count, or the accelerator's name."""
    return f"{os.cpu_count()}-core CPU" if name.upper() == "CPU" else name


def main(argv: Sequence[str] | None = None) -> Gallery:
    """Build the gallery as the command line says; returns what was made."""
    args = parse_args(argv)
    t_start = time.perf_counter()
    columns = columns_of(args.zoo, args.style_dir)
    contents = read_contents(args.content_dir, args.contents, args.size)
    print(f"{len(columns)} style columns from {args.zoo}, {len(contents)} content photos at {args.size} px",
          file=sys.stderr)
    fast, fast_s, provider = run_fast(columns, contents)
    archs = ", ".join(dict.fromkeys(c.arch for c in columns))
    bands = [f"fast network ({archs}, ONNX): one forward pass, {_duration(statistics.median(fast_s))} "
             f"per image at {args.size} px ({_device(provider)})"]
    gatys, gatys_s = None, []
    if not args.no_gatys:
        gatys, gatys_s, steps, device = run_gatys(columns, contents, args.gatys_steps)
        nets = ", ".join(dict.fromkeys(c.loss_net for c in columns))
        bands.append(f"Gatys optimisation (same loss network, {nets}): {steps} L-BFGS steps, "
                     f"{_duration(statistics.median(gatys_s))} per image ({_device(device)})")
    image, layout = render(columns, contents, fast, gatys, bands, args.width)
    quality, size_bytes = write_jpeg(args.out, image, args.max_kb * 1000)
    print(f"wrote {args.out}: {layout.width}x{layout.height}, {size_bytes / 1e3:.0f} KB (JPEG quality {quality}); "
          f"fast median {1e3 * statistics.median(fast_s):.1f} ms"
          + (f", Gatys median {statistics.median(gatys_s):.1f} s over {len(gatys_s)} images" if gatys_s else "")
          + f"; {time.perf_counter() - t_start:.0f} s in all", file=sys.stderr)
    return Gallery(args.out, layout, columns, [c.name for c in contents], fast_s, gatys_s, quality, size_bytes)


if __name__ == "__main__":
    try:
        main()
    except UserError as e:
        raise SystemExit(f"error: {e}") from None
