"""Run an exported style network with onnxruntime; no torch needed.

:class:`OnnxStyleModel` checks the file at the door (one clear error naming it),
reads the style names from its metadata, and turns a blend such as
``{"starry_night": 0.7, "the_scream": 0.3}`` into the model's style-weight input.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from models.common.errors import InputFileError, NotEnoughMemoryError, UserError, first_line
from models.common.files import check_input_file
from models.common.images import nchw_to_rgb, rgb_to_nchw
from models.inference.tiles import MARGIN, OVERLAP, STATS_SIDE, TILE, stylize_tiled

# Metadata keys written by training.export and read here.
META_FORMAT = "stylelens.format"
META_STYLES = "stylelens.styles"
META_ARCH = "stylelens.arch"
META_TRAINING = "stylelens.training"
# Pixels of mirrored border added around every input and cropped from the output. Networks
# with zero padding can learn to paint a band along the image edge (The Scream: an orange
# stripe about 25 px wide); the mirrored margin moves it outside the picture.
META_BORDER_PAD = "stylelens.border_pad"
TENSOR_FORMAT = "float32 NCHW RGB [0,1]"
MIN_SIDE = 16  # smaller images are padded to this side and cropped back


def _nvidia_driver_present() -> bool:
    """True when the NVIDIA driver library loads (onnxruntime-gpu lists CUDA even without a GPU)."""
    import ctypes

    for name in ("libcuda.so.1", "nvcuda.dll"):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def default_providers() -> list[str]:
    """CUDA when onnxruntime has it and an NVIDIA driver is present, else the CPU."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers() and _nvidia_driver_present():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def providers_for(device: str) -> list[str] | None:
    """onnxruntime providers for a ``--provider`` choice: ``auto`` (None: decide here), ``cpu`` or ``cuda``."""
    choices = {"auto": None, "cpu": ["CPUExecutionProvider"],
               "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"]}
    if device not in choices:
        raise UserError(f"unknown provider {device!r}; choose one of {sorted(choices)}")
    return choices[device]


def _preload_cuda_libraries() -> None:
    """Load CUDA and cuDNN from the nvidia-* wheels (which torch brings) for the CUDA provider."""
    import contextlib
    import io

    import onnxruntime as ort

    if hasattr(ort, "preload_dlls") and _nvidia_driver_present():
        try:  # it prints a line per library it misses; the session's fallback warning says it once
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                ort.preload_dlls()
        except Exception:
            pass


def parse_blend(items: Sequence[str]) -> dict[str, float]:
    """``["name=0.7", "other=0.3"]`` -> ``{"name": 0.7, "other": 0.3}``; a bare name weighs 1."""
    blend: dict[str, float] = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            blend[name.strip()] = float(value) if value else 1.0
        except ValueError:
            raise UserError(f"--blend {item!r}: expected NAME=WEIGHT with a number as weight") from None
    return blend


