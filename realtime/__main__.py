"""``python -m realtime``: live stylised webcam (or video, folder, stream, demo clip).

Problems with the user's input print one line and exit with code 2. A camera or stream
that goes away is retried (``--reconnect-timeout``); if it never comes back, the run
ends with its summary and exit code 1.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable

from models.common.cli import PROGRAM_START, min_int, one_line_warning
from models.common.errors import UserError

EFFECT_NAMES = ("style", "saliency", "deepdream", "activations", "none")  # realtime.effects.EFFECTS
CODEC_NAMES = ("h264", "vp9", "av1", "ffv1", "mjpeg")  # realtime.video_io.CODECS, without importing av here

EPILOG = """keys (in the window):
  n / p   next / previous style (or layer, or saliency mode); past a model's last style, the
          next shipped or own style model (a --model file of your own keeps to its styles)
  - / +   style strength down / up 10% (= works as +)
  c       keep the frame's colours, or not
  e       next effect            b   blend a quarter toward the next style
  h       toggle the HUD         s   save a snapshot
  q, Esc  quit

examples:
  python -m realtime                                  # webcam 0, shipped style, in a window
  python -m realtime --source demo                    # no camera needed
  python -m realtime --source clip.mp4 --out styled.mp4 --no-window   # every frame, with its sound
  python -m realtime --source photos/ --out slides.mp4 --no-window --out-size 1280x720
  python -m realtime --model five.onnx --blend starry_night=0.5 the_scream=0.5
  python -m realtime --effect saliency --saliency-mode smoothgrad
