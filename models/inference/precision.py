"""Reduced precision for the style networks, used only where it keeps the picture.

Three precisions run on the CPU engines:

- ``fp32``: the reference, on every machine.
- ``bf16``: OpenVINO's inference precision hint, offered only on CPUs with AVX-512 BF16 or AMX
  (elsewhere OpenVINO would emulate it or ignore it).
- ``int8``: offered by the probe on CPUs with VNNI or AMX (forced with ``--precision int8``
  elsewhere): a copy of the network with its convolutions quantized (ONNX Runtime's static
  quantization, QDQ, per-channel weights), calibrated on the photos in ``models/zoo/calibration``
  (eight BSDS500 photos, 240 px); instance norms, activations and resizes stay in float. It runs
  on ONNX Runtime and on OpenVINO, which executes the QDQ pairs in int8 where the CPU has VNNI.

A precision is offered only when its output stays within :data:`PSNR_BUDGET` of the fp32 output
on the calibration photos (:func:`within_budget`); the backend probe then times what passed and
keeps the fastest. On the 16-32-64 ``lite`` network int8 gave 26 dB on an AVX2 machine (no VNNI)
and no speed: it fails the budget there and fp32 stays. No torch.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from models.common import machine
from models.common.files import file_digest

PRECISIONS = ("fp32", "bf16", "int8")
# Smallest PSNR (dB, pixels in [0, 1]) of a reduced-precision output against the fp32 output.
PSNR_BUDGET = 35.0
CALIBRATION_DIR = Path(__file__).resolve().parents[1] / "zoo" / "calibration"
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def has_vnni() -> bool:
    """Whether this CPU has int8 dot products (VNNI or AMX), where int8 networks can pay."""
    flags = machine.cpu_flags()
    return any(f in flags for f in VNNI_FLAGS)


def has_bf16() -> bool:
    """Whether this CPU runs bf16 natively (AVX-512 BF16 or AMX)."""
    flags = machine.cpu_flags()
    return any(f in flags for f in BF16_FLAGS)


def calibration_images(side: int = 240) -> list[np.ndarray]:
    """The calibration photos as float32 NCHW RGB [0, 1], longer side ``side``, even sides."""
    import cv2

    out = []
    for path in sorted(CALIBRATION_DIR.glob("*.jpg")):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            continue
        s = side / max(bgr.shape[:2])
        w, h = max(16, round(bgr.shape[1] * s) // 2 * 2), max(16, round(bgr.shape[0] * s) // 2 * 2)
        rgb = cv2.cvtColor(cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        out.append(np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0)
    return out


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of ``a`` against ``b`` (both in [0, 1]), in dB."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def within_budget(reference, candidate, images: list[np.ndarray] | None = None) -> float:
    """The worst PSNR of ``candidate`` against ``reference`` over the calibration photos; both are
    callables ``f(x) -> y`` on float32 NCHW [0, 1]."""
    images = images if images is not None else calibration_images()
    return min(psnr(candidate(x), reference(x)) for x in images)


def int8_path(path: str | os.PathLike) -> Path:
    """Where the int8 copy of the network in ``path`` is kept (the user cache, by the file's digest)."""
    from models.common.paths import user_cache_dir

    digest = file_digest(path, "sha1")[:16]  # SHA-1: the names of the copies cached before stay valid
    # the digest names the file; the stem only helps a reader, so only its portable characters (a
    # name that is not UTF-8 cannot pass through onnx's and onnxruntime's file functions)
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(path).stem)
    return user_cache_dir() / "int8" / f"{stem}-{digest}.onnx"


def int8_model(path: str | os.PathLike) -> Path:
    """The int8 copy of the style network in ``path``, quantized once and cached (a few seconds).

    Only the convolutions are quantized (activations uint8, weights int8 per output channel),
    calibrated on :func:`calibration_images`; the style-weights input of a multi-style network is
    fed a uniform blend during calibration."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from models.common.files import atomic_path

    out = int8_path(path)
    if out.is_file():
        return out
    model = onnx.load(str(path))
    inputs = {i.name: i for i in model.graph.input}
    styles = None
    if "style_weights" in inputs:
        dim = inputs["style_weights"].type.tensor_type.shape.dim[1]
        styles = dim.dim_value or 1

    class Photos(CalibrationDataReader):
        def __init__(self):
            feeds = []
            for x in calibration_images():
                feed = {"image": x}
                if styles:
                    feed["style_weights"] = np.full((1, styles), 1.0 / styles, np.float32)
                feeds.append(feed)
            self._it = iter(feeds)

        def get_next(self):
            return next(self._it, None)

    out.parent.mkdir(parents=True, exist_ok=True)
    # onnx's file functions take only UTF-8 paths, and the cache folder's may not be one: quantize a
    # copy in the system's temporary folder, then move the result into the cache atomically
    with tempfile.TemporaryDirectory(prefix="stylelens-int8-") as work, atomic_path(out) as tmp:
        source, quantized = Path(work) / "source.onnx", Path(work) / "int8.onnx"
        shutil.copyfile(path, source)
        quantize_static(str(source), str(quantized), Photos(), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=["Conv"], activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, per_channel=True)
        shutil.copyfile(quantized, tmp)
    return out
