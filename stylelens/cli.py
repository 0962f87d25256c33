"""``stylelens``: the one command, with a verb for each thing a user wants to do.

The verbs that run an existing module parse with that module's own parser (its
``build_parser(prog)``) and run through its ``run(args)``, so each flag is defined once and
``python -m realtime``, ``python -m realtime.panel`` and ``python -m training`` keep working
as they are. Problems with the user's input print one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from models.common.cli import exit_code_of, min_int
from models.common.errors import UserError

# verb: (what it does, one example)
VERBS: dict[str, tuple[str, str]] = {
    "live": ("stylise a webcam, stream or the demo clip as it runs, in a window",
             "stylelens live --source demo"),
    "render": ("stylise every frame of a video file or image folder into a video file",
               "stylelens render clip.mp4 --out styled.mp4"),
    "stylize": ("stylise a photo", "stylelens stylize photo.jpg --out photo_starry.png"),
    "train": ("train a style network on a painting and a folder of photos",
              "stylelens train --style painting.jpg --data photos/ --out runs/mine --arch lite"),
    "export": ("export a trained checkpoint to ONNX", "stylelens export runs/mine --out mine.onnx"),
    "panel": ("serve the page of CNN visualisations and fast style on 127.0.0.1:7860", "stylelens panel"),
    "styles": ("list the shipped styles and your own; --sheet shows them all on one photo",
               "stylelens styles --sheet styles.png"),
    "info": ("versions, CPU and GPU features, folders: one block for a bug report", "stylelens info"),
}

JSON_HELP = "print one JSON object on stdout (messages go to stderr)"


def _help() -> str:
    lines = ["usage: stylelens COMMAND [options]      (stylelens COMMAND --help for its options)", "",
             "Real-time video stylizer and CNN visualizer.", "", "commands:"]
    for verb, (what, example) in VERBS.items():
        lines += [f"  {verb:<9} {what}", f"  {'':<9}   {example}"]
    lines += ["", "options:", "  -h, --help  show this help and exit", "  --version   show the version and exit"]
    return "\n".join(lines)


def _version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("stylelens")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _print_json(obj: dict) -> None:
    print(json.dumps(obj, indent=2))


# verbs that run an existing module -------------------------------------------------------------

def _live(argv: Sequence[str]) -> int:
    import realtime.__main__ as realtime_cli

    return realtime_cli.run(realtime_cli.build_parser("stylelens live").parse_args(argv))


# Options of the live runner that `render` sets itself: it reads a file, every frame, headless,
# and writes clean frames (no HUD).
RENDER_SETS = {"source": None, "capture_size": None, "no_window": True, "no_drop": True, "virtual_cam": False,
               "no_hud": True, "reconnect_timeout": 0.0}
RENDER_EPILOG = """examples:
  stylelens render clip.mp4 --out styled.mp4
  stylelens render frames/ --out styled.mp4 --model my.onnx --size 480
  stylelens render clip.mp4 --out dream.mp4 --effect deepdream --json
"""


def render_parser() -> argparse.ArgumentParser:
    """The live runner's parser, less the options ``render`` sets, plus its input and ``--json``."""
    import realtime.__main__ as realtime_cli

    ap = realtime_cli.build_parser("stylelens render")
    ap.description = "Stylise every frame of a video file or a folder of images into a video file, headless."
    ap.epilog = RENDER_EPILOG
    for action in ap._actions:
        if action.dest in RENDER_SETS:
            action.help = argparse.SUPPRESS
        elif action.dest == "out":
            action.required, action.help = True, "video file to write (.mp4, .avi, .webm)"
    ap.set_defaults(**{k: v for k, v in RENDER_SETS.items() if k != "source"})
    ap.add_argument("input", metavar="INPUT", help="video file, or folder of images (in name order)")
    ap.add_argument("--json", action="store_true", help=JSON_HELP)
    return ap


