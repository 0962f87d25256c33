"""Which engine runs a style network on this CPU, and in which precision, chosen by measuring.

Machines differ: on a 2-core AVX2 machine OpenVINO ran the ``lite`` network at 640x480 in
107 ms against onnxruntime's 147-196 ms; elsewhere it may be the other way round. So a short
probe at start-up times the candidates on a frame of the size that will be processed, and the
answer is cached per model file, machine and size under the user's cache folder. A candidate is
an engine (onnxruntime, openvino) and a precision (:mod:`models.inference.precision`): fp32
always; bf16 on OpenVINO where the CPU has AVX-512 BF16 or AMX; int8 on both; a reduced precision
only when its output stays within the PSNR budget of fp32 on the calibration photos. Its name is
the engine, with ``-bf16`` or ``-int8`` after it when not fp32 (``openvino-bf16``). fp32 on both
engines gives the same image within 1e-3. CUDA stays with onnxruntime-gpu. No torch import.
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
from models.inference.precision import PRECISIONS, PSNR_BUDGET, has_bf16, has_vnni, int8_model, within_budget
from models.common.paths import user_cache_dir

BACKENDS = ("onnxruntime", "openvino")
CHOICES = ("auto", *BACKENDS)
PRECISION_CHOICES = ("auto", "fp32", "bf16", "int8")
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
    OpenVINO's CPU device. ``streams`` frames may run at once, each from its own thread.

    The network is compiled with its upsampling decoder rewritten (:mod:`models.inference.
    openvino_graph`, exact and faster) for inputs whose sides are multiples of
    :attr:`multiple`; other sizes run the graph as exported, compiled when first needed.
    ``rewrite=False`` runs the exported graph at every size (benchmarks compare the two)."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None, streams: int = 1,
                 precision: str = "fp32", rewrite: bool = True):
        import openvino as ov

        from models.inference.openvino_graph import exact_multiple, upsampling_as_transposed_conv

        config: dict[str, object] = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32"}
        if streams > 1:
            config.update(PERFORMANCE_HINT="THROUGHPUT", NUM_STREAMS=streams)
        else:
            config["PERFORMANCE_HINT"] = "LATENCY"
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self._config, self._core = config, ov.Core()
        try:
            self._exported = self._core.read_model(str(path))
            model, rewritten = self._exported, 0
            if rewrite:
                try:
                    model = self._exported.clone()
                    rewritten = upsampling_as_transposed_conv(model)
                except Exception:  # a graph the rewrite cannot handle runs as exported
                    model, rewritten = self._exported, 0
            self.compiled = self._core.compile_model(model, "CPU", config)
        except Exception as e:
            raise InputFileError(path, f"OpenVINO cannot run it ({first_line(e)})") from None
        self.multiple = exact_multiple(rewritten)
        self._as_exported = self.compiled if not rewritten else None  # compiled when a size needs it
        self._lock = threading.Lock()
        self._local = threading.local()

    def _graph_for(self, hw: tuple[int, int]):
        """The compiled graph that is exact for a style network's input of ``hw``."""
        if hw[0] % self.multiple == 0 and hw[1] % self.multiple == 0:
            return self.compiled
        return self._exported_graph()

    def _exported_graph(self):
        """The graph as exported, compiled the first time it is needed."""
        with self._lock:
            if self._as_exported is None:
                self._as_exported = self._core.compile_model(self._exported, "CPU", self._config)
        return self._as_exported

    def _infer(self, compiled, feeds: dict[str, np.ndarray]):
        # one request per thread and graph: requests are not shared between threads
        requests = self._local.__dict__.setdefault("requests", {})
        request = requests.get(id(compiled))
        if request is None:
            request = requests[id(compiled)] = compiled.create_infer_request()
        return request.infer(feeds)

    def run(self, names: Sequence[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        compiled = self.compiled if self.multiple == 1 else self._graph_for(feeds["image"].shape[-2:])
        out = self._infer(compiled, feeds)
        if compiled is not self._as_exported and out[names[0]].shape[-2:] != feeds["image"].shape[-2:]:
            # a style network gives back its input's size: this one's upsampling was not the decoder's
            self.multiple = 1
            self.compiled = self._exported_graph()
            out = self._infer(self.compiled, feeds)
        return [np.array(out[name]) for name in names]


def split_backend(name: str) -> tuple[str, str]:
    """``openvino-bf16`` -> (``openvino``, ``bf16``); a bare engine name is fp32."""
    engine, _, precision = name.partition("-")
    precision = precision or "fp32"
    if engine not in BACKENDS or precision not in PRECISIONS or (precision == "bf16" and engine != "openvino"):
        raise UserError(f"unknown backend {name!r}; choose one of {list(CHOICES)} (with -bf16 on openvino, "
                        "-int8 on either)")
    return engine, precision


def load_style_model(path: str | os.PathLike, backend: str = "onnxruntime", providers: Sequence[str] | None = None,
                     threads: int | None = None, streams: int = 1) -> OnnxStyleModel:
    """An :class:`OnnxStyleModel` whose network runs on ``backend``: an engine (onnxruntime or
    openvino) and a precision (``openvino-bf16``, ``onnxruntime-int8``; fp32 when none is named).

    The onnxruntime session of the fp32 file always opens first: it checks the file and reads its
    metadata; the int8 copy (:func:`models.inference.precision.int8_model`) is made once and cached.
    """
    engine, precision = split_backend(backend)
    model = OnnxStyleModel(path, providers=providers, threads=threads)
    model.backend = "onnxruntime"
    source = int8_model(path) if precision == "int8" else path
    if engine == "openvino":
        if not openvino_available():
            raise UserError("--backend openvino needs the openvino package: pip install openvino")
        # ``threads`` is per frame, as for onnxruntime; OpenVINO counts them for all streams together
        model.session = OpenVinoSession(source, threads * streams if threads else None, streams, precision)
    elif precision == "int8":
        model.session = OnnxStyleModel(source, providers=["CPUExecutionProvider"], threads=threads).session
    model.backend = backend
    return model


def time_model(model: OnnxStyleModel, hw: tuple[int, int], runs: int = PROBE_RUNS, typical: bool = False) -> float:
    """Seconds per frame of ``model`` on an input of ``hw`` (its own margin added) over ``runs``
    after one warm-up run (first-run allocations and kernel choice): the fastest, which ranks
    engines, or with ``typical`` the median, which predicts what a frame will take."""
    return _time_run(model, np.random.default_rng(0).random((1, 3, *hw), dtype=np.float32), runs, typical)


def _time_run(model: OnnxStyleModel, x: np.ndarray, runs: int = PROBE_RUNS, typical: bool = False) -> float:
    model.run(x)  # warm-up: first-run allocations and kernel choice
    seconds = []
    for _ in range(runs):
        t = time.perf_counter()
        model.run(x)
        seconds.append(time.perf_counter() - t)
    return float(np.median(seconds)) if typical else min(seconds)


def _cache_key(path: Path, hw: tuple[int, int], threads: int | None) -> str:
    digest = hashlib.sha1(path.read_bytes()).hexdigest()[:16]
    import onnxruntime

    versions = f"ort{onnxruntime.__version__}"
    if openvino_available():
        from importlib.metadata import version

        from models.inference.openvino_graph import VERSION

        versions += f"-ov{version('openvino')}-graph{VERSION}"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    machine_key = f"{machine.cpu_name()}|{'+'.join(cpu_flags())}|{cores} cores|{versions}"
    return f"{digest}|{hw[0]}x{hw[1]}|{threads or 0} threads|{machine_key}"


def _read_cache(file: Path) -> dict:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def candidates(precision: str = "auto", engine: str | None = None) -> list[str]:
    """The backends the probe may try here for a ``--precision`` choice (and an ``engine`` the user
    named), fp32 ones first."""
    if precision not in PRECISION_CHOICES:
        raise UserError(f"unknown precision {precision!r}; choose one of {list(PRECISION_CHOICES)}")
    engines = [b for b in BACKENDS if (b == "onnxruntime" or openvino_available()) and engine in (None, b)]
    out = list(engines)  # fp32 (the first is the reference of the budget)
    if precision in ("auto", "bf16") and "openvino" in engines and (has_bf16() or precision == "bf16"):
        out.append("openvino-bf16")
    if precision == "int8" or (precision == "auto" and has_vnni()):
        out += [f"{e}-int8" for e in engines]
    return out


def probe_backends(path: str | os.PathLike, hw: tuple[int, int], threads: int | None = None,
                   cache: Path | None = None, log: Callable[[str], None] | None = None, precision: str = "auto",
                   engine: str | None = None) -> tuple[str, dict[str, float], dict[str, OnnxStyleModel]]:
    """The fastest backend for ``path`` on frames of ``hw`` (network input, margin included) among
    :func:`candidates`, a reduced precision only within the PSNR budget of fp32.

    Returns (backend, seconds per frame of each backend measured now or cached, the models built
    by the probe so the caller can keep the winner). Cached in ``cache`` (default:
    ``backends.json`` in :func:`user_cache_dir`); an unwritable cache is only not written.
    """
    path = Path(path)
    names = candidates(precision, engine)
    if len(names) == 1:
        return names[0], {}, {}
    cache = cache or user_cache_dir() / "backends.json"
    key = _cache_key(path, hw, threads) + f"|{precision}|{engine or 'any'}"
    known = _read_cache(cache).get(key)
    if known and known.get("backend") in names:
        return known["backend"], dict(known.get("seconds", {})), {}
    x = np.random.default_rng(0).random((1, 3, *hw), dtype=np.float32)
    models, quality = _within_budget(path, names, threads, precision, log)
    seconds = {}
    for b, m in models.items():
        pad, m.border_pad = m.border_pad, 0  # hw already holds the margin
        seconds[b] = _time_run(m, x)
        m.border_pad = pad
    backend = min(seconds, key=seconds.get)
    if log:
        log(f"backend probe for {path.name} at {hw[1]}x{hw[0]}: "
            + ", ".join(f"{b} {s * 1000:.0f} ms" for b, s in seconds.items())
            + "".join(f"; {b} {q:.1f} dB{'' if q >= PSNR_BUDGET else ' (under the budget)'}" for b, q in quality.items())
            + f"; using {backend}")
    data = _read_cache(cache)
    data[key] = {"backend": backend, "seconds": seconds, "psnr": quality, "date": time.strftime("%Y-%m-%d")}
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, cache)
    except OSError:
        pass
    return backend, seconds, models


def _within_budget(path: Path, names: list[str], threads: int | None, precision: str,
                   log: Callable[[str], None] | None) -> tuple[dict[str, OnnxStyleModel], dict[str, float]]:
    """The candidates that load and, for a reduced precision, keep the fp32 picture (PSNR budget on the
    calibration photos). A forced precision leaves fp32 out unless nothing else passes."""
    models: dict[str, OnnxStyleModel] = {}
    quality: dict[str, float] = {}
    reference = None
    for name in names:
        try:
            m = load_style_model(path, name, ["CPUExecutionProvider"], threads)
        except UserError as e:  # a model an engine cannot compile still runs on the other
            if log:
                log(f"{name} skipped: {e}")
            continue
        if name.endswith(("-bf16", "-int8")):
            if reference is None:
                continue
            quality[name] = within_budget(_plain(reference), _plain(m))
            if quality[name] >= PSNR_BUDGET:
                models[name] = m
        else:
            reference = reference or m
            if precision in ("auto", "fp32"):
                models[name] = m
    if not models and reference is not None:  # the forced precision failed its budget: fp32 it is
        if log:
            log(f"{precision} is under the {PSNR_BUDGET:g} dB budget for {path.name}; running fp32")
        models[reference.backend] = reference
    return models, quality


def _plain(model: OnnxStyleModel) -> Callable[[np.ndarray], np.ndarray]:
    """``model`` on one image with its first style, without its margin (the budget compares networks)."""
    def run(x: np.ndarray) -> np.ndarray:
        pad, model.border_pad = model.border_pad, 0
        try:
            return model.run(x)
        finally:
            model.border_pad = pad
    return run
