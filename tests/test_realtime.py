"""The live runner end to end: real video files in and out, every effect, drops, errors, stability."""

import os
import subprocess
import sys
import time
from contextlib import contextmanager

import cv2
import numpy as np
import pytest

from models import catalogue
from models.common.images import bgr_to_nchw, nchw_to_bgr
from models.inference.onnx_style import OnnxStyleModel
from realtime.effects import EFFECTS, Effect, register
from realtime.runner import Runner
from realtime.stats import format_summary
from realtime.sinks import Sink
from realtime.sources import DemoSource, LatestFrameGrabber, Source
from realtime.stabilizer import FlowStabilizer, warping_error

W, H, N = 160, 120, 12


def _read_video(path):
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return frames


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A synthetic clip written with OpenCV: the bundled photo panning, 20 frames."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    src = DemoSource((W, H), frames=20, noise=2.0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 20, (W, H))
    while (f := src.read()) is not None:
        writer.write(f)
    writer.release()
    return path


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "realtime", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


@pytest.mark.parametrize("effect", ["style", "saliency", "deepdream", "activations", "none"])
def test_every_effect_renders_a_video_file(clip, tmp_path, effect):
    out = tmp_path / "out.mp4"
    r = _run("--source", clip, "--out", out, "--no-window", "--max-frames", N, "--no-drop", "--effect", effect,
             "--no-hud", "--provider", "cpu")
    assert r.returncode == 0, r.stderr
    assert f"frames in {N}, out {N}, dropped 0" in r.stdout
    frames, inputs = _read_video(out), _read_video(clip)[:N]
    assert len(frames) == N and all(f.shape == (H, W, 3) for f in frames)
    diff = np.mean([np.abs(a.astype(float) - b).mean() for a, b in zip(frames, inputs)])
    if effect == "none":
        assert diff < 6  # codec noise only
    else:
        assert diff > 10


def test_hud_is_drawn_and_snapshots_are_saved(clip, tmp_path):
    r = _run("--source", clip, "--out", tmp_path / "o.avi", "--no-window", "--max-frames", 3, "--no-drop",
             "--effect", "none", "--snapshot-at", 2, "--snapshot-dir", tmp_path / "snaps")
    assert r.returncode == 0, r.stderr
    frames, inputs = _read_video(tmp_path / "o.avi"), _read_video(clip)
    top_left = np.abs(frames[0][:30, :100].astype(float) - inputs[0][:30, :100]).mean()
    assert top_left > 10  # the HUD box
    assert len(list((tmp_path / "snaps").glob("snapshot_*.png"))) == 1


@contextmanager
def _registered(effect_class):
    """A test effect in the registry for the length of a test."""
    register(effect_class)
    try:
        yield
    finally:
        EFFECTS.pop(effect_class.name)


class _Slow(Effect):
    name = "slow-test"

    def __init__(self, options=None):
        pass

    def __call__(self, frame):
        time.sleep(0.04)
        return 255 - frame


class _Counter(Source):
    """Numbered frames at 200 FPS: each frame's number is written in its first pixel row."""

    fps = 200.0

    def __init__(self, n):
        self.n, self.i = n, 0

    def read(self):
        if self.i >= self.n:
            return None
        f = np.zeros((48, 64, 3), np.uint8)
        f[0, :2, 0] = divmod(self.i, 256)
        self.i += 1
        return f


class _Collect(Sink):
    def __init__(self, live: bool = False):
        self.frames = []
        self.live = live

    def write(self, frame):
        self.frames.append(frame)

    def close(self):
        pass


