"""Add a trained checkpoint to the shipped style zoo (``models/zoo``).

Exports the checkpoint to ONNX (with the parity check), copies a small thumbnail of
each style image beside it, and writes or replaces its entry in ``manifest.json``
with the training command, machine and wall time, so the zoo documents itself.

    python scripts/add_to_zoo.py runs/starry_lite/checkpoint.pt --name starry_night_lite \
        --command "python -m training train ..." --machine "2-core Xeon, no GPU" [--default]
"""

from __future__ import annotations

import argparse

from models import catalogue
from models.common.cli import min_int
from models.common.errors import UserError
from models.common.images import read_rgb, resize_max_side, write_rgb
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
    path, err = export_checkpoint(args.checkpoint, catalogue.SHIPPED_DIR / onnx_name, border_pad=args.border_pad)
    styles = []
    for name, image in zip(cfg["styles"], cfg["style_images"]):
        thumb = f"{name}.jpg"
        write_rgb(catalogue.SHIPPED_DIR / thumb, resize_max_side(read_rgb(image), THUMBNAIL_SIDE))
        styles.append({"name": name, "image": thumb})
    entry = manifest_entry(args.checkpoint, args.name, path, styles, err, args.command, args.machine,
                           args.border_pad)
    manifest = catalogue.add_to_manifest(catalogue.SHIPPED_DIR, catalogue.new_entry(entry, catalogue.SHIPPED_DIR,
                                                                                    catalogue.SHIPPED),
                                         first=args.default)
    print(f"added {args.name} ({entry['bytes'] / 1e6:.2f} MB, parity {err:.1e}) to {manifest}")


if __name__ == "__main__":
    try:
        main()
    except UserError as e:
        raise SystemExit(f"error: {e}") from None