def _render(argv: Sequence[str]) -> int:
    import realtime.__main__ as realtime_cli
    from models.inference.onnx_style import parse_blend

    ap = render_parser()
    args = ap.parse_args(argv)
    if not Path(args.input).exists():
        raise UserError(f"{args.input}: no such file or folder (render reads files; "
                        "for cameras and streams use `stylelens live --out FILE`)")
    args.source = args.input
    summary: dict = {}
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        code = realtime_cli.run(args, report=summary.update if args.json else None)
    if args.json and summary:
        out = Path(args.out)
        _print_json({
            "input": str(Path(args.input).resolve()), "output": str(out.resolve()),
            "output_bytes": out.stat().st_size if out.is_file() else 0, **summary,
            "wall_seconds": time.perf_counter() - started,
            "effect": args.effect, "model": args.model if args.model or args.effect != "style" else _default_model(),
            "style": args.style, "blend": parse_blend(args.blend), "size": args.size, "provider": args.provider,
            "workers": args.workers, "border_pad": args.border_pad, "stabilize": not args.no_stabilize,
        })
    return code


def _default_model() -> str:
    from models import catalogue

    return str(catalogue.model_path())


def _training_verb(verb: str) -> Callable[[Sequence[str]], int]:
    """``train`` and ``export``: ``python -m training`` under another name."""
    def run(argv: Sequence[str]) -> int:
        import training.__main__ as training_cli

        return training_cli.run(training_cli.build_parser("stylelens").parse_args([verb, *argv]))
    return run


def stylize_parser() -> argparse.ArgumentParser:
    from models.inference.stylize import add_stylize_arguments

    ap = argparse.ArgumentParser(prog="stylelens stylize",
                                 description="Stylise photos (or folders of photos) with a style model; ONNX Runtime "
                                             "only, no PyTorch.")
    add_stylize_arguments(ap)
    ap.add_argument("--json", action="store_true", help=JSON_HELP)
    return ap


def _stylize(argv: Sequence[str]) -> int:
    from models.inference.stylize import run_stylize, writes_one_file

    args = stylize_parser().parse_args(argv)
    if not args.json:
        return exit_code_of(lambda: run_stylize(args))

    from models import catalogue
    from models.common.images import read_rgb
    from models.inference.onnx_style import default_providers, parse_blend, providers_for

    chosen_model = args.model is None
    args.model = args.model or _default_model()
    args.images = args.images or [str(catalogue.SAMPLE_PHOTO)]
    single = writes_one_file(args)
    if single:
        args.out = args.out or "stylized.png"
    started = time.time()
    with contextlib.redirect_stdout(sys.stderr):
        code = exit_code_of(lambda: run_stylize(args))
    seconds = time.time() - started
    if code == 0:
        common = {"model": str(catalogue.resolve_model(args.model).resolve()), "model_is_default": chosen_model,
                  "blend": parse_blend(args.blend), "strength": args.strength, "preserve_color": args.preserve_color,
                  "max_size": args.max_size, "provider": args.provider,
                  "providers": providers_for(args.provider) or default_providers(), "seconds": seconds}
        if single:
            out, image = Path(args.out), Path(args.images[0])
            h, w = read_rgb(out).shape[:2]
            _print_json({"input": str(image.resolve()), "input_bytes": image.stat().st_size,
                         "output": str(out.resolve()), "output_bytes": out.stat().st_size, "width": w, "height": h,
                         **common})
        else:  # several photos or folders: what this run wrote into the output folder
            folder = Path(args.out)
            written = sorted(str(p.resolve()) for p in folder.iterdir() if p.is_file() and p.stat().st_mtime >= started - 1)
            _print_json({"inputs": [str(Path(p).resolve()) for p in args.images],
                         "output_folder": str(folder.resolve()), "outputs": written, **common})
    return code


def _panel(argv: Sequence[str]) -> int:
    import realtime.panel.__main__ as panel_cli

    args = panel_cli.build_parser("stylelens panel").parse_args(argv)
    try:
        code = panel_cli.run(args)
    except KeyboardInterrupt:  # Ctrl+C or SIGTERM before the server settled into serving
        print("interrupted", file=sys.stderr)
        code = 130
    sys.stdout.flush()
    sys.stderr.flush()
    # As `python -m realtime.panel` does: skip interpreter teardown, where the web server's
    # native thread pools (onnxruntime, torch) could abort the process.
    os._exit(code)


# verbs of their own ------------------------------------------------------------------------------