def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def test_latest_frame_policy_drops_old_frames_and_keeps_latency_flat():
    with _registered(_Slow):
        sink = _Collect()
        runner = Runner(_Counter(400), [sink], effect="slow-test", effects=["slow-test"], stabilize=False, hud=False)
        rss = _rss_mb()
        summary = runner.run()
    assert summary["frames_in"] == 400
    assert summary["dropped"] > 250 and summary["frames_out"] < 120
    assert summary["frames_in"] == summary["frames_out"] + summary["dropped"]
    numbers = [int(f[0, 0, 0]) * 256 + int(f[0, 1, 0]) for f in (255 - f for f in sink.frames)]
    assert numbers == sorted(numbers) and numbers[-1] > 350  # in order, and it kept up with the newest
    lat = np.array(runner.stats.latencies)
    assert lat[-10:].mean() < 3 * 0.04 + 0.05  # no queue builds up: latency stays about one effect call
    assert abs(lat[-10:].mean() - lat[:10].mean()) < 0.05
    assert _rss_mb() - rss < 30


class _Parallel(Effect):
    """Two frames at once, each taking a random time, so they finish out of order."""

    name = "parallel-test"
    workers = 2

    def __init__(self, options=None):
        import threading

        self.lock, self.active, self.most = threading.Lock(), 0, 0
        self.rng = np.random.default_rng(0)

    def __call__(self, frame):
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
            pause = float(self.rng.uniform(0.0, 0.03))
        time.sleep(pause)
        with self.lock:
            self.active -= 1
        return 255 - frame


@pytest.mark.parametrize("drop", [False, True])
def test_two_workers_overlap_and_frames_leave_in_order(drop):
    with _registered(_Parallel):
        sink = _Collect()
        runner = Runner(_Counter(200), [sink], effect="parallel-test", effects=["parallel-test"],
                        stabilize=False, hud=False, drop=drop, max_frames=60)
        summary = runner.run()
    assert runner.effect.most == 2  # two frames were in the effect at once
    numbers = [int(f[0, 0, 0]) * 256 + int(f[0, 1, 0]) for f in (255 - f for f in sink.frames)]
    assert summary["frames_out"] == len(numbers) == 60
    assert numbers == sorted(set(numbers))  # capture order, none twice
    if not drop:
        assert numbers == list(range(60)) and summary["frames_in"] == 60


class _SlowCamera(_Counter):
    fps = 20.0  # a new frame every 50 ms


class _Quick(_Parallel):
    """Two workers, 5 ms a frame: much faster than the camera."""

    name = "quick-test"

    def __call__(self, frame):
        time.sleep(0.005)
        return 255 - frame


def test_a_finished_frame_leaves_without_waiting_for_the_next_capture():
    """With frames in parallel, a fast effect must not hold its frame until the next one arrives
    (that added a whole camera interval, 50 ms here, to the latency)."""
    with _registered(_Quick):
        runner = Runner(_SlowCamera(20), [_Collect()], effect="quick-test", effects=["quick-test"],
                        stabilize=False, hud=False)
        summary = runner.run()
    assert summary["frames_out"] >= 15
    assert np.median(runner.stats.latencies) < 0.03


def test_quit_with_frames_in_flight_keeps_the_counts_whole():
    with _registered(_Parallel):
        sink = _Collect()
        runner = Runner(_Counter(400), [sink], effect="parallel-test", effects=["parallel-test"],
                        stabilize=False, hud=False, drop=False)
        original = sink.write

        def write_then_quit(frame):
            original(frame)
            if len(sink.frames) == 7:
                runner.quit()

        sink.write = write_then_quit
        summary = runner.run()
    assert summary["frames_out"] == 7
    assert summary["frames_in"] == summary["frames_out"] + summary["dropped"]
    assert summary["dropped"] >= 1  # the frame that was in flight


class _Failing(_Parallel):
    name = "failing-test"

    def __call__(self, frame):
        if int(frame[0, 0, 0]) * 256 + int(frame[0, 1, 0]) == 5:
            raise RuntimeError("effect broke on frame 5")
        return 255 - frame


def test_an_error_in_a_worker_reaches_the_caller_after_the_frames_before_it():
    with _registered(_Failing):
        sink = _Collect()
        runner = Runner(_Counter(50), [sink], effect="failing-test", effects=["failing-test"],
                        stabilize=False, hud=False, drop=False)
        with pytest.raises(RuntimeError, match="frame 5"):
            runner.run()
    assert [int(f[0, 0, 0]) * 256 + int(f[0, 1, 0]) for f in (255 - f for f in sink.frames)] == [0, 1, 2, 3, 4]


