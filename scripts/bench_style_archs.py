"""Measure candidate style-network shapes with onnxruntime on this machine.

Used to choose the ``lite`` architecture (30 FPS at 320x240 on 2 CPU cores).
Prints frames per second of the network alone and of the whole frame path
(BGR uint8 -> NCHW float -> network -> BGR uint8), against the ``johnson`` network
measured in the same run. Weights are random: speed does not depend on them.

    python scripts/bench_style_archs.py [--threads 2] [--seconds 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from models.common.images import bgr_to_nchw, nchw_to_bgr
from models.style_net import ARCHS, StyleNet, StyleNetConfig

CANDIDATES: dict[str, StyleNetConfig] = {
    "johnson": ARCHS["johnson"],
    "16-32-64 res3 k9/9 reflect": StyleNetConfig((16, 32, 64), 3, 9, 9, "reflect", False),
    "16-32-64 res3 k5/3 zeros": StyleNetConfig((16, 32, 64), 3, 5, 3, "zeros", False),
    "16-32-64 dw-res3 k5/3 zeros": StyleNetConfig((16, 32, 64), 3, 5, 3, "zeros", True),
    "16-32-64 dw-res5 k5/3 zeros": StyleNetConfig((16, 32, 64), 5, 5, 3, "zeros", True),
    "12-24-48 res3 k5/3 zeros": StyleNetConfig((12, 24, 48), 3, 5, 3, "zeros", False),
    "12-24-48 dw-res5 k5/3 zeros": StyleNetConfig((12, 24, 48), 5, 5, 3, "zeros", True),
    "8-16-48 res3 k5/3 zeros": StyleNetConfig((8, 16, 48), 3, 5, 3, "zeros", False),
    "8-16-32 res3 k5/3 zeros": StyleNetConfig((8, 16, 32), 3, 5, 3, "zeros", False),
}
SIZES = [(320, 240), (640, 480)]


def _fps(fn, seconds: float) -> float:
    fn()  # warm up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    ap.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    args = ap.parse_args()

    import onnxruntime as ort
    import torch

    from training.export import export_style_net

    rng = np.random.default_rng(0)
    frames = {s: rng.integers(0, 256, (s[1], s[0], 3), dtype=np.uint8) for s in SIZES}
    print(f"onnxruntime {ort.__version__}, {args.threads} threads, graph optimisation ALL")
    header = f"{'network':30s} {'params':>8s} " + " ".join(f"{w}x{h} net / e2e".rjust(20) for w, h in SIZES)
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for name, cfg in CANDIDATES.items():
            torch.manual_seed(0)
            net = StyleNet(cfg).eval()
            path = Path(tmp) / "m.onnx"
            export_style_net(net, path)
            so = ort.SessionOptions()
            so.intra_op_num_threads = args.threads
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
            cells = []
            for s in SIZES:
                frame = frames[s]
                x = bgr_to_nchw(frame)
                net_fps = _fps(lambda: sess.run(None, {"image": x}), args.seconds)
                e2e_fps = _fps(lambda: nchw_to_bgr(sess.run(None, {"image": bgr_to_nchw(frame)})[0]), args.seconds)
                cells.append(f"{net_fps:8.1f} / {e2e_fps:6.1f}".rjust(20))
            params = sum(p.numel() for p in net.parameters())
            print(f"{name:30s} {params:8d} " + " ".join(cells), flush=True)


if __name__ == "__main__":
    main()