def _styles(argv: Sequence[str]) -> int:
    ap = argparse.ArgumentParser(prog="stylelens styles",
                                 description="List the shipped style models and your own (from their ONNX "
                                             "metadata): styles held, file size, network, loss network, where "
                                             "each file lives.")
    ap.add_argument("--sheet", metavar="OUT.png", help="also render every style on one photo, labelled, into OUT.png")
    ap.add_argument("--photo", metavar="IMG", help="photo for the sheet (default: a bundled photo)")
    ap.add_argument("--tile", type=min_int(16), default=256, metavar="PX",
                    help="longer side of each picture on the sheet (default: 256)")
    ap.add_argument("--json", action="store_true", help=JSON_HELP)
    args = ap.parse_args(argv)

    from models import catalogue
    from models.common.files import check_input_file, check_output_file, refuse_overwriting_inputs
    from models.common.paths import STYLES_DIR_ENV, user_styles_dir
    from stylelens.styles import contact_sheet, list_styles

    if args.sheet:  # at the door: the sheet is neither the photo nor a model, and can be written
        check_output_file(args.sheet, "an image file name")
        check_input_file(args.photo or catalogue.SAMPLE_PHOTO, "a photo")
        refuse_overwriting_inputs(args.sheet, [args.photo or catalogue.SAMPLE_PHOTO,
                                               *(e.path for e in catalogue.entries())])
    models = list_styles()
    sheet = contact_sheet(models, args.photo or catalogue.SAMPLE_PHOTO, args.sheet, args.tile) if args.sheet else None
    folder = user_styles_dir()
    if args.json:
        result = {"shipped_dir": str(catalogue.SHIPPED_DIR), "user_dir": str(folder), "user_dir_exists": folder.is_dir(),
                  "user_dir_env": STYLES_DIR_ENV, "default": models[0].name if models else None,
                  "models": [m.as_json() for m in models]}
        if sheet:
            result["sheet"] = sheet
        _print_json(result)
        return 0
    width = max(len(m.name) for m in models)
    for origin, where in (("shipped", catalogue.SHIPPED_DIR), ("user", folder)):
        mine = [m for m in models if m.origin == origin]
        title = "shipped styles" if origin == "shipped" else f"your styles ({STYLES_DIR_ENV} moves the folder)"
        state = "" if mine else (": none yet" if folder.is_dir() else ": none yet (the folder does not exist)")
        print(f"{title}, in {where}{state}")
        for m in mine:
            if m.error:
                print(f"  {m.name:<{width}}  unusable: {m.error}")
                continue
            default = "  (the default)" if m is models[0] else ""
            print(f"  {m.name:<{width}}  {m.bytes / 1024:5.0f} KiB  {m.arch or '?':<7} {m.loss_net or '?':<18}  "
                  f"{', '.join(m.styles)}{default}")
    if sheet:
        print(f"wrote {sheet['path']} ({len(sheet['tiles'])} styles, {sheet['width']}x{sheet['height']})")
    return 0


def _info(argv: Sequence[str]) -> int:
    ap = argparse.ArgumentParser(prog="stylelens info",
                                 description="Versions, backends, CPU features, GPU and CUDA provider status, and "
                                             "the folders in use: paste the block into a bug report.")
    ap.add_argument("--json", action="store_true", help=JSON_HELP)
    args = ap.parse_args(argv)

    from stylelens.info import collect, format_info

    info = collect()
    if args.json:
        _print_json(info)
    else:
        print(format_info(info))
    return 0


RUN: dict[str, Callable[[Sequence[str]], int]] = {
    "live": _live, "render": _render, "stylize": _stylize, "train": _training_verb("train"),
    "export": _training_verb("export"), "panel": _panel, "styles": _styles, "info": _info,
}


def main(argv: Sequence[str] | None = None) -> int:
    """The console script ``stylelens``; the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_help())
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"stylelens {_version()}")
        return 0
    verb = argv[0]
    if verb not in RUN:
        close = difflib.get_close_matches(verb, RUN, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        print(f"error: unknown command {verb!r}{hint} (stylelens --help lists them)", file=sys.stderr)
        return 2
    return exit_code_of(lambda: RUN[verb](argv[1:]))
