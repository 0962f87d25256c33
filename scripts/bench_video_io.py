"""Render throughput of a video file to a video file, against OpenCV writing, in one run.

One 640x480 H.264 clip with an AAC sound track (made here, from the demo source) goes
through, with no effect, so the figure is the cost of the video I/O alone:

(a) reference: OpenCV, as this project wrote files before: ``cv2.VideoCapture`` reading,
    ``cv2.VideoWriter`` writing MPEG-4 Part 2 (``mp4v``) in .mp4; no sound, constant rate;
(b) ``realtime.video_io``: ``VideoFileSource`` -> ``VideoFileSink`` (H.264 yuv420p by default,
    the sound copied, every frame at its own time), alone and through the whole
    ``Runner`` path that ``python -m realtime --source clip.mp4 --out out.mp4 --no-window``
    takes (effect ``none``, no HUD), for each codec asked for.

    python scripts/bench_video_io.py [--frames 150] [--size 640x480] [--codecs h264 vp9 ffv1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from models.common.cli import min_int
from realtime.runner import Runner
from realtime.sources import DemoSource
from realtime.video_io import VideoFileSink, VideoFileSource, available_codecs


def make_clip(path: Path, frames: int, size: tuple[int, int], fps: int = 30) -> Path:
    """A demo clip (pan, zoom, sensor noise) in H.264 with a 440 Hz AAC sound track."""
    src = DemoSource(size, frames=frames, fps=fps)
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps, options={"crf": "18", "preset": "veryfast"})
        v.width, v.height, v.pix_fmt = size[0], size[1], "yuv420p"
        a = out.add_stream("aac", rate=44_100)
        a.layout = "mono"
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(src.read(), format="bgr24")
            f.pts, f.time_base = i, Fraction(1, fps)
            out.mux(v.encode(f))
        out.mux(v.encode(None))
        total = round(frames / fps * 44_100)
        for start in range(0, total, 1024):
            n = np.arange(start, min(start + 1024, total))
            af = av.AudioFrame.from_ndarray((0.3 * np.sin(2 * np.pi * 440 * n / 44_100)).astype(np.float32)[None],
                                            format="flt", layout="mono")
            af.sample_rate, af.pts, af.time_base = 44_100, start, Fraction(1, 44_100)
            out.mux(a.encode(af))
        out.mux(a.encode(None))
    return path


def opencv(clip: Path, out: Path) -> int:
    cap = cv2.VideoCapture(str(clip))
    fps = cap.get(cv2.CAP_PROP_FPS)
    writer = None
    n = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if writer is None:
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, frame.shape[1::-1])
        writer.write(frame)
        n += 1
    writer.release()
    cap.release()
    return n


def pyav(clip: Path, out: Path, codec: str) -> int:
    src = VideoFileSource(clip)
    sink = VideoFileSink(out, src.fps, codec=codec, audio_from=clip, time_base=src.time_base, log=lambda m: None)
    n = 0
    while (got := src.read_timed()) is not None:
        sink.write_at(*got)
        n += 1
    sink.end_of_stream()
    sink.close()
    src.close()
    return n


def runner(clip: Path, out: Path, codec: str) -> int:
    src = VideoFileSource(clip)
    sink = VideoFileSink(out, src.fps, codec=codec, audio_from=clip, time_base=src.time_base, log=lambda m: None)
    summary = Runner(src, [sink], effect="none", drop=False, hud=False, stabilize=False, log=lambda m: None).run()
    return summary["frames_out"]


def timed(fn, *args) -> tuple[float, int]:
    start = time.perf_counter()
    n = fn(*args)
    return time.perf_counter() - start, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=min_int(10), default=150)
    ap.add_argument("--size", default="640x480", metavar="WxH")
    ap.add_argument("--codecs", nargs="+", default=["h264"], choices=("h264", "vp9", "av1", "ffv1", "mjpeg"))
    ap.add_argument("--repeat", type=min_int(1), default=2, help="runs of each row; the best is shown")
    args = ap.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = make_clip(tmp / "clip.mp4", args.frames, size)
        rows = [("(a) OpenCV read + write mp4v, no sound", opencv, tmp / "cv.mp4")]
        for codec in args.codecs:
            if codec not in available_codecs():
                print(f"skipping {codec}: not in this PyAV wheel")
                continue
            suffix = ".mkv" if codec == "ffv1" else ".mp4"
            rows.append((f"(b) PyAV source -> sink, {codec}, sound copied", pyav, tmp / f"pyav_{codec}{suffix}", codec))
            rows.append((f"(b) the CLI's Runner path, {codec}, sound copied", runner, tmp / f"run_{codec}{suffix}", codec))
        print(f"{args.frames} frames of {size[0]}x{size[1]}, effect none, best of {args.repeat}")
        reference = None
        for label, fn, out, *extra in rows:
            best = min(timed(fn, clip, out, *extra) for _ in range(args.repeat))
            fps = best[1] / best[0]
            reference = reference or fps
            print(f"{label:52s} {fps:7.1f} FPS  ({fps / reference:4.2f}x)  {out.stat().st_size / 1e6:6.2f} MB")


if __name__ == "__main__":
    main()
