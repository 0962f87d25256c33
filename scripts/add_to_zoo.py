"""Add a trained checkpoint to the shipped style zoo (``models/zoo``).

Exports the checkpoint to ONNX (with the parity check), copies a small thumbnail of
each style image beside it, and writes or replaces its entry in ``manifest.json``
with the training command, machine and wall time, so the zoo documents itself.

    python scripts/add_to_zoo.py runs/starry_lite/checkpoint.pt --name starry_night_lite \
        --command "python -m training train ..." --machine "2-core Xeon, no GPU" [--default]
"""

from __future__ import annotations

import argparse
import json

from models import zoo
from models.cli import min_int
from models.errors import UserError
from models.images import read_rgb, resize_max_side, write_rgb
from training.checkpoint import load_checkpoint
from training.export import export_checkpoint, manifest_entry

THUMBNAIL_SIDE = 256


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="checkpoint.pt of a finished run")
    ap.add_argument("--name", required=True, help="model name in the manifest (and its file name)")
    ap.add_argument("--command", required=True, help="the training command that made it")
    ap.add_argument("--machine", required=True, help="where it was trained")
    ap.add_argument("--default", action="store_true", help="make it the first entry: the embedded default")
    ap.add_argument("--border-pad", type=min_int(0), default=0, metavar="PX",
                    help="mirrored margin added at run time (see `python -m training export --help`)")
    args = ap.parse_args()

    ckpt = load_checkpoint(args.checkpoint)
    cfg = ckpt["config"]
    onnx_name = f"{args.name}.onnx"
    path, err = export_checkpoint(args.checkpoint, zoo.ZOO_DIR / onnx_name, border_pad=args.border_pad)
    styles = []
    for name, image in zip(cfg["styles"], cfg["style_images"]):
        thumb = f"{name}.jpg"
        write_rgb(zoo.ZOO_DIR / thumb, resize_max_side(read_rgb(image), THUMBNAIL_SIDE))
        styles.append({"name": name, "image": thumb})
    entry = manifest_entry(args.checkpoint, args.name, path, styles, err, args.command, args.machine,
                           args.border_pad)
    manifest = zoo.manifest() if zoo.MANIFEST.exists() else {"models": []}
    models = [m for m in manifest["models"] if m["name"] != args.name]
    models = [entry, *models] if args.default else [*models, entry]
    zoo.MANIFEST.write_text(json.dumps({"models": models}, indent=2) + "\n", encoding="utf-8")
    print(f"added {args.name} ({entry['bytes'] / 1e6:.2f} MB, parity {err:.1e}) to {zoo.MANIFEST}")


if __name__ == "__main__":
    try:
        main()
    except UserError as e:
        raise SystemExit(f"error: {e}") from None
