"""Frames per second and latency of the live style path against a reference, in one run.

(a) reference: built like PyTorch's fast_neural_style example: the ``johnson`` network in
    torch eager fp32, one frame at a time, conversions included (BGR uint8 -> tensor ->
    network -> clamp -> uint8 BGR);
(b) this runner's whole path, capture to sink (``realtime.runner.Runner`` reading frames
    from a source, the ``style`` effect, the HUD, a sink), for the ``johnson``, ``lite`` and
    ``tiny`` networks (``--archs``), on each backend (onnxruntime, and OpenVINO when installed)
    with 1 and 2 workers, with the optical-flow stabiliser, and with the mirrored border margin
    the shipped styles use (``--border-pad``). Every frame is processed (``--no-drop`` mode), so
    FPS is throughput and latency is capture to sink. Weights are random: speed does not depend
    on them.
(c) the adaptive default, the README's main job: the shipped default style on the demo clip
    at its 30 frames per second, newest frame only, stabiliser, margin and HUD on, holding
    ``--target-fps``; FPS is frames shown over the run's wall time, and the row names the
    setting it settled on.

(d) ``--part effects``: every live effect and saliency mode at 640x480 frames (the HUD off, each at its
    own processing size), this runner's path against a torch-eager reference of the same effect (the
    backbone as loaded, plain autograd, ``visualize``'s own function, every frame from scratch:
    saliency, SmoothGrad with 4 samples, guided backprop, Grad-CAM by backpropagation, 2 DeepDream
    steps, activation maps), with the shipped network's real weights.
(e) ``--part precision``: the default style network alone at 640x480 on each engine and precision
    the CPU offers (fp32, OpenVINO bf16 where it has AVX-512 BF16 or AMX, int8 where it has VNNI;
    ``--all-precisions`` forces every one), with its PSNR against fp32 on the calibration photos;
    on OpenVINO also the graph as exported, without the decoder rewrite of
    ``models.inference.openvino_graph``.

``--sheet DIR`` also writes what was measured, to look at: ``precision.png`` (the default style on
chicago.jpg at 640x480 in each precision, a 2x crop of its sky, and the difference from fp32 times
8 on the same crop) and ``effects.png`` (the last frame of each effect, this runner's path beside the reference's).

``--busy`` runs the measurements beside one CPU-bound job at low priority (``nice -n 10``, one
thread), as a training beside the live runner would be.

The machine's CPU flags that matter (AVX2, AVX-512, VNNI, BF16, AMX) and its load average are
printed first: figures from a loaded machine are not comparable.

    python scripts/bench_realtime.py [--part style effects precision] [--frames 30] [--sizes 640x480]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from models.common.cli import min_int
from realtime.sinks import Sink
from realtime.sources import Source


class _Frames(Source):
    """A source of precomputed frames, so the source costs nothing measurable."""

    live = False
    fps = 1000.0
    name = "bench"

    def __init__(self, frames: list[np.ndarray]):
        self.frames, self.i = frames, 0

    def read(self):
        if self.i >= len(self.frames):
            return None
        self.i += 1
        return self.frames[self.i - 1]

    def close(self) -> None:
        pass


class _NullSink(Sink):
    """Keeps only the time each frame arrived: throughput is frames over the time they took to arrive."""

    live = False

    def __init__(self):
        self.times: list[float] = []
        self.last: np.ndarray | None = None

    def write(self, frame) -> None:
        self.times.append(time.perf_counter())
        self.last = frame

    def close(self) -> None:
        pass


def _reference(frames: list[np.ndarray], net) -> tuple[float, np.ndarray]:
    import torch

    lat = []
    with torch.no_grad():
        for f in frames:
            t0 = time.perf_counter()
            x = torch.from_numpy(f[..., ::-1].copy()).permute(2, 0, 1).float().div(255).unsqueeze(0)
            y = net(x).clamp(0, 1).mul(255).byte()[0].permute(1, 2, 0).numpy()[..., ::-1].copy()
            lat.append(time.perf_counter() - t0)
            assert y.shape == f.shape
    lat = np.array(lat)
    return 1.0 / lat[3:].mean(), lat


def _runner(frames: list[np.ndarray], model: Path, stabilize: bool, border_pad: int = 0,
            workers: int | None = None, backend: str = "onnxruntime") -> tuple[float, np.ndarray]:
    from realtime.effects import EffectOptions
    from realtime.runner import Runner

    sink = _NullSink()
    runner = Runner(_Frames(frames), [sink], effect="style", effects=["style"],
                    options=EffectOptions(model=str(model), provider="auto", border_pad=border_pad,
                                         workers=workers, backend=backend), drop=False, stabilize=stabilize)
    runner.run()
    lat = np.array(runner.stats.latencies)
    # Throughput after 3 warm-up frames. With frames in flight in parallel, latency is longer
    # than the time between frames, so it is counted from the sink, not from the latencies.
    t = sink.times
    return (len(t) - 4) / (t[-1] - t[3]), lat


def _adaptive(size: tuple[int, int], frames: int, target_fps: float) -> tuple[float, np.ndarray, str]:
    """The main job's path: demo clip, newest frame only, shipped default, adaptive; (FPS, latencies, setting)."""
    from realtime.effects import EffectOptions
    from realtime.runner import Runner
    from realtime.sources import DemoSource

    runner = Runner(DemoSource(size), [_NullSink()], effect="style", effects=["style"],
                    options=EffectOptions(provider="auto"), drop=True, max_frames=frames, target_fps=target_fps,
                    log=lambda m: None)
    s = runner.run()
    return s["fps"], np.array(runner.stats.latencies), s.get("setting", "")


