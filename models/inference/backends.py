"""Which engine runs a style network on this CPU: onnxruntime or OpenVINO, chosen by measuring.

Machines differ: on a 2-core AVX2 machine OpenVINO ran the ``lite`` network at 640x480 in
107 ms against onnxruntime's 147-196 ms; elsewhere it may be the other way round. So a short
probe at start-up times both on a frame of the size that will be processed, and the answer is
cached per model file, machine and size under the user's cache folder. OpenVINO runs in fp32
(its default on CPUs with bf16 or AMX changes pixels by about 1e-2); both engines give the same
image within 1e-3. CUDA stays with onnxruntime-gpu. No torch import.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from models.common import machine
from models.common.errors import InputFileError, UserError, first_line
from models.inference.onnx_style import OnnxStyleModel
from models.common.paths import user_cache_dir

BACKENDS = ("onnxruntime", "openvino")
CHOICES = ("auto", *BACKENDS)
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile")
PROBE_RUNS = 3  # timed runs per engine after one warm-up; the fastest counts


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


def cpu_flags() -> list[str]:
    """The CPU features that decide the speed of these networks (Linux; empty elsewhere)."""
    have = machine.cpu_flags()
    return [flag for flag in CPU_FLAGS if flag in have]


class OpenVinoSession:
    """The one call of an onnxruntime session that :class:`OnnxStyleModel` makes (``run``), on
    OpenVINO's CPU device. ``streams`` frames may run at once, each from its own thread."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None, streams: int = 1):
        import openvino as ov

        config: dict[str, object] = {"INFERENCE_PRECISION_HINT": "f32"}
        if streams > 1:
            config.update(PERFORMANCE_HINT="THROUGHPUT", NUM_STREAMS=streams)
        else:
            config["PERFORMANCE_HINT"] = "LATENCY"
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        try:
            self.compiled = ov.Core().compile_model(str(path), "CPU", config)
        except Exception as e:
            raise InputFileError(path, f"OpenVINO cannot run it ({first_line(e)})") from None
        self._local = threading.local()

    def run(self, names: Sequence[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        request = getattr(self._local, "request", None)
        if request is None:  # one request per thread: requests are not shared between threads
            request = self._local.request = self.compiled.create_infer_request()
        out = request.infer(feeds)
        return [np.array(out[name]) for name in names]


def load_style_model(path: str | os.PathLike, backend: str = "onnxruntime", providers: Sequence[str] | None = None,
                     threads: int | None = None, streams: int = 1) -> OnnxStyleModel:
    """An :class:`OnnxStyleModel` whose network runs on ``backend`` (onnxruntime or openvino).

    The onnxruntime session always opens first: it checks the file and reads its metadata.
    """
    model = OnnxStyleModel(path, providers=providers, threads=threads)
    model.backend = "onnxruntime"
    if backend == "openvino":
        if not openvino_available():
            raise UserError("--backend openvino needs the openvino package: pip install openvino")
        # ``threads`` is per frame, as for onnxruntime; OpenVINO counts them for all streams together
        model.session = OpenVinoSession(path, threads * streams if threads else None, streams)
        model.backend = "openvino"
    elif backend != "onnxruntime":
        raise UserError(f"unknown backend {backend!r}; choose one of {list(CHOICES)}")
    return model


def time_model(model: OnnxStyleModel, hw: tuple[int, int], runs: int = PROBE_RUNS) -> float:
    """Seconds per frame of ``model`` on an input of ``hw`` (its own margin added): the fastest of
    ``runs`` after one warm-up run (first-run allocations and kernel choice)."""
    return _time_run(model, np.random.default_rng(0).random((1, 3, *hw), dtype=np.float32), runs)


def _time_run(model: OnnxStyleModel, x: np.ndarray, runs: int = PROBE_RUNS) -> float:
    model.run(x)  # warm-up: first-run allocations and kernel choice
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        model.run(x)
        best = min(best, time.perf_counter() - t)
    return best


def _cache_key(path: Path, hw: tuple[int, int], threads: int | None) -> str:
    digest = hashlib.sha1(path.read_bytes()).hexdigest()[:16]
    import onnxruntime

    versions = f"ort{onnxruntime.__version__}"
    if openvino_available():
        from importlib.metadata import version

        versions += f"-ov{version('openvino')}"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    machine_key = f"{machine.cpu_name()}|{'+'.join(cpu_flags())}|{cores} cores|{versions}"
    return f"{digest}|{hw[0]}x{hw[1]}|{threads or 0} threads|{machine_key}"


def _read_cache(file: Path) -> dict:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def probe_backends(path: str | os.PathLike, hw: tuple[int, int], threads: int | None = None,
                   cache: Path | None = None, log: Callable[[str], None] | None = None
                   ) -> tuple[str, dict[str, float], dict[str, OnnxStyleModel]]:
    """The faster CPU engine for ``path`` on frames of ``hw`` (network input, margin included).

    Returns (backend, seconds per frame of each engine measured now or cached, the models built
    by the probe so the caller can keep the winner). Cached in ``cache`` (default:
    ``backends.json`` in :func:`user_cache_dir`); an unwritable cache is only not written.
    """
    path = Path(path)
    if not openvino_available():
        return "onnxruntime", {}, {}
    cache = cache or user_cache_dir() / "backends.json"
    key = _cache_key(path, hw, threads)
    known = _read_cache(cache).get(key)
    if known and known.get("backend") in BACKENDS:
        return known["backend"], dict(known.get("seconds", {})), {}
    x = np.random.default_rng(0).random((1, 3, *hw), dtype=np.float32)
    models = {"onnxruntime": load_style_model(path, "onnxruntime", ["CPUExecutionProvider"], threads)}
    try:
        models["openvino"] = load_style_model(path, "openvino", threads=threads)
    except UserError as e:  # a model OpenVINO cannot compile still runs, on onnxruntime
        if log:
            log(f"OpenVINO skipped: {e}")
    seconds = {}
    for b, m in models.items():
        pad, m.border_pad = m.border_pad, 0  # hw already holds the margin
        seconds[b] = _time_run(m, x)
        m.border_pad = pad
    backend = min(seconds, key=seconds.get)
    if log:
        log(f"backend probe for {path.name} at {hw[1]}x{hw[0]}: "
            + ", ".join(f"{b} {s * 1000:.0f} ms" for b, s in seconds.items()) + f"; using {backend}")
    data = _read_cache(cache)
    data[key] = {"backend": backend, "seconds": seconds, "date": time.strftime("%Y-%m-%d")}
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, cache)
    except OSError:
        pass
    return backend, seconds, models
