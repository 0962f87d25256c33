"""Stylise images with an exported ONNX model (ONNX Runtime only, no torch): one, several, or folders;
and the ``stylize`` command line that does it."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from models.inference.finish import check_strength, finish_style
from models.common.cli import min_int
from models.common.errors import InputFileError, NotEnoughMemoryError, UserError
from models.common.files import check_input_file, check_output_file, refuse_overwriting_inputs, same_file
from models.common.images import IMAGE_SUFFIXES, check_image_suffix, read_rgb, resize_max_side, write_rgb
from models.inference.onnx_style import OnnxStyleModel, parse_blend
from models.inference.tiles import TILE


def stylize_file(model: str | os.PathLike, image: str | os.PathLike, out: str | os.PathLike,
                 blend: Sequence[str] = (), max_size: int | None = None,
                 providers: Sequence[str] | None = None, tile: int | None = TILE, strength: float = 1.0,
                 preserve_color: bool = False, progress: bool = False) -> Path:
    """Read ``image``, stylise it with ``model`` (in tiles when larger than ``tile``) and write ``out``.

    ``strength`` mixes the result with the photo, ``preserve_color`` keeps the photo's colours
    (:func:`models.inference.finish.finish_style`); ``progress`` shows a bar over the tiles of a
    large photo (tqdm, on stderr)."""
    check_image_suffix(out)
    check_output_file(out, "an image file name")
    refuse_overwriting_inputs(out, [image, model])
    check_strength(strength)
    check_input_file(image, "an image file")
    m = OnnxStyleModel(model, providers=providers)
    weights = parse_blend(blend) if blend else None
    rgb = resize_max_side(read_rgb(image, max_side=max_size), max_size)
    from tqdm import tqdm

    with tqdm(total=0, unit="tile", disable=not progress, dynamic_ncols=True, desc=Path(image).name) as bar:
        def tick(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        styled = _stylize_rgb(m, rgb, weights, tile, image, tick)
    write_rgb(out, finish_style(styled, rgb, strength, preserve_color))
    return Path(out)


def _stylize_rgb(model: OnnxStyleModel, rgb, weights, tile: int | None, image: str | os.PathLike,
                 progress: Callable[[int, int], None] | None = None):
    """One photo through the model, in tiles when large; running out of memory is one line naming the file."""
    try:
        return model.stylize(rgb, weights, tile=tile, progress=progress)
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
        if (out_dir / f.name).resolve() == f.resolve() or same_file(out_dir / f.name, f):
            raise InputFileError(f, f"--out {out_dir} would overwrite it: choose another folder")
        refuse_overwriting_inputs(out_dir / f.name, [model])
    m = OnnxStyleModel(model, providers=providers)
    weights = parse_blend(blend) if blend else None
    out_dir.mkdir(parents=True, exist_ok=True)
    from tqdm import tqdm

    written, skipped = [], []
    bar = tqdm(files, unit="image", disable=not progress, dynamic_ncols=True)
    for f in bar:
        try:
            rgb = resize_max_side(read_rgb(f, max_side=max_size), max_size)
        except InputFileError as e:
            log(f"skipping {e}")
            skipped.append(f)
            continue
        target = out_dir / f.name
        write_rgb(target, finish_style(_stylize_rgb(m, rgb, weights, tile, f), rgb, strength, preserve_color))
        written.append(target)
    bar.close()
    return written, skipped

# The command line: `stylelens stylize` and `python -m training stylize` ----------------------------

def add_stylize_arguments(s: argparse.ArgumentParser) -> None:
    """The options of ``stylize``, on the parser of either command."""
    s.add_argument("images", nargs="*", metavar="IMG",
                   help="photos or folders of photos to stylise (default: a bundled photo)")
    s.add_argument("--model", metavar="FILE.onnx",
                   help="style model: a file, or a shipped or user style's name (default: the shipped default style)")
    s.add_argument("--out", metavar="OUT",
                   help="the result: an image file for one photo (default: stylized.png), a folder for several "
                        "or for a folder (kept file names)")
    s.add_argument("--blend", nargs="+", default=[], metavar="NAME=W",
                   help="style or blend of a model of several styles, e.g. --blend starry=0.7 scream=0.3")
    s.add_argument("--strength", type=float, default=1.0, metavar="S",
                   help="style strength, 0 (the photo) to 1 (full style)")
    s.add_argument("--preserve-color", action="store_true",
                   help="keep the photo's colours: only the style's luminance is used")
    s.add_argument("--max-size", type=min_int(1), metavar="PX", help="shrink the photo to this longer side first")
    s.add_argument("--provider", choices=("auto", "cpu", "cuda"), default="auto", help="onnxruntime device")
    s.add_argument("--tile", type=min_int(0), default=512, metavar="PX",
                   help="photos longer than 1024 px run in overlapping tiles of PX pixels: about 1.3 GB "
                        "whatever the size (0: whole, about 0.7 GB per megapixel)")


def writes_one_file(args: argparse.Namespace) -> bool:
    """Whether ``stylize`` writes one image file (else: each input into the --out folder).

    --out names a folder to write into when it is one, unless it is named like an image (then it
    is refused as a file that cannot be written, not taken as a folder)."""
    from models.common.images import IMAGE_SUFFIXES

    single = len(args.images) <= 1 and not any(Path(p).is_dir() for p in args.images)
    out_is_folder = bool(args.out) and Path(args.out).is_dir() and Path(args.out).suffix.lower() not in IMAGE_SUFFIXES
    return single and not out_is_folder


def run_stylize(args: argparse.Namespace) -> None:
    """Run ``stylize`` with its parsed options; prints what it wrote. A UserError names what is wrong."""
    import sys

    from tqdm import tqdm

    from models import catalogue
    from models.inference.onnx_style import providers_for

    model, providers = catalogue.resolve_model(args.model), providers_for(args.provider)
    finish = {"strength": args.strength, "preserve_color": args.preserve_color}
    if writes_one_file(args):
        out = stylize_file(model, args.images[0] if args.images else catalogue.SAMPLE_PHOTO, args.out or "stylized.png",
                           blend=args.blend, max_size=args.max_size, providers=providers, tile=args.tile,
                           progress=sys.stderr.isatty(), **finish)
        print(f"wrote {out}")
        return
    if not args.out:
        raise UserError("several images or a folder need --out FOLDER")
    written, skipped = stylize_many(model, args.images or [catalogue.SAMPLE_PHOTO], args.out, blend=args.blend, max_size=args.max_size,
                                    providers=providers, progress=sys.stderr.isatty(),
                                    log=lambda m: tqdm.write(m, file=sys.stderr), tile=args.tile, **finish)
    if not written:
        raise UserError(f"no image could be read ({len(skipped)} skipped)")
    print(f"wrote {len(written)} image{'s' * (len(written) != 1)} to {args.out}"
          + (f"; skipped {len(skipped)} unreadable" if skipped else ""))