def _effect_runner(effect: str, frames: list[np.ndarray], options, cls=None) -> tuple[float, np.ndarray, np.ndarray]:
    """The runner's path for one live effect (or ``cls`` in its place), every frame processed:
    (FPS after 3 warm-up frames, latencies, the last frame shown)."""
    from realtime.effects import EFFECTS
    from realtime.runner import Runner

    name = effect if cls is None else f"reference-{effect}"
    if cls is not None:
        EFFECTS[name] = cls
    try:
        sink = _NullSink()
        runner = Runner(_Frames(frames), [sink], effect=name, effects=[name], options=options, drop=False,
                        stabilize=False, hud=False, log=lambda m: None)
        runner.run()
    finally:
        if cls is not None:
            del EFFECTS[name]
    t = sink.times
    return (len(t) - 4) / (t[-1] - t[3]), np.array(runner.stats.latencies)[3:], sink.last


def _reference_effects() -> dict:
    """The same effects computed as a plain torch-eager implementation would: the backbone as loaded
    (no folding or fusion, NCHW, fp32), ``visualize``'s own functions every frame from scratch
    (SmoothGrad with 4 samples a frame, Grad-CAM by backpropagation, DeepDream 2 steps on the
    previous dream without warping, activation maps in torch), the same drawing."""
    import torch

    from realtime.effects.backbone import ActivationsEffect, DeepDreamEffect, SaliencyEffect
    from visualize.activations import activation_maps
    from visualize.attribution import grad_cam, saliency
    from visualize.deepdream import dream_steps

    class Saliency(SaliencyEffect):
        def heat(self, frame):
            x = self.to_tensor(frame)
            if self.mode == "gradcam":
                cam, self._cls = grad_cam(self.model, x, self.target)
                return cam[0].numpy() if cam.dim() == 3 else cam.numpy()
            sal, self._cls = saliency(self.model, x, self.target, smooth_samples=4 if self.mode == "smoothgrad" else 0,
                                      guided=self.mode == "guided")
            import cv2

            heat = cv2.GaussianBlur(sal[0].numpy(), (0, 0), 2)
            return heat / max(float(heat.max()), 1e-6)

    class DeepDream(DeepDreamEffect):
        def __call__(self, frame):
            from models.common.images import nchw_to_bgr, resize_to

            x = self.to_tensor(frame)
            if self.dream is not None and self.dream.shape == x.shape:
                x = self.feedback * self.dream + (1 - self.feedback) * x
            self.dream = dream_steps(self.model, x, self.layer, steps=2, generator=self.generator)
            return resize_to(nchw_to_bgr(self.dream.numpy()), frame)

    class Activations(ActivationsEffect):
        def maps(self, frame):
            return activation_maps(self.model, self.to_tensor(frame), self.layer).numpy()

    del torch
    return {"saliency": Saliency, "deepdream": DeepDream, "activations": Activations}


