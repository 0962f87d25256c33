"""Strength and colour preservation for a stylised image: one implementation for every caller.

The panel, ``python -m training stylize`` and the live runner's style effect all call
:func:`finish_style`, so a given ``strength`` and ``preserve_color`` look the same everywhere.
Images are RGB uint8 HWC (BGR callers swap channels at their edge); no torch.
"""

from __future__ import annotations

import numpy as np

from models.common.errors import UserError

# RGB -> YIQ (NTSC): Y is the luminance, I and Q the colour; the Gatys tab uses the same space.
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                        [0.596, -0.274, -0.322],
                        [0.211, -0.523, 0.312]], np.float32)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ).astype(np.float32)


def check_strength(strength: float) -> float:
    """``strength`` as a float in [0, 1], or one clear error."""
    try:
        value = float(strength)
    except (TypeError, ValueError):
        raise UserError(f"strength must be a number from 0 to 1, got {strength!r}") from None
    if not 0.0 <= value <= 1.0:
        raise UserError(f"strength must be from 0 (the photo) to 1 (full style), got {value:g}")
    return value


def finish_style(styled: np.ndarray, photo: np.ndarray, strength: float = 1.0,
                 preserve_color: bool = False) -> np.ndarray:
    """The stylised image with the photo's colours (``preserve_color``: the style's luminance,
    the photo's chrominance) and mixed with the photo by ``strength`` (0: the photo, 1: the style).

    Both images are RGB uint8 of the same size (:func:`finish_style_bgr` for BGR frames).
    """
    strength = check_strength(strength)
    if styled.shape != photo.shape:
        raise ValueError(f"stylised {styled.shape} and photo {photo.shape} differ in size")
    if strength >= 1.0 and not preserve_color:
        return styled
    if strength <= 0.0:
        return photo.copy()
    out = styled.astype(np.float32)
    src = photo.astype(np.float32)
    if preserve_color:
        y = out @ _RGB_TO_YIQ[0]
        iq = src @ _RGB_TO_YIQ[1:].T
        out = np.concatenate([y[..., None], iq], axis=-1) @ _YIQ_TO_RGB.T
    if strength < 1.0:
        out = strength * out + (1.0 - strength) * src
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def finish_style_bgr(styled: np.ndarray, frame: np.ndarray, strength: float = 1.0,
                     preserve_color: bool = False) -> np.ndarray:
    """:func:`finish_style` for OpenCV's BGR frames (the live runner's format)."""
    if strength >= 1.0 and not preserve_color:
        return styled
    return finish_style(styled[..., ::-1], frame[..., ::-1], strength, preserve_color)[..., ::-1].copy()
