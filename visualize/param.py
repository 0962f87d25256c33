"""Image parametrisations for feature visualisation (the "param" part of Lucid/Lucent).

What we optimise need not be the pixels themselves. A parametrisation is a small module
whose ``parameters()`` the optimiser changes and whose call returns the image, (B, 3, H, W)
RGB in [0, 1] (a sigmoid keeps it in range without clipping, so no gradient is lost at the
bounds):

- :class:`PixelImage`: one free value per pixel and channel (the lecture's version).
- :class:`FourierImage`: the image's 2D spectrum, scaled by 1/f^decay, in a decorrelated
  colour basis (Olah et al., "Feature Visualization", Distill 2017). Gradient steps then
  change low frequencies and natural colour directions as easily as high frequencies, which
  removes most of the high-frequency noise that plain pixel ascent produces.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

# Square root of the colour correlation matrix of ImageNet images (RGB), the constants
# published with Lucid (lucid/optvis/param/color.py, ``color_correlation_svd_sqrt``) and
# reused by Lucent. Its columns map decorrelated channels to RGB.
COLOR_CORRELATION_SQRT = torch.tensor([
    [0.26, 0.09, 0.02],
    [0.27, 0.00, -0.05],
    [0.27, -0.09, 0.03],
])
# Lucid divides by the largest column norm so a unit step in any decorrelated channel is
# at most a unit step in RGB.
_MAX_COLUMN_NORM = float(COLOR_CORRELATION_SQRT.norm(dim=0).max())
# Lucid's empirical scale of the inverse FFT output before the sigmoid ("magic" 4).
_FFT_OUTPUT_SCALE = 4.0


def _batch_hw(shape: Sequence[int]) -> tuple[int, int, int]:
    """(H, W), (3, H, W) or (B, 3, H, W) -> (B, H, W)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 2:
        b, (h, w) = 1, shape
    elif len(shape) == 3 and shape[0] == 3:
        b, h, w = 1, shape[1], shape[2]
    elif len(shape) == 4 and shape[1] == 3:
        b, h, w = shape[0], shape[2], shape[3]
    else:
        raise ValueError(f"image shape must be (H, W), (3, H, W) or (B, 3, H, W), got {shape}")
    if b < 1 or h < 1 or w < 1:
        raise ValueError(f"image shape must be positive, got {shape}")
    return b, h, w


def _randn(shape: Sequence[int], seed: int, std: float, device: torch.device | str | None) -> torch.Tensor:
    """Seeded normal noise drawn on the CPU, so the start is the same on every device."""
    g = torch.Generator().manual_seed(int(seed))
    return (torch.randn(*shape, generator=g) * std).to(device or "cpu")


class PixelImage(nn.Module):
    """Free pixels behind a sigmoid: image = sigmoid(p), p starting as small noise (grey)."""

    def __init__(self, shape: Sequence[int], seed: int = 0, init_std: float = 0.01,
                 device: torch.device | str | None = None):
        super().__init__()
        b, h, w = _batch_hw(shape)
        self.logits = nn.Parameter(_randn((b, 3, h, w), seed, init_std, device))

    def forward(self) -> torch.Tensor:
        return torch.sigmoid(self.logits)


def _rfft2_frequencies(h: int, w: int) -> torch.Tensor:
    """|f| in cycles per pixel for the (h, w // 2 + 1) half-spectrum of a real image."""
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    return torch.sqrt(fx * fx + fy * fy)


def _irfft2(spectrum: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``torch.fft.irfft2(spectrum, s=size, norm="ortho")`` as two 1-D transforms (the same sum).

    Why: the backward of ``irfft2`` is a 2-D ``rfft2``, which on 2 shared CPU cores took
    0.3 ms or, in some processes, 8 ms at 224 px (MKL's threaded 2-D real transform); the 1-D
    transforms took 0.3-0.4 ms together either way.
    """
    return torch.fft.irfft(torch.fft.ifft(spectrum, dim=-2, norm="ortho"), n=size[1], dim=-1, norm="ortho")


def decorrelated_to_rgb(t: torch.Tensor) -> torch.Tensor:
    """Map (B, 3, H, W) from the decorrelated colour basis to RGB (before the sigmoid)."""
    m = (COLOR_CORRELATION_SQRT / _MAX_COLUMN_NORM).to(device=t.device, dtype=t.dtype)
    return torch.einsum("ij,bjhw->bihw", m, t)


class FourierImage(nn.Module):
    """An image parametrised by its spectrum, scaled 1/f^decay_power, optionally decorrelated.

    The parameters are the real and imaginary parts of the half-spectrum (``rfft2``) per
    channel; the image is the orthonormal inverse FFT of spectrum * scale, with
    scale = 1 / max(|f|, 1 / max(H, W))^decay_power, so every frequency starts with about
    the energy it has in natural images. With ``decorrelate`` the three channels are the
    decorrelated colour basis of ImageNet, mapped to RGB before the sigmoid.
    """

    def __init__(self, shape: Sequence[int], seed: int = 0, decay_power: float = 1.0, decorrelate: bool = True,
                 init_std: float = 0.01, device: torch.device | str | None = None):
        super().__init__()
        b, h, w = _batch_hw(shape)
        self.size = (h, w)
        self.decorrelate = decorrelate
        freqs = _rfft2_frequencies(h, w)
        scale = 1.0 / freqs.clamp_min(1.0 / max(h, w)) ** decay_power
        self.register_buffer("scale", scale.to(device or "cpu"), persistent=False)
        self.spectrum = nn.Parameter(_randn((b, 3, *freqs.shape, 2), seed, init_std, device))

    def forward(self) -> torch.Tensor:
        spectrum = torch.view_as_complex(self.spectrum) * self.scale
        t = _irfft2(spectrum, self.size) / _FFT_OUTPUT_SCALE
        if self.decorrelate:
            t = decorrelated_to_rgb(t)
        return torch.sigmoid(t)


def make_param(kind: str, shape: Sequence[int], seed: int = 0, device: torch.device | str | None = None,
               **kwargs) -> nn.Module:
    """``"pixel"`` -> :class:`PixelImage`, ``"fourier"`` -> :class:`FourierImage`."""
    if kind == "pixel":
        return PixelImage(shape, seed=seed, device=device, **kwargs)
    if kind == "fourier":
        return FourierImage(shape, seed=seed, device=device, **kwargs)
    raise ValueError(f"unknown parametrisation {kind!r}; choose 'pixel' or 'fourier'")


__all__ = ["PixelImage", "FourierImage", "make_param", "decorrelated_to_rgb", "COLOR_CORRELATION_SQRT"]