EFFECT_ROWS = [("saliency", "plain"), ("saliency", "gradcam"), ("saliency", "smoothgrad"), ("saliency", "guided"),
               ("deepdream", "plain"), ("activations", "plain")]


def _write_sheet(path: Path, rows: list[list[np.ndarray]]) -> None:
    """The tiles (BGR) as a PNG, drawn by compare_styles' sheet helpers."""
    import cv2

    from compare_styles import sheet_of  # scripts/ is on sys.path when this runs as a script

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), sheet_of(rows))
    print(f"wrote {path}")


def _effects(frames: int, threads: int | None, sheet: Path | None = None) -> None:
    from realtime.effects import EffectOptions
    from realtime.sources import DemoSource

    demo = DemoSource((640, 480))
    clip = [demo.read() for _ in range(frames + 3)]
    reference = _reference_effects()
    print(f"{'effect':>22s}  {'FPS':>6s} {'p50 ms':>7s} {'p95 ms':>7s}   {'reference FPS':>13s} {'p50 ms':>7s} "
          f"{'p95 ms':>7s}  {'x ref':>6s}")
    rows = []  # the sheet's tiles, drawn only when one is asked for
    if sheet is not None:
        from compare_styles import caption_tile  # scripts/ is on sys.path when this runs as a script

        rows.append([caption_tile(clip[-1], 240, ["the input (last frame)"])])
    for effect, mode in EFFECT_ROWS:
        options = EffectOptions(saliency_mode=mode, threads=threads, layer="block2" if effect == "activations" else None)
        fps, lat, shown = _effect_runner(effect, clip, options)
        ref_fps, ref_lat, ref_shown = _effect_runner(effect, clip, options, reference[effect])
        p50, p95 = np.percentile(lat * 1000, [50, 95])
        r50, r95 = np.percentile(ref_lat * 1000, [50, 95])
        label = effect if effect != "saliency" else f"saliency {mode}"
        if sheet is not None:
            rows.append([caption_tile(shown, 240, [f"{label}: this runner"]),
                         caption_tile(ref_shown, 240, [f"{label}: torch-eager reference"])])
        print(f"{label:>22s}  {fps:6.1f} {p50:7.1f} {p95:7.1f}   {ref_fps:13.1f} {r50:7.1f} {r95:7.1f}  "
              f"{fps / ref_fps:6.2f}", flush=True)
    if sheet is not None:
        _write_sheet(sheet / "effects.png", rows)


