"""Random, differentiable image transforms for feature visualisation (Lucid/Lucent's "transform").

Optimising an image through small random shifts, scalings and rotations asks it to excite
the network robustly, not through one exact pixel pattern; this is the strongest prior for
recognisable class visualisations (Olah et al., Distill 2017). All are torch ops (so the
gradient flows back to the image), keep the batch and channels, and draw their randomness
from an optional ``torch.Generator`` (on the CPU) so a run is reproducible.

Each transform is ``f(x, amount, generator=None) -> x``; :func:`compose` chains them as
``f(x, generator=None)`` callables, e.g. ``compose(partial(jitter, pixels=8), ...)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial

import torch
import torch.nn.functional as F

Transform = Callable[..., torch.Tensor]


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear, antialiased resize of (B, C, H, W) to ``size`` (H, W); unchanged if it already fits.

    Not random: the octaves of DeepDream and the scales of coarse-to-fine synthesis use it.
    """
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def _randint(low: int, high: int, generator: torch.Generator | None) -> int:
    """Uniform integer in [low, high]."""
    return int(torch.randint(low, high + 1, (1,), generator=generator))


def _choice(values: Sequence[float], generator: torch.Generator | None) -> float:
    if len(values) == 0:
        raise ValueError("need at least one value to choose from")
    return float(values[_randint(0, len(values) - 1, generator)])


def jitter(x: torch.Tensor, pixels: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift by a random (dy, dx) in [-pixels, pixels]; the size is kept, the edge reflected in."""
    if pixels < 0:
        raise ValueError(f"jitter pixels must be >= 0, got {pixels}")
    dy, dx = _randint(-pixels, pixels, generator), _randint(-pixels, pixels, generator)
    if dy == 0 and dx == 0:
        return x
    h, w = x.shape[-2:]
    py, px = min(abs(dy), h - 1), min(abs(dx), w - 1)
    padded = F.pad(x, (px, px, py, py), mode="reflect")
    top, left = py - max(-py, min(py, dy)), px - max(-px, min(px, dx))
    return padded[..., top:top + h, left:left + w]


def pad(x: torch.Tensor, pixels: int, mode: str = "reflect", generator: torch.Generator | None = None) -> torch.Tensor:
    """Pad every side by ``pixels`` (not random; here so it composes with the others)."""
    if pixels <= 0:
        return x
    h, w = x.shape[-2:]
    if mode == "reflect" and pixels >= min(h, w):
        mode = "replicate"
    return F.pad(x, (pixels, pixels, pixels, pixels), mode=mode)


def random_scale(x: torch.Tensor, scales: Sequence[float], generator: torch.Generator | None = None) -> torch.Tensor:
    """Resize by a factor chosen from ``scales`` (bilinear); the size changes, as in Lucid."""
    s = _choice(scales, generator)
    if s <= 0:
        raise ValueError(f"scales must be positive, got {s}")
    if s == 1.0:
        return x
    h, w = x.shape[-2:]
    size = (max(1, round(h * s)), max(1, round(w * s)))
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def random_rotate(x: torch.Tensor, degrees: Sequence[float] | float,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Rotate about the centre by an angle chosen from ``degrees`` (a list), or uniform in
    [-degrees, degrees] (a number); same size, reflection at the borders."""
    if isinstance(degrees, (int, float)):
        u = float(torch.rand((1,), generator=generator))
        angle = (2 * u - 1) * float(degrees)
    else:
        angle = _choice(degrees, generator)
    if angle == 0:
        return x
    a = math.radians(angle)
    h, w = x.shape[-2:]
    c, s = math.cos(a), math.sin(a)
    # affine_grid works in normalised [-1, 1] coordinates; correct for the aspect ratio.
    theta = torch.tensor([[c, -s * h / w, 0.0], [s * w / h, c, 0.0]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def compose(*transforms: Transform) -> Callable[..., torch.Tensor]:
    """Chain transforms; the result is called as ``f(x, generator=None)``."""
    def apply(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        for t in transforms:
            x = t(x, generator=generator)
        return x

    return apply


def standard_transforms(jitter_pixels: int = 8, scale: float = 0.1, degrees: float = 10,
                        pad_pixels: int = 12) -> Callable[..., torch.Tensor]:
    """Lucid's robustness set: pad 12, jitter 8, scale 1 +- 0.1 (11 steps), rotate +-10 deg
    (whole degrees), jitter 4."""
    scales = [1 + scale * (i - 5) / 5 for i in range(11)]
    angles = list(range(-int(degrees), int(degrees) + 1))
    return compose(partial(pad, pixels=pad_pixels), partial(jitter, pixels=jitter_pixels),
                   partial(random_scale, scales=scales), partial(random_rotate, degrees=angles),
                   partial(jitter, pixels=max(1, jitter_pixels // 2)))


__all__ = ["jitter", "pad", "random_scale", "random_rotate", "compose", "standard_transforms"]
