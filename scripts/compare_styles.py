"""Side-by-side study of style models: one PNG and two figures per result.

For each painting given, one row: the painting, the published output where one exists
(``--reference DIR``, files named ``*_<photo>_<painting>.jpg``, e.g. Johnson et al.'s
``johnson_eccv16_chicago_wave.jpg``), the shipped model (the painting's first one-style model in
``models/zoo/manifest.json``), then each candidate (``--candidate LABEL=PATTERN``: an ONNX model or a training checkpoint,
``{name}`` in the pattern standing for the painting's file stem). Every result is a photo
(``--photo``, several allowed, default the bundled chicago.jpg) at ``--size`` (longer side, default
510); a published output goes with the photo named in its file name.

Two figures under each result, defined in the shared notes; they need no network of ours:
- palette: sliced Wasserstein distance between the Lab pixel distributions of the result and
  the painting (20k random pixels each, 64 random directions, 512 quantiles; lower = closer);
- structure: correlation of the Sobel gradient magnitudes of the blurred (sigma 2) grey result
  and photo (1 = the photo's edges exactly; the published models sit at 0.57-0.66).
A colour term in a training loss optimises the palette figure itself, and neither figure sees
brush strokes: look at the PNG.

    python scripts/compare_styles.py --styles ../shared/data/styles/*.jpg \\
        --reference ../shared/data/reference --candidate new=runs/{name}/checkpoint.pt --out compare.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models import catalogue  # noqa: E402
from models.common.errors import UserError  # noqa: E402
from models.common.images import draw_text, letterbox, read_rgb, resize_max_side, write_rgb  # noqa: E402

_BORDER = 32  # the mirrored margin the shipped models run on; checkpoints get the same


def palette_distance(result: np.ndarray, painting: np.ndarray, pixels: int = 20000, directions: int = 64,
                     quantiles: int = 512, seed: int = 0) -> float:
    """Sliced Wasserstein distance of the Lab pixel distributions of two RGB uint8 images (L in 0..100)."""
    rng = np.random.default_rng(seed)

    def lab_sample(rgb: np.ndarray) -> np.ndarray:
        lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float64)
        lab[:, 0] *= 100 / 255
        lab[:, 1:] -= 128
        return lab[rng.choice(len(lab), pixels, replace=len(lab) < pixels)]

    a, b = lab_sample(result), lab_sample(painting)
    dirs = rng.normal(size=(directions, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    q = np.linspace(0, 1, quantiles)
    return float(np.mean([np.abs(np.quantile(a @ d, q) - np.quantile(b @ d, q)).mean() for d in dirs]))


def structure_kept(result: np.ndarray, photo: np.ndarray) -> float:
    """``training.losses.structure_kept`` (what the style calibration holds) of two RGB uint8 images."""
    from models.common.images import rgb_to_tensor
    from training.losses import structure_kept as kept

    return float(kept(rgb_to_tensor(result), rgb_to_tensor(photo))[0])


def stylize_with(path: Path, photo: np.ndarray, style: str | None = None) -> np.ndarray:
    """The photo through an ONNX model (with its own margin) or a checkpoint (a zero-padded network
    on a 32 px mirrored margin, as such models ship; a reflection-padded one on none); ``style``
    picks that style of a model of several (else its first)."""
    if path.suffix == ".onnx":
        from models.inference.onnx_style import OnnxStyleModel

        model = OnnxStyleModel(path)
        return model.stylize(photo, style if style in model.styles else None)
    import torch
    import torch.nn.functional as F

    from models.common.images import rgb_to_tensor, tensor_to_rgb
    from training.checkpoint import load_checkpoint, style_net_from_checkpoint

    ckpt = load_checkpoint(path)
    net = style_net_from_checkpoint(ckpt, path).eval()
    names = ckpt["config"]["styles"]
    weights = None if net.num_styles == 1 else torch.eye(net.num_styles)[names.index(style) if style in names else 0][None]
    border = 0 if net.config.padding == "reflect" else _BORDER
    x = F.pad(rgb_to_tensor(photo), (border,) * 4, mode="reflect") if border else rgb_to_tensor(photo)
    with torch.no_grad():
        y = net(x, weights)
    return tensor_to_rgb(y[..., border:-border, border:-border] if border else y)


def shipped_model(name: str) -> Path | None:
    """The shipped one-style model of a painting (the manifest's first: ``lite`` before ``tiny``), or None."""
    for m in catalogue.shipped():
        if m.style_names == [name]:
            return m.path
    return None


def caption_tile(rgb: np.ndarray, height: int, caption: list[str]) -> np.ndarray:
    """The image scaled to ``height``, with its caption lines above it, on white (any channel order)."""
    w = round(rgb.shape[1] * height / rgb.shape[0])
    im = cv2.resize(rgb, (w, height), interpolation=cv2.INTER_AREA)
    pad = 16 * len(caption) + 4
    im = cv2.copyMakeBorder(im, pad, 2, 2, 2, cv2.BORDER_CONSTANT, value=(255, 255, 255))
    for i, line in enumerate(caption):
        draw_text(im, line, (2, 1 + 16 * i, im.shape[1] - 4, 16), 0.42, (0, 0, 0), align="left")
    return im


def sheet_of(rows: list[list[np.ndarray]]) -> np.ndarray:
    """Rows of tiles one under the other, each row padded to the widest with white."""
    lines = [np.hstack(r) for r in rows]
    width = max(l.shape[1] for l in lines)
    return np.vstack([cv2.copyMakeBorder(l, 0, 0, 0, width - l.shape[1], cv2.BORDER_CONSTANT,
                                         value=(255, 255, 255)) for l in lines])


def _results(args, candidates: list[tuple[str, str]], name: str, stem: str,
             photo: np.ndarray) -> list[tuple[str, np.ndarray | None]]:
    """(label, result) for one painting on one photo: the published outputs of that photo, the
    shipped model, each candidate (None where the candidate's file is missing)."""
    results: list[tuple[str, np.ndarray | None]] = []
    if args.reference:
        refs = sorted(Path(args.reference).glob(f"*_{stem}_{name}.jpg"))
        for ref in refs:
            results.append((args.reference_label, cv2.resize(read_rgb(ref), photo.shape[1::-1], interpolation=cv2.INTER_AREA)))
        if not refs and any(Path(args.reference).glob(f"*_{stem}_*.jpg")):  # other paintings have one: keep the column
            results.append((args.reference_label, None))
    shipped = shipped_model(name)
    if not args.no_shipped and shipped is not None:
        results.append(("shipped", stylize_with(shipped, photo, name)))
    for label, pattern in candidates:
        path = Path(pattern.format(name=name))
        if path.exists():
            results.append((label, stylize_with(path, photo, name)))
        else:  # an empty tile keeps the columns of every row aligned
            print(f"{name:18s} {stem:14s} {label:16s} (missing: {path})")
            results.append((label, None))
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 epilog="\n".join(__doc__.splitlines()[1:]),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--styles", nargs="+", required=True, metavar="PAINTING", help="painting images, one row each")
    ap.add_argument("--photo", nargs="+", default=[str(catalogue.SAMPLE_PHOTO)],
                    help="the photos to stylise, each beside the others in every row")
    ap.add_argument("--size", type=int, default=510, help="longer side of the photo (default 510: 510x338 chicago)")
    ap.add_argument("--reference", metavar="DIR",
                    help="folder of published outputs named *_<photo>_<painting>.jpg (johnson_eccv16_chicago_wave.jpg)")
    ap.add_argument("--reference-label", default="published", metavar="LABEL",
                    help="caption of the --reference results (default: published; e.g. peer, for another tool's outputs)")
    ap.add_argument("--candidate", action="append", default=[], metavar="LABEL=PATTERN",
                    help="an ONNX model or checkpoint per painting, {name} standing for its stem; repeatable")
    ap.add_argument("--no-shipped", action="store_true", help="leave out the shipped models")
    ap.add_argument("--height", type=int, default=220, help="height of each picture in the sheet")
    ap.add_argument("--out", default="compare_styles.png", help="the PNG to write")
    args = ap.parse_args(argv)

    try:
        photos = [(Path(p).stem, resize_max_side(read_rgb(p), args.size)) for p in args.photo]
        candidates = []
        for item in args.candidate:
            label, sep, pattern = item.partition("=")
            if not sep:
                raise UserError(f"--candidate {item!r}: expected LABEL=PATTERN")
            candidates.append((label, pattern))
        rows = []
        print(f"{'painting':18s} {'photo':14s} {'result':16s} {'palette':>8s} {'structure':>10s}")
        for style_path in args.styles:
            name = Path(style_path).stem
            painting = read_rgb(style_path)
            # the painting in a box of one width, so that the columns of every row line up
            thumb = letterbox(painting, (round(args.height * 1.4), args.height), (255, 255, 255))
            row = [caption_tile(thumb, args.height, [name[:24], ""])]
            for stem, photo in photos:
                for label, result in _results(args, candidates, name, stem, photo):
                    if result is None:
                        row.append(caption_tile(np.full_like(photo, 255), args.height, [f"{label} ({stem})", "none"]))
                        continue
                    pd, sk = palette_distance(result, painting), structure_kept(result, photo)
                    print(f"{name:18s} {stem:14s} {label:16s} {pd:8.1f} {sk:10.2f}")
                    row.append(caption_tile(result, args.height, [f"{label} ({stem})", f"palette {pd:.1f}  structure {sk:.2f}"]))
            rows.append(row)
        write_rgb(args.out, sheet_of(rows))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