"""


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 640x480, got {text!r}") from None
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f"width and height must be at least 16, got {text!r}")
    return w, h


def build_parser(prog: str = "python -m realtime") -> argparse.ArgumentParser:
    """The parser of ``python -m realtime``; ``stylelens live`` and ``stylelens render`` use it too."""
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0].split(": ", 1)[1],
                                 epilog=EPILOG.replace("python -m realtime", prog),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", default="0",
                    help="camera index, video file, folder of images, rtsp/http URL, or 'demo' (default: 0)")
    ap.add_argument("--capture-size", type=_size, metavar="WxH", help="ask the camera (or demo) for this size")
    ap.add_argument("--effect", default="style", choices=EFFECT_NAMES, help="effect to start with (default: style)")
    ap.add_argument("--model", metavar="FILE.onnx", help="style model: a file, or a shipped or user model's name "
                                                         "(default: the shipped default)")
    ap.add_argument("--style", help="style to start with: of the model, or a shipped or user style's name")
    ap.add_argument("--blend", nargs="+", default=[], metavar="NAME=W", help="start with a blend of styles")
    ap.add_argument("--strength", type=float, default=1.0, metavar="S",
                    help="style strength, 0 (the frame) to 1 (full style; the default)")
    ap.add_argument("--preserve-color", action="store_true",
                    help="keep the frame's colours: only the style's luminance is used")
    ap.add_argument("--size", type=min_int(16), metavar="PX", help="process at this longer side, resize back after")
    ap.add_argument("--target-fps", type=float, default=15.0, metavar="FPS",
                    help="live runs hold this frame rate, with p95 latency under about 200 ms, by measuring "
                         "themselves and choosing the processing size, network, workers and margin within what "
                         "--size, --model, --workers and --border-pad leave free (default: 15; 0: off)")
    ap.add_argument("--min-size", type=min_int(16), default=320, metavar="PX",
                    help="the adaptive live path never processes below this longer side (default: 320)")
    ap.add_argument("--backend", default="auto", choices=("auto", "onnxruntime", "openvino"),
                    help="CPU engine for the style network: auto times both at start-up (cached per model, "
                         "machine and size); openvino needs `pip install openvino` (default: auto)")
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "int8"),
                    help="precision of the style network on the CPU: auto lets the start-up probe use bf16 (CPUs with "
                         "AVX-512 BF16 or AMX, on OpenVINO) or int8 (CPUs with VNNI) where its picture stays within "
                         "35 dB PSNR of fp32 on calibration photos, and keep the fastest; a forced precision that "
                         "misses the budget falls back to fp32 (default: auto)")
    ap.add_argument("--provider", default="auto", choices=("auto", "cpu", "cuda"), help="onnxruntime device")
    ap.add_argument("--threads", type=int, help="CPU threads per frame for the effect (default: all cores, "
                                                 "shared among the style workers)")
    ap.add_argument("--workers", type=min_int(1), metavar="N",
                    help="frames the style effect runs at once, in order on the way out (default: live, 1 or 2 "
                         "as measured; rendering a file, 2 on a CPU of 2 or more cores; 1 on a GPU): more frames "
                         "per second for a little more latency; 1 for the lowest latency")
    ap.add_argument("--border-pad", type=min_int(0), metavar="PX",
                    help="mirrored margin around each frame for the style effect, cropped after; it keeps the "
                         "band that style networks paint along image edges out of the picture (default: the "
                         "model's own, 32 for the shipped styles; 0 gave lite 29-47%% more frames per second at 640x480)")
    ap.add_argument("--backbone", default="efficientnet_lite0", choices=("efficientnet_lite0", "vgg16", "vgg19"),
                    help="network for saliency, deepdream and activations")
    ap.add_argument("--weights", metavar="PATH", help="local weights file for a VGG backbone")
    ap.add_argument("--layer", help="layer for deepdream and activations (default: one per effect)")
    ap.add_argument("--target", type=int, metavar="CLASS", help="ImageNet class index for saliency (default: top class)")
    ap.add_argument("--saliency-mode", default="plain", choices=("plain", "smoothgrad", "guided", "gradcam"),
                    help="how the saliency effect explains the top class (or --target): plain, the gradient of its "
                         "score by the pixels; smoothgrad, that gradient averaged over noisy copies (and over "
                         "frames); guided, guided backpropagation; gradcam, the class activation map of the last "
                         "layer (default: plain; n/p in the window step through them)")
    ap.add_argument("--dream-steps", type=min_int(1), default=1,
                    help="gradient ascent steps per frame for deepdream; the dream grows over frames (default: 1)")
    ap.add_argument("--no-stabilize", action="store_true", help="turn off the optical-flow stabiliser of the style effect")
    ap.add_argument("--no-window", action="store_true", help="run headless (no OpenCV window)")
    ap.add_argument("--out", metavar="FILE",
                    help="also record the output (.mp4, .mov, .mkv, .webm, .avi) with each frame's time and, "
                         "from a video file, its sound")
    ap.add_argument("--codec", choices=CODEC_NAMES,
                    help="video codec of --out (default: h264 for .mp4/.mov/.mkv, vp9 for .webm, mjpeg for .avi); "
                         "ffv1 is lossless, in .mkv; which exist depends on the PyAV wheel")
    ap.add_argument("--out-size", type=_size, metavar="WxH",
                    help="size of --out (default: the first frame's); other sizes are letterboxed, never stretched")
    ap.add_argument("--virtual-cam", action="store_true", help="send the output to a virtual camera (pyvirtualcam)")
    ap.add_argument("--no-drop", action="store_true",
                    help="process every frame in order instead of only the newest (the default already for a "
                         "video file or folder rendered to --out without a window)")
    ap.add_argument("--max-frames", type=min_int(1), metavar="N", help="stop after N output frames")
    ap.add_argument("--reconnect-timeout", type=float, default=60.0, metavar="S",
                    help="a camera or stream that stops giving frames is reopened, with growing pauses, "
                         "for up to S seconds before the run ends (default: 60)")
    ap.add_argument("--no-hud", action="store_true", help="start without the heads-up display")
    ap.add_argument("--snapshot-at", type=int, nargs="+", default=[], metavar="N",
                    help="save output frame N as PNG (headless equivalent of the s key)")
    ap.add_argument("--snapshot-dir", default=".", metavar="DIR", help="where snapshots go (default: .)")
    return ap


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


def _effect_options(args: argparse.Namespace):
    from models.inference.onnx_style import parse_blend
    from realtime.effects import EffectOptions

    return EffectOptions(model=args.model, provider=args.provider, style=args.style, blend=parse_blend(args.blend),
                         size=args.size, backbone=args.backbone, weights=args.weights, layer=args.layer,
                         target=args.target, saliency_mode=args.saliency_mode, dream_steps=args.dream_steps,
                         threads=args.threads, border_pad=args.border_pad, workers=args.workers, backend=args.backend,
                         precision=args.precision, min_size=args.min_size, strength=args.strength,
                         preserve_color=args.preserve_color)


def _sinks(args: argparse.Namespace, source, from_file: bool, realtime: bool, log: Callable[[str], None]) -> list:
    """Where the frames go: the video file (with the sound and metadata of a file source; encoded
    faster when ``realtime``, a live run), a virtual camera, the window."""
    from realtime.sinks import VirtualCamSink, WindowSink
    from realtime.video_io import VideoFileSink

    sinks = []
    if args.out:
        sinks.append(VideoFileSink(args.out, source.fps, codec=args.codec, size=args.out_size, log=log,
                                   audio_from=source.path if from_file else None,
                                   time_base=source.time_base if from_file else None,
                                   inputs=(args.source, args.model, args.weights), realtime=realtime))
    if args.virtual_cam:
        sinks.append(VirtualCamSink(source.fps))
    if not args.no_window:
        sinks.append(WindowSink())
    return sinks


def run(args: argparse.Namespace, report: Callable[[dict], None] | None = None) -> int:
    """Run with parsed arguments; ``report`` receives the summary (default: print it in one line)."""
    warnings.formatwarning = one_line_warning
    import os

    import cv2

    if "OPENCV_LOG_LEVEL" not in os.environ:  # the runner reports camera and file problems itself
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's own messages: quiet
    from realtime.runner import Runner
    from realtime.stats import format_summary
    from realtime.sources import ImageFolderSource, open_source
    from realtime.video_io import VideoFileSource

    source = None
    try:
        options = _effect_options(args)
        from tqdm import tqdm

        log = lambda m: tqdm.write(m, file=sys.stderr)  # noqa: E731  (above a progress bar, if one is shown)
        source = open_source(args.source, args.capture_size)
        from_file = isinstance(source, VideoFileSource)
        # A file or folder rendered to a file, with no one watching (no window, no virtual camera):
        # every frame, with a progress bar. Anything else is live: frames are dropped to keep up.
        render = (bool(args.out) and (from_file or isinstance(source, ImageFolderSource))
                  and args.no_window and not args.virtual_cam)
        live = not (args.no_drop or render)
        sinks = _sinks(args, source, from_file, live, log)
        runner = Runner(source, sinks, effect=args.effect, options=options, drop=live,
                        stabilize=not args.no_stabilize, hud=not args.no_hud, max_frames=args.max_frames,
                        snapshot_dir=args.snapshot_dir, snapshot_at=args.snapshot_at,
                        reconnect_timeout=args.reconnect_timeout, log=log, progress=render and sys.stderr.isatty(),
                        target_fps=args.target_fps or None, started_at=PROGRAM_START)
        summary = runner.run()
    except UserError as e:
        if source is not None:
            source.close()
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # an unknown layer, style or class named on the command line
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    damaged = source.damage_note() if from_file else None  # frames that could not be decoded, skipped
    if from_file:
        summary["skipped_frames"] = source.skipped
    if report is None:
        print(format_summary(summary, offline=render))
        if damaged:
            print(f"warning: {damaged}", file=sys.stderr)
        if args.out and runner.stats.frames_out:
            print(f"wrote {args.out}")
    else:
        if damaged:
            print(f"warning: {damaged}", file=sys.stderr)
        report(summary)
    if runner.interrupted:
        print(f"interrupted{f': {args.out} holds what was done' if args.out else ''}", file=sys.stderr)
        return 130
    if runner.lost:
        print(f"error: {runner.lost}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
