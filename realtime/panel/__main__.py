"""Serve the panel: ``python -m realtime.panel [--host 127.0.0.1] [--port 7860]``."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import signal
import sys
import tempfile
import threading
import warnings
from pathlib import Path

from models.layers import BACKBONES
from models.common.cli import HelpFormatter, min_int
from models.common.errors import UserError
from models.common.extras import require
from models.common.malloc import share_arenas


def build_parser(prog: str = "python -m realtime.panel") -> argparse.ArgumentParser:
    """The parser of ``python -m realtime.panel``; ``stylelens panel`` uses it too."""
    ap = argparse.ArgumentParser(
        prog=prog,
        description="A Gradio page with every method of 'Visualizing and Understanding' CNNs "
                    "(filters, neighbours, t-SNE, patches, occlusion, saliency, guided backprop, Grad-CAM, "
                    "class visualisation, fooling images, feature inversion, DeepDream, texture synthesis, "
                    "Gatys style transfer) and fast style transfer with a live webcam tab.",
        formatter_class=HelpFormatter)
    ap.add_argument("--host", default="127.0.0.1",
                    help="address to bind; 0.0.0.0 makes the page reachable from other machines")
    ap.add_argument("--port", type=int, default=7860, help="port to serve on")
    ap.add_argument("--backbone", choices=BACKBONES, default="efficientnet_lite0",
                    help="network selected when the page opens")
    ap.add_argument("--max-upload-mb", type=float, default=20.0, help="largest upload accepted")
    ap.add_argument("--max-side", type=int, default=1024, help="uploads are shrunk to this longer side")
    ap.add_argument("--queue-size", type=int, default=16, help="requests that may wait for the slow methods")
    ap.add_argument("--styles-dir", metavar="DIR",
                    help="folder of your own styles, where 'Your painting' adds them (default: $STYLELENS_STYLES_DIR, "
                         "else styles/ in the user data folder)")
    ap.add_argument("--train-steps", type=min_int(1), default=1000,
                    help="steps of the quick training from the page (about 10 minutes on a 2-core CPU)")
    ap.add_argument("--train-size", type=min_int(32), default=192, help="crop size of the quick training from the page")
    return ap


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl+C or SIGTERM; the exit code."""
    try:
        require("panel", "the page")
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    share_arenas(1)  # before Gradio starts its worker threads

    # Uploads and outputs go to a private temporary folder, removed at exit.
    tmp = None
    if "GRADIO_TEMP_DIR" not in os.environ:
        tmp = tempfile.mkdtemp(prefix="stylelens-panel-")
        os.environ["GRADIO_TEMP_DIR"] = tmp
        where = f"temporary folder {tmp} (removed at exit)"
    else:
        where = f"GRADIO_TEMP_DIR {os.environ['GRADIO_TEMP_DIR']}"
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    # Cached example results live with the other temporary files, not in the user's folder.
    os.environ.setdefault("GRADIO_EXAMPLES_CACHE", str(Path(os.environ["GRADIO_TEMP_DIR"]) / "examples"))
    # Empty example inputs mean "the top class" or "the network's own layers" here, as intended.
    warnings.filterwarnings("ignore", message="Examples will be cached but not all input components")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())  # stops the server as Ctrl+C does

    from models import catalogue
    from models.common.paths import STYLES_DIR_ENV, user_styles_dir
    from realtime.panel.app import build_app
    from realtime.panel.context import Limits, PanelContext
    from realtime.panel.trainer import Preset

    if args.styles_dir:  # one folder for the page, its training worker and what they start
        os.environ[STYLES_DIR_ENV] = str(Path(args.styles_dir).expanduser().absolute())
    ctx = PanelContext(Limits(max_upload_mb=args.max_upload_mb, max_side=args.max_side), user_styles_dir(),
                       Preset(steps=args.train_steps, size=args.train_size,
                              sample_every=max(1, min(100, args.train_steps // 10))))
    app = build_app(args.backbone, ctx)
    app.queue(max_size=args.queue_size, default_concurrency_limit=2)
    try:
        app.launch(server_name=args.host, server_port=args.port, max_file_size=f"{args.max_upload_mb:g}mb",
                   allowed_paths=[str(catalogue.SHIPPED_DIR)], show_error=False, quiet=True,
                   prevent_thread_lock=True)
        print(f"stylelens panel on http://{args.host}:{args.port} (Ctrl+C to stop); uploads in {where}", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        with contextlib.redirect_stdout(io.StringIO()):  # Gradio's own "Closing server ..." line
            app.close()
        print("stopped", flush=True)
    except OSError as e:
        print(f"error: cannot serve on {args.host}:{args.port}: {e}; choose another --port", file=sys.stderr)
        return 2
    finally:
        ctx.close()  # a training in progress ends with the server
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: native thread pools of the web server's workers
    # (onnxruntime, torch) could abort the process while modules are torn down.
    os._exit(code)