def test_style_runs_two_frames_at_once_on_a_cpu_by_default():
    from realtime.effects import EffectOptions
    from realtime.effects.style import style_workers

    assert style_workers(EffectOptions(), ["CUDAExecutionProvider", "CPUExecutionProvider"]) == (1, None)
    assert style_workers(EffectOptions(workers=1), ["CPUExecutionProvider"]) == (1, None)
    assert style_workers(EffectOptions(workers=3, threads=1), ["CPUExecutionProvider"]) == (3, 1)
    if len(os.sched_getaffinity(0)) >= 2:
        workers, threads = style_workers(EffectOptions(), ["CPUExecutionProvider"])
        assert workers == 2 and threads == len(os.sched_getaffinity(0)) // 2


def test_file_source_no_drop_keeps_every_frame(clip):
    from realtime.sources import open_source

    sink = _Collect()
    summary = Runner(open_source(str(clip)), [sink], effect="none", drop=False, hud=False).run()
    assert summary["frames_in"] == summary["frames_out"] == 20 and summary["dropped"] == 0


@pytest.mark.parametrize("args, problem", [
    (["--source", "7"], "no camera at index 7"),
    (["--source", "{tmp}/notes.mp4"], "cannot open this video"),
    (["--source", "{tmp}/missing.mp4"], "no such file"),
    (["--source", "demo", "--model", "{tmp}/bad.onnx"], "not a loadable ONNX model"),
    (["--source", "demo", "--layer", "block99", "--effect", "activations"], "block99"),
    (["--source", "demo", "--out", "{tmp}/out.xyz"], "unsupported video suffix"),
])
def test_bad_input_gives_one_clear_line(tmp_path, args, problem):
    (tmp_path / "notes.mp4").write_text("these are my notes, not a video")
    (tmp_path / "bad.onnx").write_bytes(b"\x00\x01garbage")
    r = _run(*[a.format(tmp=tmp_path) for a in args], "--no-window", "--max-frames", "2")
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1 and problem in r.stderr, r.stderr


def test_no_display_without_no_window_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    r = _run("--source", "demo", "--max-frames", "2")
    assert r.returncode == 2 and "--no-window" in r.stderr


@pytest.fixture(scope="module")
def three_styles(tmp_path_factory):
    """A conditional model of three distinct styles (random per-style norms: a shape test)."""
    import torch

    from models.style_net import StyleNet
    from training.export import export_style_net
    from models.inference.onnx_style import META_STYLES

    torch.manual_seed(0)
    net = StyleNet("lite", num_styles=3)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "norm" in name:
                p.add_(0.3 * torch.randn_like(p))
    return export_style_net(net, tmp_path_factory.mktemp("three") / "three.onnx",
                            metadata={META_STYLES: '["a", "b", "c"]'})


def test_style_keys_cycle_and_blend_through_every_style(three_styles):
    from realtime.effects import EffectOptions

    runner = Runner(DemoSource((64, 48), frames=1), [], effect="style", stabilize=False,
                    options=EffectOptions(model=str(three_styles), provider="cpu"))
    style = runner.effect
    frame = DemoSource((64, 48), frames=1).read()
    assert style.weights.tolist() == [1, 0, 0]
    seen = []
    for _ in range(8):  # b, b, b, b reaches style b fully, then moves on toward c
        runner.on_key(ord("b"))
        seen.append([round(float(w), 2) for w in style.weights])
    assert seen[:4] == [[0.75, 0.25, 0], [0.5, 0.5, 0], [0.25, 0.75, 0], [0, 1, 0]]
    assert seen[7] == [0, 0, 1]
    assert abs(style.weights.sum() - 1) < 1e-6
    runner.on_key(ord("n"))
    assert style.weights.tolist() == [1, 0, 0]
    runner.on_key(ord("p"))
    assert style.weights.tolist() == [0, 0, 1]
    outs = []
    for w in ([1, 0, 0], [0, 1, 0], [0.5, 0.5, 0]):
        style.weights[:] = w
        outs.append(style(frame).astype(float))
    d_ab = np.abs(outs[0] - outs[1]).mean()
    assert d_ab > 1 and np.abs(outs[2] - outs[0]).mean() < d_ab and np.abs(outs[2] - outs[1]).mean() < d_ab
    runner.on_key(ord("e"))
    assert runner.effect_name != "style"
    runner.on_key(ord("h"))
    assert runner.hud is False
    runner.on_key(ord("q"))
    assert runner.running is False


