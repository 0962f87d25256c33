"""Command line: ``python -m training {train,export,stylize}``.

Problems with the user's input print one line (``error: ...``) and exit with code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from models.common.cli import HelpFormatter, exit_code_of, min_int
from models.common.errors import UserError
from models.common.extras import require
from models.inference.stylize import add_stylize_arguments, run_stylize

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


_positive_int = min_int(1)


def build_parser(prog: str = "python -m training") -> argparse.ArgumentParser:
    """The parser of ``python -m training``; ``stylelens`` uses it too (its train, export, stylize)."""
    ap = argparse.ArgumentParser(
        prog=prog, description="Train fast style networks, export them to ONNX, run them.",
        epilog=EPILOG, formatter_class=HelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True, metavar="{train,export,stylize}")

    t = sub.add_parser("train", help="train a style network on a painting and a folder of photos",
                       description="Train a feed-forward style network (Johnson et al. 2016). Several --style "
                                   "images train one network holding all of them (conditional instance norm).",
                       formatter_class=HelpFormatter)
    t.add_argument("--style", action="append", required=True, metavar="IMG",
                   help="style image (repeat for a network of several styles)")
    t.add_argument("--name", action="append", dest="names", default=[], metavar="NAME",
                   help="style name, one per --style (default: the image's file name)")
    t.add_argument("--data", required=True, metavar="DIR", help="folder of training photos (searched recursively)")
    t.add_argument("--out", required=True, metavar="DIR", help="run folder: checkpoint.pt and samples/")
    t.add_argument("--loss-net", default="auto", choices=("auto", *LOSS_NETS),
                   help="pretrained network of the perceptual loss: auto takes vgg16 where its weights are at hand "
                        "(torchvision's in the torch hub cache, or the offline conversion of the vgg16 extra), else "
                        "efficientnet_lite0 (offline, about 6x quicker a step, weaker strokes)")
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
    t.add_argument("--structure-target", type=float, metavar="S",
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
                       formatter_class=HelpFormatter)
    e.add_argument("checkpoint", metavar="CKPT", help="checkpoint.pt (or its run folder)")
    e.add_argument("--out", required=True, metavar="FILE.onnx", help="ONNX file to write")
    e.add_argument("--fp16", action="store_true", help="float16 weights and compute (for GPUs), float32 I/O")
    e.add_argument("--border-pad", type=min_int(0), default=0, metavar="PX",
                   help="mirror PX pixels around every input and crop them from the output at run time: "
                        "moves a band the network paints along image edges out of the picture "
                        "(costs the extra pixels; 32 for the shipped styles)")

    s = sub.add_parser("stylize", help="stylise images with an ONNX model (no torch needed)",
                       formatter_class=HelpFormatter)
    add_stylize_arguments(s)
    return ap


def _train_door(args: argparse.Namespace) -> None:
    """Every path of ``train`` checked before torch and the loss network load (33-85 s): one line saying
    what the path is and what was expected."""
    from models.common.files import check_input_file, check_input_folder, check_output_file, refuse_overwriting_inputs
    from models.common.images import IMAGE_SUFFIXES, read_rgb

    for style in args.style:
        check_input_file(style, "an image file of the painting")
        read_rgb(style)  # a damaged or unreadable painting, now rather than after the loading
    data = check_input_folder(args.data, "a folder of photos")
    if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in data.rglob("*") if p.is_file()):
        raise UserError(f"{data}: no photos in this folder or below it ({', '.join(IMAGE_SUFFIXES)})")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: --out must be a folder, and this is a file")
    checkpoint = out / "checkpoint.pt"
    if checkpoint.exists() and not args.resume:
        raise UserError(f"{checkpoint} exists: pass --resume to continue that run, or choose another --out")
    check_output_file(checkpoint, "a run folder")
    refuse_overwriting_inputs(checkpoint, args.style)
    if args.loss_net_weights:
        check_input_file(args.loss_net_weights, "a weights file for the loss network")


def _train(args: argparse.Namespace) -> None:
    require("train", "training a style")
    _train_door(args)
    from training.train import TrainSettings, train

    structure_target = 0.55 if args.structure_target is None else args.structure_target
    # what the user gave, not a default: a resumed run refuses these where they differ from its checkpoint
    given = tuple(k for k, v in (("content_weight", args.content_weight), ("tv_weight", args.tv_weight),
                                 ("tone_weight", args.tone_weight), ("structure_target", args.structure_target),
                                 ("style_weight", args.style_weight), ("style_factor", args.style_weight))
                  if v is not None)
    settings = TrainSettings(
        style=args.style, names=args.names, data=args.data, out=args.out, loss_net=args.loss_net,
        loss_net_weights=args.loss_net_weights, arch=args.arch, size=args.size, style_size=args.style_size,
        batch=args.batch, steps=args.steps, lr=args.lr, content_weight=args.content_weight,
        style_factor=args.style_weight if structure_target > 0 and args.style_weight is not None else 1.0,
        style_weight=args.style_weight if structure_target <= 0 else None,
        structure_target=structure_target, tv_weight=args.tv_weight,
        tone_weight=args.tone_weight,
        stability_weight=args.stability_weight,
        stability_noise=args.stability_noise, sample_every=args.sample_every,
        checkpoint_every=args.checkpoint_every, seed=args.seed, precision=args.precision, device=args.device,
        workers=args.workers, resume=args.resume, given=given)
    train(settings, progress=not args.no_progress)


def _export_door(args: argparse.Namespace) -> None:
    """The checkpoint and the output of ``export`` checked before torch loads and the export runs (150 s)."""
    from models.common.files import check_output_file, refuse_overwriting_inputs

    ckpt = Path(args.checkpoint)
    if ckpt.is_dir():
        if not (ckpt / "checkpoint.pt").is_file():
            raise UserError(f"{ckpt}: is a folder without a checkpoint.pt (expected a checkpoint or a run folder)")
        ckpt = ckpt / "checkpoint.pt"
    elif not ckpt.exists():
        raise UserError(f"{ckpt}: no such file (expected a checkpoint.pt or its run folder)")
    out = Path(args.out)
    if out.is_dir():
        raise UserError(f"{out}: is a folder, expected an .onnx file name (e.g. {out / 'mine.onnx'})")
    check_output_file(out, "an .onnx file name")
    refuse_overwriting_inputs(out, [ckpt])


def _export(args: argparse.Namespace) -> None:
    require("train", "exporting a checkpoint")
    _export_door(args)
    from training.export import export_checkpoint

    path, err = export_checkpoint(args.checkpoint, args.out, fp16=args.fp16, border_pad=args.border_pad)
    print(f"wrote {path}; parity with torch at 240x320 and 181x263: max abs difference {err:.2e}")


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Run the parsed command; the exit code (2 for a problem with the user's input)."""
    return exit_code_of(lambda: {"train": _train, "export": _export, "stylize": run_stylize}[args.command](args))


if __name__ == "__main__":
    sys.exit(main())
