"""Command line: ``python -m training {train,export,stylize}``.

Problems with the user's input print one line (``error: ...``) and exit with code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from models.common.cli import exit_code_of, min_int
from models.common.errors import UserError

ARCH_CHOICES = ("johnson", "c32", "lite", "tiny")  # models.style_net.ARCHS, without importing torch here
from models.layers import BACKBONES as LOSS_NETS

EPILOG = """examples:
  python -m training train --style starry.jpg --data photos/ --out runs/starry --arch lite --steps 2000
  python -m training train --style a.jpg --style b.jpg --data photos/ --out runs/ab   # one network, two styles
  torchrun --nproc_per_node=4 -m training train --style a.jpg --data coco/ --out runs/a
  python -m training export runs/starry/checkpoint.pt --out starry.onnx
  python -m training stylize --model starry.onnx photo.jpg --out photo_starry.png
  python -m training stylize --model ab.onnx photo.jpg --out mix.png --blend a=0.5 b=0.5
  python -m training stylize --model udnie photo.jpg --out soft.png --strength 0.6 --preserve-color
  python -m training stylize --model starry.onnx holiday/ more/*.jpg --out holiday_starry/
"""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows a default only where there is one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = not (action.default is None or action.default is False or action.default == []
                     or action.default == argparse.SUPPRESS)
        if "default" not in text and shown:
            text += " (default: %(default)s)"
        return text


_positive_int = min_int(1)


def build_parser(prog: str = "python -m training") -> argparse.ArgumentParser:
    """The parser of ``python -m training``; ``stylelens`` uses it too (its train, export, stylize)."""
    ap = argparse.ArgumentParser(
        prog=prog, description="Train fast style networks, export them to ONNX, run them.",
        epilog=EPILOG, formatter_class=_HelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True, metavar="{train,export,stylize}")

    t = sub.add_parser("train", help="train a style network on a painting and a folder of photos",
                       description="Train a feed-forward style network (Johnson et al. 2016). Several --style "
                                   "images train one network holding all of them (conditional instance norm).",
                       formatter_class=_HelpFormatter)
    t.add_argument("--style", action="append", required=True, metavar="IMG",
                   help="style image (repeat for a network of several styles)")
    t.add_argument("--name", action="append", dest="names", default=[], metavar="NAME",
                   help="style name, one per --style (default: the image's file name)")
    t.add_argument("--data", required=True, metavar="DIR", help="folder of training photos (searched recursively)")
    t.add_argument("--out", required=True, metavar="DIR", help="run folder: checkpoint.pt and samples/")
    t.add_argument("--loss-net", default="efficientnet_lite0", choices=LOSS_NETS,
                   help="pretrained network of the perceptual loss (vgg16/vgg19 download their weights)")
    t.add_argument("--weights", dest="loss_net_weights", metavar="PATH",
                   help="local state-dict file for the loss network (for vgg16/vgg19 without network)")
    t.add_argument("--arch", default="johnson", choices=ARCH_CHOICES,
                   help="style network size: johnson (quality, GPU), c32 (cleaner strokes at 1.4x lite), lite (real time on a CPU), tiny (640x480 on a CPU)")
    t.add_argument("--size", type=min_int(32), default=256, help="training crop size in pixels")
    t.add_argument("--style-size", type=min_int(32), help="longer side of the style images (default: 2 x size)")
    t.add_argument("--batch", type=_positive_int, default=4, help="images per step (per process under torchrun)")
    t.add_argument("--steps", type=_positive_int, default=2000, help="total training steps")
    t.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    t.add_argument("--content-weight", type=float, help="content loss weight (default: the loss network's)")
    t.add_argument("--style-weight", type=float,
                   help="style strength relative to the calibrated weight (default 1; 2 = twice the style): a "
                        "calibration sets each painting's weight so the photo stays readable (--structure-target)")
    t.add_argument("--structure-target", type=float, default=0.55, metavar="S",
                   help="how much of the photo's edges the calibration keeps, 0-1 (lower = more painting; "
                        "default 0.55; Johnson et al.'s published models keep 0.57-0.66 of a 510 px photo); 0 turns the calibration off "
                        "and --style-weight becomes the absolute weight")
    t.add_argument("--tv-weight", type=float, help="total variation weight (default: the loss network's)")
    t.add_argument("--tone-weight", type=float,
                   help="weight of the photo's light-and-dark layout (1 - correlation of the 8x pooled grey images): "
                        "keeps the painting's palette from inverting tones (default: the loss network's, 1 for "
                        "efficientnet_lite0; 0: off)")
    t.add_argument("--stability-weight", type=float, default=0.0,
                   help="weight of the noise-stability term (Gupta et al. 2017): the output for a photo and for the "
                        "same photo plus noise should agree, which lowers flicker on video; 0 turns it off")
    t.add_argument("--stability-noise", type=float, default=0.03,
                   help="standard deviation of that noise, in pixel values 0..1")
    t.add_argument("--sample-every", type=_positive_int, default=250, help="write a sample image every N steps")
    t.add_argument("--checkpoint-every", type=_positive_int, default=250, help="write the checkpoint every N steps")
    t.add_argument("--seed", type=int, default=0, help="random seed (data order, crops, initial weights)")
    t.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                   help="auto: bf16 autocast on CUDA and on CPUs with AMX, else fp32")
    t.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where to train")
    t.add_argument("--workers", type=int, help="data loader processes (default: 4 on CUDA, 0 on CPU)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    e = sub.add_parser("export", help="export a checkpoint to ONNX and check it against torch",
                       formatter_class=_HelpFormatter)
    e.add_argument("checkpoint", metavar="CKPT", help="checkpoint.pt (or its run folder)")
    e.add_argument("--out", required=True, metavar="FILE.onnx", help="ONNX file to write")
    e.add_argument("--fp16", action="store_true", help="float16 weights and compute (for GPUs), float32 I/O")
    e.add_argument("--border-pad", type=min_int(0), default=0, metavar="PX",
                   help="mirror PX pixels around every input and crop them from the output at run time: "
                        "moves a band the network paints along image edges out of the picture "
                        "(costs the extra pixels; 32 for the shipped styles)")

    s = sub.add_parser("stylize", help="stylise images with an ONNX model (no torch needed)",
                       formatter_class=_HelpFormatter)
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
    s.add_argument("--max-size", type=_positive_int, metavar="PX", help="shrink the photo to this longer side first")
    s.add_argument("--provider", choices=("auto", "cpu", "cuda"), default="auto", help="onnxruntime device")
    s.add_argument("--tile", type=min_int(0), default=512, metavar="PX",
                   help="photos longer than 1024 px run in overlapping tiles of PX pixels: about 1.3 GB "
                        "whatever the size (0: whole, about 0.7 GB per megapixel)")
    return ap


def _train(args: argparse.Namespace) -> None:
    from training.train import TrainSettings, train

    settings = TrainSettings(
        style=args.style, names=args.names, data=args.data, out=args.out, loss_net=args.loss_net,
        loss_net_weights=args.loss_net_weights, arch=args.arch, size=args.size, style_size=args.style_size,
        batch=args.batch, steps=args.steps, lr=args.lr, content_weight=args.content_weight,
        style_factor=args.style_weight if args.structure_target > 0 and args.style_weight is not None else 1.0,
        style_weight=args.style_weight if args.structure_target <= 0 else None,
        structure_target=args.structure_target, tv_weight=args.tv_weight,
        tone_weight=args.tone_weight,
        stability_weight=args.stability_weight,
        stability_noise=args.stability_noise, sample_every=args.sample_every,
        checkpoint_every=args.checkpoint_every, seed=args.seed, precision=args.precision, device=args.device,
        workers=args.workers, resume=args.resume)
    train(settings, progress=not args.no_progress)


def _export(args: argparse.Namespace) -> None:
    from training.export import export_checkpoint

    path, err = export_checkpoint(args.checkpoint, args.out, fp16=args.fp16, border_pad=args.border_pad)
    print(f"wrote {path}; parity with torch at 240x320 and 181x263: max abs difference {err:.2e}")


def writes_one_file(args: argparse.Namespace) -> bool:
    """Whether ``stylize`` writes one image file (else: each input into the --out folder).

    --out names a folder to write into when it is one, unless it is named like an image (then it
    is refused as a file that cannot be written, not taken as a folder)."""
    from models.common.images import IMAGE_SUFFIXES

    single = len(args.images) <= 1 and not any(Path(p).is_dir() for p in args.images)
    out_is_folder = bool(args.out) and Path(args.out).is_dir() and Path(args.out).suffix.lower() not in IMAGE_SUFFIXES
    return single and not out_is_folder


def _stylize(args: argparse.Namespace) -> None:
    from models import catalogue
    from models.inference.onnx_style import providers_for
    from tqdm import tqdm

    from models.inference.stylize import stylize_file, stylize_many

    model, providers = catalogue.resolve_model(args.model), providers_for(args.provider)
    finish = {"strength": args.strength, "preserve_color": args.preserve_color}
    if writes_one_file(args):
        out = stylize_file(model, args.images[0] if args.images else catalogue.SAMPLE_PHOTO, args.out or "stylized.png",
                           blend=args.blend, max_size=args.max_size, providers=providers, tile=args.tile, **finish)
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


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Run the parsed command; the exit code (2 for a problem with the user's input)."""
    return exit_code_of(lambda: {"train": _train, "export": _export, "stylize": _stylize}[args.command](args))


if __name__ == "__main__":
    sys.exit(main())