def test_stabiliser_lowers_flicker_on_a_noisy_clip():
    """Warping error of Lai et al. 2018 with the clip's exact motion, raw vs stabilised."""
    src = DemoSource((W, H), frames=16, noise=4.0)
    frames = [src.read() for _ in range(16)]
    flows = [src.backward_flow(t) for t in range(1, 16)]
    model = OnnxStyleModel(catalogue.model_path(), providers=["CPUExecutionProvider"])
    raw = [nchw_to_bgr(model.run(bgr_to_nchw(f))) for f in frames]
    stab = FlowStabilizer()
    steady = [stab(f, r) for f, r in zip(frames, raw)]
    e_raw, e_stab = warping_error(frames, raw, flows), warping_error(frames, steady, flows)
    assert e_stab < 0.5 * e_raw
    assert np.mean([np.abs(a.astype(float) - b).mean() for a, b in zip(steady, raw)]) < 12  # still the style


@pytest.mark.parametrize("effect", ["style", "saliency", "deepdream", "activations"])
@pytest.mark.parametrize("shape", [(9, 17), (9, 17, 1), (33, 20, 4), (10, 10, 3)])
def test_effects_take_odd_frames(effect, shape):
    from models.common.images import to_bgr
    from realtime.effects import EffectOptions, create_effect

    frame = to_bgr(np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8))
    fx = create_effect(effect, EffectOptions(provider="cpu", size=64 if effect != "style" else None))
    out = fx(frame)
    assert out.shape == frame.shape[:2] + (3,) and out.dtype == np.uint8
    stab = FlowStabilizer()
    assert stab(frame, out).shape == out.shape and stab(frame, out).shape == out.shape


class _Broken(Source):
    fps = 100.0

    def __init__(self):
        self.i = 0

    def read(self):
        self.i += 1
        if self.i > 3:
            raise RuntimeError("camera unplugged")
        return np.zeros((32, 32, 3), np.uint8)


class _Unplugged(Source):
    """A live camera that gives ``before`` frames, then none until ``fails`` reopen attempts have failed."""

    live, fps, name = True, 100.0, "camera 9"

    def __init__(self, before: int = 20, fails: int = 2):
        self.before, self.fails = before, fails
        self.i, self.attempts, self.present = 0, 0, True

    def read(self):
        if self.i == self.before and self.attempts == 0:
            self.present = False  # unplugged, once
        if not self.present:
            return None
        self.i += 1
        time.sleep(0.01)
        return np.full((24, 32, 3), 200, np.uint8)

    def reopen(self):
        self.attempts += 1
        self.present = self.attempts > self.fails
        return self.present


def test_a_lost_camera_is_retried_with_backoff_while_the_window_stays_live(monkeypatch):
    monkeypatch.setattr(LatestFrameGrabber, "BACKOFF", (0.1, 0.4))
    source, window, log = _Unplugged(before=20, fails=2), _Collect(live=True), []
    runner = Runner(source, [window], effect="none", hud=False, stabilize=False, max_frames=35, log=log.append)
    t = time.perf_counter()
    summary = runner.run()
    assert summary["frames_out"] == 35 and summary["reconnects"] == 1 and runner.lost is None
    assert source.attempts == 3 and time.perf_counter() - t > 0.1 + 0.2  # waited 0.1 s, then 0.2 s
    assert any("camera 9: no frames; reconnecting" in m for m in log)
    assert any("camera 9: back after" in m and "3 attempts" in m for m in log)
    waiting = [f for f in window.frames if f.mean() < 150]  # the dimmed last picture with the message
    assert waiting and len(window.frames) == 35 + len(waiting)
    assert "reconnected 1 time" in format_summary(summary)


