"""The one place where images change format.

Convention across package boundaries: float32 NCHW, RGB, values in [0, 1]
(``torch.Tensor`` on the torch side, ``numpy.ndarray`` on the ONNX side).
Files and OpenCV frames (BGR uint8 HWC) are converted here and nowhere else.
This module needs no torch unless a torch conversion is called.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from models.common.errors import InputFileError, first_line
from models.common.files import atomic_path, check_input_file

if TYPE_CHECKING:
    import torch

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
# Refuse images larger than this many pixels (decompression bombs); 8K x 8K.
MAX_PIXELS = 8192 * 8192


_stderr_lock = threading.Lock()


@contextmanager
def _native_stderr(captured: list[str]) -> Iterator[None]:
    """Take the C libraries' own stderr lines during a decode into ``captured``.

    libpng prints ``libpng error: ...`` and libjpeg ``Corrupt JPEG data: ...`` straight to file
    descriptor 2, whatever OpenCV's log level: the user does not see them, and the caller reads
    them (a warning about corrupt data is an error at the door) and reports in one line.
    """
    import tempfile

    with _stderr_lock:
        try:
            saved = os.dup(2)
        except OSError:  # no stderr at all
            yield
            return
        try:
            with tempfile.TemporaryFile() as sink:
                os.dup2(sink.fileno(), 2)
                try:
                    yield
                finally:
                    os.dup2(saved, 2)
                    sink.seek(0)
                    captured.extend(sink.read(1 << 16).decode("utf-8", "replace").splitlines())
        finally:
            os.close(saved)


# Decoder messages that mean the picture is damaged (libjpeg's "Corrupt JPEG data: ...", "Premature end
# of JPEG file", libpng's errors and CRC errors), not those about metadata (an ICC profile). Bytes after a
# JPEG's end marker are not read, and not reported.
_DAMAGE = re.compile(r"corrupt|premature end|libpng error|crc error|invalid|truncat|bad huffman|not enough data",
                     re.IGNORECASE)
_HARMLESS = re.compile(r"iccp|profile", re.IGNORECASE)


def _damage(lines: list[str]) -> str | None:
    """The first decoder message of ``lines`` that says the data is damaged, or None."""
    for line in lines:
        if _DAMAGE.search(line) and not _HARMLESS.search(line):
            return line.strip()
    return None


_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def _header(path: Path) -> tuple[int, int, str] | None:
    """(width, height, PIL format) from the file's header (no pixel data read); None if PIL cannot tell.

    Checked before decoding so that a decompression bomb (a few hundred kB of PNG that
    decodes to gigabytes) is refused in milliseconds instead of exhausting memory.
    """
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as im:
                return im.size[0], im.size[1], im.format or ""
        except Image.DecompressionBombError as e:  # PIL's own, higher limit; its message holds the size
            found = re.search(r"\((\d+) pixels\)", str(e))
            pixels = int(found.group(1)) if found else MAX_PIXELS + 1
            return pixels, 1, ""
        except Exception:  # not identified by PIL: leave the verdict to OpenCV
            return None


def read_rgb(path: str | os.PathLike, max_side: int | None = None) -> np.ndarray:
    """Read an image file as RGB uint8 HWC, or raise InputFileError naming the file.

    Grey, RGBA, 16-bit and CMYK files are converted to 8-bit RGB (alpha dropped), and the
    EXIF orientation of photos is applied. A decoder warning about corrupt data (libjpeg's
    "Corrupt JPEG data", libpng's CRC errors) refuses the file: a damaged picture is never
    used as if it were whole. Images over :data:`MAX_PIXELS` are refused from their header,
    before any decoding, unless ``max_side`` (the longer side the caller will shrink the
    image to) lets a JPEG be decoded at 1/2, 1/4 or 1/8 of its size under the limit: the size
    guard does not stop a shrink the user asked for. ``max_side`` does not resize; the caller does.
    """
    path = check_input_file(path, "an image file")
    if path.stat().st_size == 0:
        raise InputFileError(path, "file is empty")
    header = _header(path)
    flags = cv2.IMREAD_COLOR  # 8-bit BGR for every input, with the EXIF orientation applied
    if header is not None and header[0] * header[1] > MAX_PIXELS:
        w, h, fmt = header
        pixels = w * h
        factor = next((f for f in (2, 4, 8) if pixels / (f * f) <= MAX_PIXELS and max(w, h) / f >= max_side),
                      None) if max_side and fmt in ("JPEG", "MPO") else None
        if factor is None:
            how = ("; --max-size shrinks only JPEG photos while reading them" if max_side and fmt not in ("JPEG", "MPO")
                   else "" if max_side else "; --max-size shrinks a JPEG while reading it")
            raise InputFileError(path, f"image is too large ({pixels / 1e6:.0f} megapixels; the limit is "
                                       f"{MAX_PIXELS / 1e6:.0f}{how})")
        flags = _REDUCED[factor]
    data = np.fromfile(path, dtype=np.uint8)
    said: list[str] = []
    try:
        with _native_stderr(said):
            img = cv2.imdecode(data, flags)
    except cv2.error as e:
        raise InputFileError(path, f"not a readable image ({first_line(e)})") from None
    if img is None:
        raise InputFileError(path, "not a readable image (corrupt, truncated or not an image)")
    damage = _damage(said)
    if damage:
        raise InputFileError(path, f"not a readable image: its data is damaged ({damage})")
    if img.shape[0] * img.shape[1] > MAX_PIXELS:  # a format PIL could not size
        raise InputFileError(path, f"image is too large ({img.shape[1]}x{img.shape[0]} pixels)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_bgr(path: str | os.PathLike) -> np.ndarray:
    """As :func:`read_rgb`, in OpenCV's BGR order (for frames)."""
    return cv2.cvtColor(read_rgb(path), cv2.COLOR_RGB2BGR)


def encode_rgb(path: str | os.PathLike, rgb: np.ndarray, jpeg_quality: int | None = None) -> np.ndarray:
    """The bytes of an RGB uint8 HWC image in the format of ``path``'s suffix (nothing is written)."""
    path = Path(path)
    check_image_suffix(path)
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality, cv2.IMWRITE_JPEG_OPTIMIZE, 1] if jpeg_quality else []
    ok, buf = cv2.imencode(path.suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise InputFileError(path, "the image could not be encoded")
    return buf


def write_rgb(path: str | os.PathLike, rgb: np.ndarray, encoded: np.ndarray | None = None) -> None:
    """Write an RGB uint8 HWC image atomically; the format follows the file's suffix.

    ``encoded`` gives bytes already made by :func:`encode_rgb` (e.g. to choose a JPEG quality).
    """
    buf = encode_rgb(path, rgb) if encoded is None else encoded
    with atomic_path(path) as tmp:
        buf.tofile(tmp)


def check_image_suffix(path: str | os.PathLike) -> None:
    """Raise InputFileError unless OpenCV can write images named like ``path``."""
    suffix = Path(path).suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise InputFileError(path, f"cannot write images with suffix {suffix!r}; use one of {', '.join(IMAGE_SUFFIXES)}")


def resize_max_side(rgb: np.ndarray, max_side: int | None, enlarge: bool = False, min_side: int = 1) -> np.ndarray:
    """Scale so the longer side is ``max_side`` (at most, unless ``enlarge``); no side under ``min_side``.

    Area interpolation when shrinking, bilinear when enlarging. Works for any channel order.
    """
    h, w = rgb.shape[:2]
    if not max_side or max(h, w) == max_side or (max(h, w) < max_side and not enlarge):
        return rgb
    s = max_side / max(h, w)
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    return cv2.resize(rgb, (max(min_side, round(w * s)), max(min_side, round(h * s))), interpolation=interp)


def letterbox(image: np.ndarray, size: tuple[int, int], fill: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """``image`` scaled to fit ``size`` (w, h) with its aspect kept, centred on ``fill`` (black by
    default: a video frame of another size; the sheets under scripts/ use their page colour).
    Interpolation as :func:`resize_max_side`; returned as it is when it already has that size."""
    w, h = size
    ih, iw = image.shape[:2]
    if (iw, ih) == (w, h):
        return image
    scale = min(w / iw, h / ih)
    nw, nh = max(1, round(iw * scale)), max(1, round(ih * scale))
    scaled = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out = np.empty((h, w, 3), np.uint8)
    out[:] = fill
    x, y = (w - nw) // 2, (h - nh) // 2
    out[y:y + nh, x:x + nw] = scaled
    return out


_FONT = cv2.FONT_HERSHEY_SIMPLEX


def draw_text(canvas: np.ndarray, text: str, box: tuple[int, int, int, int], scale: float,
              colour: tuple[int, int, int], align: str = "center", thickness: int = 1) -> None:
    """``text`` drawn in ``box`` (x, y, w, h) of a uint8 image (in place), vertically centred,
    centred or at the left (``align``), shrunk from OpenCV's font ``scale`` until it fits the box;
    what still does not fit is clipped to the box. The one way labels are written on sheets."""
    x, y, w, h = box
    pad = max(2, h // 6)
    while scale > 0.3:
        (tw, th), base = cv2.getTextSize(text, _FONT, scale, thickness)
        if tw <= w - 2 * pad and th + base <= h:
            break
        scale *= 0.92
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, thickness)
    tx = x + pad if align == "left" else x + max(pad, (w - tw) // 2)
    ty = y + (h + th) // 2
    region = canvas[y:y + h, x:x + w]  # drawing on a view clips to the box
    cv2.putText(region, text, (tx - x, ty - y), _FONT, scale, colour, thickness, cv2.LINE_AA)


def resize_to(image: np.ndarray, like: np.ndarray) -> np.ndarray:
    """``image`` resized (bilinear) to the height and width of ``like``; unchanged if they match."""
    h, w = like.shape[:2]
    return image if image.shape[:2] == (h, w) else cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)


def overlay_heat(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5, bgr: bool = False,
                 colormap: int = cv2.COLORMAP_JET) -> np.ndarray:
    """A heat map (H', W') in [0, 1] drawn over a uint8 image of 3 channels, resized to fit.

    ``bgr`` says the image is an OpenCV BGR frame; otherwise RGB. Returns the same order.
    """
    heat8 = (255 * np.clip(heat.astype(np.float32), 0, 1)).astype(np.uint8)
    colour = cv2.applyColorMap(resize_to(heat8, image), colormap)  # BGR
    if not bgr:
        colour = cv2.cvtColor(colour, cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(image, 1 - alpha, colour, alpha, 0)


def colorize(heat: np.ndarray, colormap: int = cv2.COLORMAP_VIRIDIS) -> np.ndarray:
    """A map (H, W) in [0, 1] as an RGB uint8 image in a colour map."""
    heat8 = (255 * np.clip(heat.astype(np.float32), 0, 1)).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(heat8, colormap), cv2.COLOR_BGR2RGB)


def center_square(rgb: np.ndarray, size: int) -> np.ndarray:
    """The largest centred square of the image, resized to ``size`` x ``size`` (for galleries)."""
    h, w = rgb.shape[:2]
    side = min(h, w)
    y, x = (h - side) // 2, (w - side) // 2
    crop = rgb[y:y + side, x:x + side]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interp)


def to_bgr(frame: np.ndarray) -> np.ndarray:
    """Any 8-bit frame (grey, grey with a channel axis, BGRA) as 3-channel BGR."""
    if frame.ndim == 2 or frame.shape[2] == 1:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


def rgb_to_nchw(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 HWC -> float32 NCHW [0, 1] with a batch of one."""
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32) / np.float32(255.0)


def _planes_to_uint8(planes: list[np.ndarray]) -> np.ndarray:
    """Interleave float [0, 1] planes into uint8 HWC, clipped and rounded.

    OpenCV does it in one pass each for merge, clip and scale: 0.2 ms against 2.4 ms for
    numpy's transpose, clip, multiply and cast on a 640x480 frame, every frame of the live path.
    """
    merged = cv2.merge([np.asarray(p, dtype=np.float32) for p in planes])
    # Clip first: convertScaleAbs mirrors negatives and turns +inf (and values past ~8e6) to 0.
    np.clip(merged, 0.0, 1.0, out=merged)
    return cv2.convertScaleAbs(merged, alpha=255.0)  # x 255, round half to even, to uint8


def nchw_to_rgb(x: np.ndarray) -> np.ndarray:
    """float NCHW [0, 1] (first image of the batch) -> RGB uint8 HWC."""
    return _planes_to_uint8([x[0, 0], x[0, 1], x[0, 2]])


def bgr_to_nchw(frame: np.ndarray) -> np.ndarray:
    """An OpenCV BGR uint8 frame -> float32 NCHW RGB [0, 1]."""
    return rgb_to_nchw(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))


def nchw_to_bgr(x: np.ndarray) -> np.ndarray:
    """float NCHW RGB [0, 1] -> an OpenCV BGR uint8 frame."""
    return _planes_to_uint8([x[0, 2], x[0, 1], x[0, 0]])


def rgb_to_tensor(rgb: np.ndarray) -> "torch.Tensor":
    """RGB uint8 HWC -> torch float32 NCHW [0, 1]."""
    import torch

    return torch.from_numpy(rgb_to_nchw(rgb))


def tensor_to_rgb(x: "torch.Tensor") -> np.ndarray:
    """torch float NCHW [0, 1] -> RGB uint8 HWC (first image of the batch)."""
    return nchw_to_rgb(x.detach().float().cpu().numpy())
