"""Flicker of stylised video, raw and stabilised, side by side (Lai et al. 2018 warping error).

Renders the demo clip (the bundled photo moving like a hand-held camera, with sensor
noise) through a style model, then measures the mean squared warping error between
consecutive output frames over visible pixels, with the clip's exact motion and with
DIS optical flow estimated from the inputs. Lower is steadier; the input clip's own
figure is the floor set by noise and interpolation.

    python scripts/flicker.py [--model FILE.onnx] [--size 320x240] [--frames 60] [--noise 4]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from models import catalogue
from models.common.images import bgr_to_nchw, nchw_to_bgr
from models.inference.onnx_style import OnnxStyleModel
from realtime.sources import DemoSource
from realtime.stabilizer import FlowStabilizer, warping_error


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="ONNX style model (default: the shipped default)")
    ap.add_argument("--size", default="320x240", help="clip size WxH")
    ap.add_argument("--frames", type=int, default=60, help="clip length (at least 2)")
    ap.add_argument("--noise", type=float, default=4.0, help="sensor noise, grey levels (sigma)")
    args = ap.parse_args()

    if args.frames < 2:
        ap.error("--frames must be at least 2: flicker is measured between consecutive frames")
    w, h = (int(v) for v in args.size.split("x"))
    src = DemoSource((w, h), frames=args.frames, noise=args.noise)
    frames = [src.read() for _ in range(args.frames)]
    exact = [src.backward_flow(t) for t in range(1, args.frames)]
    model = OnnxStyleModel(args.model or catalogue.model_path())
    raw = [nchw_to_bgr(model.run(bgr_to_nchw(f))) for f in frames]
    stab = FlowStabilizer()
    t0 = time.perf_counter()
    steady = [stab(f, r) for f, r in zip(frames, raw)]
    cost = (time.perf_counter() - t0) / len(frames) * 1000

    print(f"{model.path.name}, demo clip {w}x{h}, {args.frames} frames, noise sigma {args.noise}")
    print(f"{'':24s} {'exact motion':>14s} {'DIS flow':>10s}")
    for label, seq in [("input clip", frames), ("stylised, raw", raw), ("stylised, stabilised", steady)]:
        print(f"{label:24s} {warping_error(frames, seq, exact):14.5f} {warping_error(frames, seq):10.5f}")
    ratio = warping_error(frames, raw, exact) / warping_error(frames, steady, exact)
    drift = np.mean([np.abs(a.astype(float) - b).mean() for a, b in zip(steady, raw)])
    print(f"stabiliser: flicker {ratio:.1f}x lower, {cost:.1f} ms a frame, "
          f"mean change from the raw stylisation {drift:.1f} grey levels")


if __name__ == "__main__":
    main()
