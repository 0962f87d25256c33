"""Frames between PyAV and OpenCV: YUV <-> BGR with each file's own matrix and range."""

from __future__ import annotations

from fractions import Fraction

import av
import cv2
import numpy as np
from av.video.reformatter import Interpolation

# swscale's defaults darken and tint each RGB <-> YUV round trip (about -2.5 levels, greenish);
# exact rounding and full chroma interpolation keep a round trip unbiased.
CONVERT = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
LIVE_TIME_BASE = Fraction(1, 90_000)  # for sources without their own time base (cameras, folders, the demo)
BT709 = 1  # AVColorSpace of HD video; others (BT.601, unspecified) convert as BT.601, like FFmpeg


def _bgr_to_yuv(kr: float, kb: float, full: bool) -> np.ndarray:
    """The 3x4 matrix from B, G, R (0-255) to Y, Cb, Cr of the given luma weights and range."""
    kg = 1 - kr - kb
    rgb = np.array([[kr, kg, kb],
                    [-kr / (2 - 2 * kb), -kg / (2 - 2 * kb), 0.5],
                    [0.5, -kg / (2 - 2 * kr), -kb / (2 - 2 * kr)]])
    if not full:
        rgb = rgb * np.array([[219], [224], [224]]) / 255
    offset = np.array([[0.0 if full else 16.0], [128.0], [128.0]])
    return np.hstack([rgb[:, ::-1], offset]).astype(np.float32)


def _inverse(m: np.ndarray) -> np.ndarray:
    inv = np.linalg.inv(m[:, :3].astype(np.float64))
    return np.hstack([inv, -inv @ m[:, 3:]]).astype(np.float32)


ENCODE = {full: _bgr_to_yuv(0.299, 0.114, full) for full in (False, True)}  # written as BT.601
DECODE = {(cs, full): _inverse(_bgr_to_yuv(*((0.2126, 0.0722) if cs == BT709 else (0.299, 0.114)), full))
          for cs in (BT709, 0) for full in (False, True)}


def bgr_to_yuv420p(image: np.ndarray, full_range: bool = False) -> av.VideoFrame:
    """A BGR image of even sides as a BT.601 4:2:0 frame, each chroma sample the mean of 2x2 pixels.

    In OpenCV: 2-3x quicker than swscale's accurate mode, which took longer than the encoder
    (OpenCV's own BGR2YUV_I420 keeps one chroma sample of four).
    """
    h, w = image.shape[:2]
    y, cb, cr = cv2.split(cv2.transform(image, ENCODE[full_range]))
    half = (w // 2, h // 2)
    cb, cr = (cv2.resize(c, half, interpolation=cv2.INTER_AREA) for c in (cb, cr))
    planes = np.concatenate([y.ravel(), cb.ravel(), cr.ravel()]).reshape(h * 3 // 2, w)
    return av.VideoFrame.from_ndarray(planes, format="yuvj420p" if full_range else "yuv420p")


def frame_to_bgr(frame: av.VideoFrame) -> np.ndarray:
    """A decoded frame as BGR uint8: 8-bit 4:2:0 of even sides here, with its own matrix and range
    (2-3x quicker than swscale's accurate mode); anything else through swscale."""
    h, w = frame.height, frame.width
    name = frame.format.name
    if name not in ("yuv420p", "yuvj420p") or h % 2 or w % 2:
        return frame.to_ndarray(format="bgr24", interpolation=CONVERT, src_color_range=frame.color_range or None)
    planes = frame.to_ndarray(format=name)  # Y rows, then U and V packed into rows of w
    y = planes[:h]
    u = planes[h:h + h // 4].reshape(h // 2, w // 2)
    v = planes[h + h // 4:].reshape(h // 2, w // 2)
    u, v = (cv2.resize(c, (w, h), interpolation=cv2.INTER_LINEAR) for c in (u, v))
    full = name == "yuvj420p" or frame.color_range == 2
    return cv2.transform(cv2.merge([y, u, v]), DECODE[(BT709 if frame.colorspace == BT709 else 0, full)])