def _session_options(threads: int | None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 4  # fatal only: an error also comes back as the exception, which we word
    if threads:
        so.intra_op_num_threads = threads
    return so


def model_source(path: str | os.PathLike) -> str | bytes:
    """What to give ONNX Runtime for the model in ``path``: its path, or the file's bytes when the path
    is not valid UTF-8 (a name from an old Latin-1 file system, ``mod\\xe8le.onnx``: Python holds it
    with surrogates, which the engines' C++ bindings cannot take)."""
    text = os.fspath(path)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        try:
            return Path(path).read_bytes()
        except OSError as e:
            raise InputFileError(path, f"cannot read it ({e.strerror or e})") from None


class OnnxStyleModel:
    """An ONNX style network: ``stylize(rgb)`` for images, ``run(nchw)`` for batches."""

    def __init__(self, path: str | os.PathLike, providers: Sequence[str] | None = None,
                 threads: int | None = None):
        import onnxruntime as ort

        ort.set_default_logger_severity(4)  # quiet: a failed optional provider is reported below as a warning
        self.path = Path(path)
        check_input_file(self.path, "a style model (.onnx file)")
        so = _session_options(threads)
        asked = list(providers or default_providers())
        # onnxruntime's CPU wheel has no CUDA provider and warns on its own when asked for it: ask only
        # for what it has, and say once below that the first choice was not usable
        providers = [p for p in asked if p in ort.get_available_providers()] or ["CPUExecutionProvider"]
        if "CUDAExecutionProvider" in providers:
            _preload_cuda_libraries()
        self._threads, self._given_norms = threads, None
        try:
            self.session = ort.InferenceSession(model_source(self.path), so, providers=providers)
        except Exception as e:  # onnxruntime raises several unrelated types for bad files
            raise InputFileError(self.path, f"not a loadable ONNX model ({first_line(e)})") from None
        inputs = {i.name: i for i in self.session.get_inputs()}
        image = inputs.get("image")
        if image is None or len(image.shape) != 4 or image.shape[1] not in (3, "3"):
            raise InputFileError(self.path, "not a style model of this project: expected an input 'image' "
                                            "of shape (batch, 3, height, width)")
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata: dict[str, str] = dict(meta)
        self.conditional = "style_weights" in inputs
        try:
            styles = json.loads(meta.get(META_STYLES, "[]"))
        except json.JSONDecodeError:
            styles = []
        n = inputs["style_weights"].shape[1] if self.conditional else 1
        if not isinstance(n, int):
            n = len(styles)
        self.styles: list[str] = styles if len(styles) == n else [f"style{i}" for i in range(n)]
        try:
            self.border_pad = max(0, int(meta.get(META_BORDER_PAD, "0")))
        except ValueError:
            raise InputFileError(self.path, f"bad {META_BORDER_PAD} metadata {meta[META_BORDER_PAD]!r}") from None
        self.providers = self.session.get_providers()
        if asked[0] not in self.providers:
            warnings.warn(f"{asked[0]} is not usable here (no NVIDIA driver or CUDA libraries); "
                          f"running {self.path.name} on {self.providers[0]}")
        self._check_finite(image.shape)

    def _check_finite(self, shape: Sequence) -> None:
        """Refuse a model whose weights are NaN or infinite: one run on a small grey picture, every style
        weighed in, must give finite values (a NaN weight spreads to the whole output; the picture would
        come out black). About a millisecond; a run that fails for another reason is left to the user's
        own picture to report."""
        h, w = (d if isinstance(d, int) and d > 0 else MIN_SIDE for d in shape[2:])
        weights = np.full((1, len(self.styles)), 1.0 / len(self.styles), np.float32) if self.conditional else None
        try:
            out = self._run(self.session, np.full((1, 3, h, w), 0.5, np.float32), weights)[0]
        except Exception:  # noqa: BLE001 - a fixed input size, or a graph that needs more: not this check's business
            return
        if not np.isfinite(out).all():
            raise InputFileError(self.path, "its weights are NaN or infinite (its output is not a number): it "
                                            "cannot be run; export it again from a good checkpoint")

    @property
    def training(self) -> dict:
        """Training settings stored at export (empty for foreign files)."""
        try:
            return json.loads(self.metadata.get(META_TRAINING, "{}"))
        except json.JSONDecodeError:
            return {}

    def style_weights(self, blend: Mapping[str, float] | str | None = None) -> np.ndarray | None:
        """Weights (1, N) for a style name or a blend, normalised to sum 1; None for one-style models.

        No blend means the first style.
        """
        if not self.conditional:
            if isinstance(blend, str):
                blend = {blend: 1.0}
            unknown = [k for k in (blend or {}) if k not in self.styles]
            if unknown:
                raise UserError(f"{self.path}: holds the style {self.styles[0]!r} only, not {unknown}")
            return None
        if blend is None:
            blend = {self.styles[0]: 1.0}
        elif isinstance(blend, str):
            blend = {blend: 1.0}
        unknown = [k for k in blend if k not in self.styles]
        if unknown:
            raise UserError(f"{self.path}: no style {', '.join(map(repr, unknown))}; it holds {self.styles}")
        w = np.zeros((1, len(self.styles)), np.float32)
        for name, value in blend.items():
            w[0, self.styles.index(name)] = value
        if not np.isfinite(w).all() or w.sum() <= 0 or (w < 0).any():
            raise UserError(f"blend weights must be non-negative and not all zero: {dict(blend)}")
        return w / w.sum()

    def run(self, x: np.ndarray, style_weights: np.ndarray | None = None) -> np.ndarray:
        """float32 NCHW [0, 1] in and out; ``style_weights`` (1 or B, N) for conditional models."""
        return self._run(self.session, x, style_weights)[0]

    def _run(self, session, x: np.ndarray, style_weights: np.ndarray | None, extra: Mapping[str, np.ndarray] = {},
             outputs: Sequence[str] = ("stylized",)) -> list[np.ndarray]:
        """``session`` on ``x`` with the model's border pad and small-image padding: the image
        output (cropped back to ``x``'s size) first, then any further ``outputs`` as they are."""
        h, w = x.shape[-2:]
        if h < MIN_SIDE or w < MIN_SIDE:  # padding layers need a few pixels: pad tiny images, crop back
            x = np.pad(x, ((0, 0), (0, 0), (0, max(0, MIN_SIDE - h)), (0, max(0, MIN_SIDE - w))), mode="edge")
            out, *rest = self._run(session, x, style_weights, extra, outputs)
            return [out[..., :h, :w], *rest]
        p = self.border_pad
        if p:
            x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), mode="reflect")
        feeds = {"image": np.ascontiguousarray(x, dtype=np.float32), **extra}
        if self.conditional:
            weights = style_weights if style_weights is not None else self.style_weights()
            feeds["style_weights"] = np.broadcast_to(weights, (x.shape[0], len(self.styles))).astype(np.float32)
        try:
            out, *rest = session.run(list(outputs), feeds)
        except Exception as e:  # onnxruntime's allocation failure is a plain RuntimeException
            if _out_of_memory(e):
                raise NotEnoughMemoryError(f"{self.path.name}: not enough memory for {w}x{h} pixels") from None
            raise
        return [out[..., p:p + h, p:p + w] if p else out, *rest]

    def _derived_session(self, derive):
        import onnx
        import onnxruntime as ort

        graph = onnx.load_from_string(self.path.read_bytes())
        return graph, ort.InferenceSession(derive(graph).SerializeToString(), _session_options(self._threads),
                                           providers=self.providers)

    def _stylize_tiled(self, rgb: np.ndarray, weights: np.ndarray | None, tile: int,
                       progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Tiles normalised alike: instance-norm statistics taken once on a copy of ``rgb`` shrunk
        to ``STATS_SIDE`` pixels (``tile`` if larger), then every tile run with them (:mod:`models.inference.onnx_norms`, :mod:`models.inference.tiles`)."""
        from models.inference import onnx_norms
        from models.common.images import resize_max_side

        # The statistics graph runs once and goes with its memory arena before the tiles start.
        graph, stats_session = self._derived_session(onnx_norms.with_norm_statistics)
        n = onnx_norms.norm_count(graph)
        names = [onnx_norms.MEAN.format(k) for k in range(n)] + [f"norm_var_{k}" for k in range(n)]
        _, *stats = self._run(stats_session, rgb_to_nchw(resize_max_side(rgb, max(tile, STATS_SIDE))), weights,
                              outputs=["stylized", *names])
        del stats_session
        if self._given_norms is None:
            self._given_norms = self._derived_session(onnx_norms.with_given_norms)[1]
        inv = onnx_norms.inverse_std(graph, stats[n:])
        given = {**{onnx_norms.MEAN.format(k): stats[k] for k in range(n)},
                 **{onnx_norms.INV_STD.format(k): inv[k] for k in range(n)}}
        return stylize_tiled(lambda x: self._run(self._given_norms, x, weights, given)[0], rgb, tile=tile,
                             overlap=min(OVERLAP, tile // 4), margin=min(MARGIN, tile // 16), progress=progress)

    def stylize(self, rgb: np.ndarray, blend: Mapping[str, float] | str | None = None,
                tile: int | None = TILE, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """RGB uint8 HWC in, stylised RGB uint8 HWC of the same size out.

        Images longer than ``STATS_SIDE`` (1024 px; the panel's cap) run in overlapping tiles of
        ``tile`` pixels with blended seams, in bounded memory, all normalised with the statistics
        of the whole image (:meth:`_stylize_tiled`); smaller ones, and any with ``tile`` None or
        0, run whole; ``progress(done, total)`` is told of each tile. Raises
        :class:`NotEnoughMemoryError` when it does not fit all the same."""
        weights = self.style_weights(blend)
        h, w = rgb.shape[:2]
        try:
            if not tile or max(h, w) <= max(tile, STATS_SIDE):  # as cheap whole as the statistics pass
                return nchw_to_rgb(self.run(rgb_to_nchw(rgb), weights))
            return self._stylize_tiled(rgb, weights, tile, progress)
        except Exception as e:  # numpy's MemoryError, OpenCV's "Insufficient memory" cv2.error
            if _out_of_memory(e):
                raise NotEnoughMemoryError(f"{self.path.name}: not enough memory for {w}x{h} pixels") from None
            raise


def _out_of_memory(e: BaseException) -> bool:
    """Whether ``e`` is an allocation failure of numpy, OpenCV or onnxruntime (each has its own type)."""
    text = str(e).lower()
    return isinstance(e, MemoryError) or any(k in text for k in ("failed to allocate", "insufficient memory", "bad_alloc"))
