"""Stylise images with an exported ONNX model (onnxruntime only, no torch): one, several, or folders."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from models.inference.finish import check_strength, finish_style
from models.common.errors import InputFileError, NotEnoughMemoryError, UserError
from models.common.images import IMAGE_SUFFIXES, check_image_suffix, read_rgb, resize_max_side, write_rgb
from models.inference.onnx_style import OnnxStyleModel, parse_blend
from models.inference.tiles import TILE


def stylize_file(model: str | os.PathLike, image: str | os.PathLike, out: str | os.PathLike,
                 blend: Sequence[str] = (), max_size: int | None = None,
                 providers: Sequence[str] | None = None, tile: int | None = TILE, strength: float = 1.0,
                 preserve_color: bool = False) -> Path:
    """Read ``image``, stylise it with ``model`` (in tiles when larger than ``tile``) and write ``out``.

    ``strength`` mixes the result with the photo, ``preserve_color`` keeps the photo's colours
    (:func:`models.inference.finish.finish_style`)."""
    check_image_suffix(out)
    check_strength(strength)
    m = OnnxStyleModel(model, providers=providers)
    weights = parse_blend(blend) if blend else None
    rgb = resize_max_side(read_rgb(image), max_size)
    write_rgb(out, finish_style(_stylize_rgb(m, rgb, weights, tile, image), rgb, strength, preserve_color))
    return Path(out)


def _stylize_rgb(model: OnnxStyleModel, rgb, weights, tile: int | None, image: str | os.PathLike):
    """One photo through the model, in tiles when large; running out of memory is one line naming the file."""
    try:
        return model.stylize(rgb, weights, tile=tile)
    except NotEnoughMemoryError:
        raise InputFileError(image, f"not enough memory to stylise its {rgb.shape[1]}x{rgb.shape[0]} pixels; "
                                    f"try --max-size 2048 or a smaller --tile") from None


def collect_images(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """The image files named, and those directly inside the folders named (in name order)."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise InputFileError(item, f"no images in this folder ({', '.join(IMAGE_SUFFIXES)})")
            files += found
        elif item.exists():
            files.append(item)
        else:
            raise InputFileError(item, "no such file or folder")
    return files


def stylize_many(model: str | os.PathLike, inputs: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
                 blend: Sequence[str] = (), max_size: int | None = None, providers: Sequence[str] | None = None,
                 progress: bool = True, log: Callable[[str], None] = print,
                 tile: int | None = TILE, strength: float = 1.0,
                 preserve_color: bool = False) -> tuple[list[Path], list[Path]]:
    """Stylise every image of ``inputs`` (files or folders) into ``out_dir`` under its own file name.

    Photos come out upright (their EXIF orientation applied). A file that cannot be read is
    skipped with one line through ``log`` (give ``tqdm.write`` to keep the bar whole). Returns
    (written, skipped).
    """
    check_strength(strength)
    files = collect_images(inputs)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputFileError(out_dir, "is a file: --out must be a folder for several images")
    names: dict[str, Path] = {}
    for f in files:
        if f.name in names and names[f.name] != f:
            raise UserError(f"two inputs would both be written as {out_dir / f.name}: {names[f.name]} and {f}")
        names[f.name] = f
        if (out_dir / f.name).resolve() == f.resolve():
            raise InputFileError(f, f"--out {out_dir} would overwrite it: choose another folder")
    m = OnnxStyleModel(model, providers=providers)
    weights = parse_blend(blend) if blend else None
    out_dir.mkdir(parents=True, exist_ok=True)
    from tqdm import tqdm

    written, skipped = [], []
    bar = tqdm(files, unit="image", disable=not progress, dynamic_ncols=True)
    for f in bar:
        try:
            rgb = resize_max_side(read_rgb(f), max_size)
        except InputFileError as e:
            log(f"skipping {e}")
            skipped.append(f)
            continue
        target = out_dir / f.name
        write_rgb(target, finish_style(_stylize_rgb(m, rgb, weights, tile, f), rgb, strength, preserve_color))
        written.append(target)
    bar.close()
    return written, skipped