def _precision(all_precisions: bool, threads: int | None, sheet: Path | None = None) -> None:
    from models import catalogue
    from models.inference.backends import OpenVinoSession, candidates, load_style_model, split_backend, time_model
    from models.inference.precision import PSNR_BUDGET, calibration_images, int8_model, within_budget

    path = catalogue.model_path()
    names = candidates("auto")
    if all_precisions:
        names = list(dict.fromkeys([*names, *candidates("bf16"), *candidates("int8")]))
    images = calibration_images()
    outputs: dict[str, np.ndarray] = {}
    if sheet is not None:
        import cv2

        from models.common.images import bgr_to_nchw, nchw_to_bgr, read_rgb

        bgr = cv2.cvtColor(read_rgb(catalogue.SAMPLE_PHOTO), cv2.COLOR_RGB2BGR)
        photo = bgr_to_nchw(cv2.resize(bgr, (640, 480), interpolation=cv2.INTER_AREA))
    reference = load_style_model(path, "onnxruntime", ["CPUExecutionProvider"], threads)
    reference.border_pad = 0
    print(f"{path.name} alone at 640x480, {threads or 'all'} threads; PSNR against fp32 on {len(images)} calibration "
          f"photos (budget {PSNR_BUDGET:g} dB)")
    for name in names:
        model = load_style_model(path, name, ["CPUExecutionProvider"], threads)
        model.border_pad = 0
        quality = within_budget(reference.run, model.run, images)
        ms = time_model(model, (480, 640), runs=7) * 1000
        verdict = "within" if quality >= PSNR_BUDGET else "UNDER the budget"
        print(f"{name:>18s}  {ms:7.1f} ms  {quality:6.1f} dB ({verdict})", flush=True)
        if sheet is not None:
            outputs[name] = nchw_to_bgr(model.run(photo))
        if name.startswith("openvino") and getattr(model.session, "multiple", 1) > 1:
            # the same engine and precision on the graph as exported, without the decoder rewrite
            # (in turns, twice each, so that a burst of load on a shared machine hits both alike)
            prec = split_backend(name)[1]
            rewritten = model.session
            exported = OpenVinoSession(int8_model(path) if prec == "int8" else path, threads, 1, prec, rewrite=False)
            times: dict[str, list[float]] = {"rewritten": [ms], "exported": []}
            for session, key in ((exported, "exported"), (rewritten, "rewritten"), (exported, "exported")):
                model.session = session
                times[key].append(time_model(model, (480, 640), runs=7) * 1000)
            model.session = rewritten
            a, b = min(times["rewritten"]), min(times["exported"])
            print(f"{'':>18s}  {b:7.1f} ms  the graph as exported ({a:.1f} ms rewritten, in turns): the rewrite "
                  f"takes {(1 - a / b) * 100:.0f}% off", flush=True)
    if sheet is not None:
        from compare_styles import caption_tile

        fp32 = nchw_to_bgr(reference.run(photo))
        # chicago.jpg's sky above the skyline, where banding would show; the difference is shown on the
        # same crop at 2x, so that shrinking the tile does not average isolated differences away
        crop = (slice(0, 120), slice(240, 400))
        rows = []
        for name, out in outputs.items():
            diff = np.clip(np.abs(out.astype(np.int16) - fp32.astype(np.int16)) * 8, 0, 255).astype(np.uint8)
            big, big_diff = (cv2.resize(x[crop], None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST) for x in (out, diff))
            rows.append([caption_tile(out, 240, [name]), caption_tile(big, 240, [f"{name}: 2x crop of the sky"]),
                         caption_tile(big_diff, 240, [f"{name}: |difference from fp32| x 8, same crop"])])
        _write_sheet(sheet / "precision.png", rows)


def _busy():
    """One CPU-bound job at low priority, one thread (a training's matrix products), until killed."""
    import subprocess
    import sys

    code = ("import torch; torch.set_num_threads(1); a = torch.rand(512, 512)\n"
            "while True: a = (a @ a).clamp(-1, 1)")
    return subprocess.Popen(["nice", "-n", "10", sys.executable, "-c", code])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=30, help="frames per measurement (after 3 warm-up frames)")
    ap.add_argument("--sizes", nargs="+", default=["320x240", "640x480", "1280x720"])
    ap.add_argument("--archs", nargs="+", default=["johnson", "lite", "tiny"], choices=["johnson", "lite", "tiny"],
                    help="style networks to run through the runner (the reference is always johnson)")
    ap.add_argument("--border-pad", type=min_int(0), default=32, metavar="PX",
                    help="also run each network with this mirrored margin, as the shipped styles do (0: skip)")
    ap.add_argument("--target-fps", type=float, default=15.0, help="the adaptive row's target (default: 15)")
    ap.add_argument("--live-frames", type=min_int(10), default=90, help="frames of the adaptive row (default: 90)")
    ap.add_argument("--part", nargs="+", default=["style", "effects", "precision"],
                    choices=["style", "effects", "precision"], help="which tables to measure (default: all)")
    ap.add_argument("--threads", type=int, help="threads of the effects and engines (default: all cores)")
    ap.add_argument("--all-precisions", action="store_true",
                    help="time every precision, also those this CPU would not be offered")
    ap.add_argument("--busy", action="store_true", help="measure beside one CPU-bound job at nice 10")
    ap.add_argument("--sheet", type=Path, metavar="DIR",
                    help="also write effects.png and precision.png here: the frames measured, to look at")
    args = ap.parse_args()
    busy = _busy() if args.busy else None
    try:
        _main(args)
    finally:
        if busy is not None:
            busy.kill()


