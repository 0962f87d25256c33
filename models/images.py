"""The one place where images change format.

Convention across package boundaries: float32 NCHW, RGB, values in [0, 1]
(``torch.Tensor`` on the torch side, ``numpy.ndarray`` on the ONNX side).
Files and OpenCV frames (BGR uint8 HWC) are converted here and nowhere else.
This module needs no torch unless a torch conversion is called.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from models.errors import InputFileError

if TYPE_CHECKING:
    import torch

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
# Refuse images larger than this many pixels (decompression bombs); 8K x 8K.
MAX_PIXELS = 8192 * 8192


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as RGB uint8 HWC, or raise InputFileError naming the file.

    Grey, RGBA and 16-bit files are converted to 8-bit RGB (alpha dropped).
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "no such file")
    if path.stat().st_size == 0:
        raise InputFileError(path, "file is empty")
    data = np.fromfile(path, dtype=np.uint8)
    # OpenCV itself refuses images over OPENCV_IO_MAX_IMAGE_PIXELS (2**30 by default).
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputFileError(path, "not a readable image (corrupt, truncated or not an image)")
    if img.shape[0] * img.shape[1] > MAX_PIXELS:
        raise InputFileError(path, f"image is too large ({img.shape[1]}x{img.shape[0]} pixels)")
    if img.dtype == np.uint16:
        img = (img // 257).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def write_rgb(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Write an RGB uint8 HWC image; the format follows the file's suffix."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix or ".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise InputFileError(path, f"cannot write images with suffix {path.suffix!r}")
    tmp = path.with_name(path.name + ".tmp")
    buf.tofile(tmp)
    os.replace(tmp, path)


def resize_max_side(rgb: np.ndarray, max_side: int | None) -> np.ndarray:
    """Shrink so the longer side is at most ``max_side`` (area interpolation); never enlarge."""
    h, w = rgb.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return rgb
    s = max_side / max(h, w)
    return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def rgb_to_nchw(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 HWC -> float32 NCHW [0, 1] with a batch of one."""
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32) / np.float32(255.0)


def nchw_to_rgb(x: np.ndarray) -> np.ndarray:
    """float NCHW [0, 1] (first image of the batch) -> RGB uint8 HWC."""
    img = np.clip(x[0].transpose(1, 2, 0), 0.0, 1.0) * 255.0
    return (img + 0.5).astype(np.uint8)


def bgr_to_nchw(frame: np.ndarray) -> np.ndarray:
    """An OpenCV BGR uint8 frame -> float32 NCHW RGB [0, 1]."""
    return rgb_to_nchw(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))


def nchw_to_bgr(x: np.ndarray) -> np.ndarray:
    """float NCHW RGB [0, 1] -> an OpenCV BGR uint8 frame."""
    return cv2.cvtColor(nchw_to_rgb(x), cv2.COLOR_RGB2BGR)


def rgb_to_tensor(rgb: np.ndarray) -> "torch.Tensor":
    """RGB uint8 HWC -> torch float32 NCHW [0, 1]."""
    import torch

    return torch.from_numpy(rgb_to_nchw(rgb))


def tensor_to_rgb(x: "torch.Tensor") -> np.ndarray:
    """torch float NCHW [0, 1] -> RGB uint8 HWC (first image of the batch)."""
    return nchw_to_rgb(x.detach().float().cpu().numpy())