def test_a_camera_that_never_comes_back_ends_the_run_with_its_summary(monkeypatch, capsys):
    monkeypatch.setattr(LatestFrameGrabber, "BACKOFF", (0.1, 0.2))
    import realtime.sources
    from realtime.__main__ import main

    monkeypatch.setattr(realtime.sources, "open_source", lambda spec, size=None: _Unplugged(before=5, fails=10**6))
    code = main(["--source", "0", "--effect", "none", "--no-window", "--reconnect-timeout", "0.6"])
    out, err = capsys.readouterr()
    assert code == 1 and "frames in 5, out" in out
    assert err.splitlines()[0] == "camera 9: no frames; reconnecting for up to 0.6 s"
    assert err.splitlines()[-1] == "error: camera 9: no frames, and not back after 0.6 s of retrying"


def test_an_error_in_the_capture_thread_reaches_the_runner():
    with pytest.raises(RuntimeError, match="unplugged"):
        Runner(_Broken(), [], effect="none", hud=False).run()


def test_snapshot_into_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "f").write_text("x")
    r = _run("--source", "demo", "--no-window", "--max-frames", 3, "--effect", "none", "--snapshot-at", 1,
             "--snapshot-dir", tmp_path / "f")
    assert r.returncode == 2 and "snapshot folder is a file" in r.stderr


def test_cuda_asked_for_without_a_gpu_falls_back_to_the_cpu_with_one_warning():
    from models.inference.onnx_style import _nvidia_driver_present

    if _nvidia_driver_present():
        pytest.skip("this machine has an NVIDIA driver: CUDA is usable")
    r = _run("--source", "demo", "--provider", "cuda", "--no-window", "--max-frames", 3, "--capture-size", "96x64")
    assert r.returncode == 0 and "frames in" in r.stdout
    assert r.stderr.splitlines() == [
        f"warning: CUDAExecutionProvider is not usable here (no NVIDIA driver or CUDA libraries); running "
        f"{catalogue.model_path().name} on CPUExecutionProvider"], r.stderr


def test_cuda_asked_of_an_onnxruntime_without_it_gives_only_our_warning(monkeypatch):
    """onnxruntime's CPU wheel has no CUDA provider and warns by itself when asked for it; the user
    should read one line, ours, which names the model and where it runs."""
    import warnings

    import onnxruntime as ort

    from models.inference.onnx_style import OnnxStyleModel

    from onnxruntime.capi import onnxruntime_inference_collection as session_module

    cpu_only = lambda: ["CPUExecutionProvider"]  # noqa: E731 - what the CPU wheel answers
    monkeypatch.setattr(ort, "get_available_providers", cpu_only)
    monkeypatch.setattr(session_module.C, "get_available_providers", cpu_only)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = OnnxStyleModel(catalogue.model_path(), providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert model.providers == ["CPUExecutionProvider"]
    assert [str(w.message) for w in caught] == [
        f"CUDAExecutionProvider is not usable here (no NVIDIA driver or CUDA libraries); running "
        f"{catalogue.model_path().name} on CPUExecutionProvider"]


def test_border_pad_flag_overrides_the_models_margin():
    """--border-pad trades a zero-padded model's mirrored margin for speed (or adds one to any
    model); by default each model keeps its own (0 for the reflection-padded ones)."""
    from models import catalogue
    from realtime.__main__ import build_parser
    from realtime.effects import EffectOptions, create_effect

    entry = next(e for e in catalogue.shipped() if e.border_pad > 0)
    own = create_effect("style", EffectOptions(provider="cpu", model=entry.name))
    assert own.model.border_pad == entry.border_pad
    assert create_effect("style", EffectOptions(provider="cpu", model=entry.name, border_pad=0)).model.border_pad == 0
    assert create_effect("style", EffectOptions(provider="cpu", border_pad=24)).model.border_pad == 24
    assert build_parser().parse_args(["--border-pad", "0"]).border_pad == 0