def _main(args) -> None:

    import onnxruntime as ort
    import torch

    from models.inference.onnx_style import default_providers
    from models.style_net import StyleNet
    from training.export import export_style_net

    from models.inference.backends import cpu_flags, openvino_available
    from models.common.machine import cpu_name

    backends = ["onnxruntime"] + (["openvino"] if openvino_available() else [])
    flags = cpu_flags()
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; AVX2 {'avx2' in flags}, AVX-512 {'avx512f' in flags}, "
          f"VNNI {any('vnni' in f for f in flags)}, BF16 {'avx512_bf16' in flags}, AMX {'amx_tile' in flags}; "
          "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())
          + ("; beside one busy job at nice 10" if args.busy else ""))
    if "effects" in args.part:
        _effects(args.frames, args.threads, args.sheet)
    if "precision" in args.part:
        _precision(args.all_precisions, args.threads, args.sheet)
    if "style" not in args.part:
        return
    if len(backends) == 1:
        print("OpenVINO is not installed (pip install openvino): onnxruntime rows only")
    rng = np.random.default_rng(0)
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime {ort.__version__} "
          f"({default_providers()[0]}); {args.frames} frames each, every frame processed")
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        nets = {a: StyleNet(a).eval() for a in dict.fromkeys(("johnson", *args.archs))}
        onnx = {a: export_style_net(n, Path(tmp) / f"{a}.onnx") for a, n in nets.items()}
        header = f"{'size':>9s}  {'path':78s} {'FPS':>6s} {'p50 ms':>7s} {'p95 ms':>7s} {'x ref':>6s}"
        print(header)
        for size in args.sizes:
            w, h = (int(v) for v in size.split("x"))
            frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(args.frames + 3)]
            ref_fps, ref_lat = _reference(frames, nets["johnson"])
            rows = [("(a) reference: johnson, torch eager fp32", ref_fps, ref_lat[3:])]
            for arch in args.archs:
                # (stabiliser, margin, workers, backend): each backend with 1 and 2 workers, then
                # the extras the shipped styles add on the faster backend's default
                variants = [(False, 0, w, b) for b in backends for w in (1, 2)]
                variants += [(True, 0, 2, "auto")]
                if args.border_pad:
                    variants += [(False, args.border_pad, 2, "auto"), (True, args.border_pad, 2, "auto")]
                for stabilize, pad, workers, backend in variants:
                    fps, lat = _runner(frames, onnx[arch], stabilize, pad, workers, backend)
                    label = (f"(b) runner: {arch}, {backend}, {workers} worker{'s' if workers > 1 else ''}"
                             + (" + stabiliser" if stabilize else "") + (f" + {pad} px margin" if pad else ""))
                    rows.append((label, fps, lat[3:]))
            fps, lat, setting = _adaptive((w, h), args.live_frames, args.target_fps)
            rows.append((f"(c) adaptive default, live -> {setting}", fps, lat))
            for label, fps, lat in rows:
                p50, p95 = np.percentile(lat * 1000, [50, 95])
                print(f"{size:>9s}  {label:78s} {fps:6.1f} {p50:7.1f} {p95:7.1f} {fps / ref_fps:6.2f}", flush=True)


if __name__ == "__main__":
    main()
