"""Stylise a large image in overlapping tiles with blended seams, in bounded memory.

Why: a style network's activations at full resolution need about 0.5-0.7 GB per megapixel
(a 12-megapixel photo took 8.2 GB); a phone photo is 12-50 MP. Tiles of ``tile`` pixels
are run one at a time and blended where they overlap, so the memory beyond the uint8 input
and output is one tile's network plus one band of tiles in float32 (``tile`` rows by the
image width).

Blending: along each axis every tile has a weight that is 0 for the first ``margin``
pixels of an interior edge (where the network paints its edge band), rises linearly to 1
across the rest of the overlap, and the weights are normalised to sum to 1 at every pixel.
The weight of a tile is the product of its row and column weights, so the normalisation is
separable and no full-size weight buffer is needed.

This module only cuts and blends: ``run`` must normalise every tile alike.
``models.inference.onnx_style`` runs the tiles with instance-norm statistics taken once from a copy of
the whole image (``models.inference.onnx_norms``); normalised by themselves, neighbouring tiles of a
photo disagreed by 25-38 grey levels where they overlap, against 4-5 with shared statistics.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from models.common.images import nchw_to_rgb, rgb_to_nchw

TILE = 512  # side of a tile, in pixels
STATS_SIDE = 1024  # longer side of the copy whose instance-norm statistics every tile uses
OVERLAP = 128  # pixels shared by neighbouring tiles
MARGIN = 32  # pixels at a tile's interior edge that get no weight (the network's edge band)


def spans(length: int, tile: int = TILE, overlap: int = OVERLAP) -> list[tuple[int, int]]:
    """Tile spans ``[start, end)`` along one axis: as few as give neighbours at least ``overlap``
    pixels in common, spread evenly, the first and last flush with the borders."""
    if tile <= overlap:
        raise ValueError(f"tile size {tile} must be larger than the overlap {overlap}")
    if length <= tile:
        return [(0, length)]
    n = math.ceil((length - overlap) / (tile - overlap))
    starts = [round(i * (length - tile) / (n - 1)) for i in range(n)]
    return [(s, s + tile) for s in starts]


def weights(parts: list[tuple[int, int]], margin: int = MARGIN) -> list[np.ndarray]:
    """Each span's blending weights along the axis, normalised to sum to 1 at every position."""
    def ramp(dist: np.ndarray, shared: int) -> np.ndarray:
        m = min(margin, max(0, (shared - 1) // 2))  # a small overlap keeps a ramp of at least 1 px
        return np.clip((dist - m) / max(shared - 2 * m, 1), 0, 1)

    raw = []
    for i, (s, e) in enumerate(parts):
        t = np.arange(s, e, dtype=np.float64) + 0.5
        w = np.ones(e - s)
        if i > 0:  # shared with the previous span; an image border keeps full weight to the edge
            w = np.minimum(w, ramp(t - s, parts[i - 1][1] - s))
        if i + 1 < len(parts):
            w = np.minimum(w, ramp(e - t, e - parts[i + 1][0]))
        raw.append(w)
    total = np.zeros(parts[-1][1] - parts[0][0])
    for (s, e), w in zip(parts, raw):
        total[s:e] += w
    if not (total > 0).all():  # cannot happen for spans from spans(); a guard against silent black pixels
        raise AssertionError("tile weights leave pixels uncovered")
    return [(w / total[s:e]).astype(np.float32) for (s, e), w in zip(parts, raw)]


def stylize_tiled(run: Callable[[np.ndarray], np.ndarray], rgb: np.ndarray, tile: int = TILE,
                  overlap: int = OVERLAP, margin: int = MARGIN,
                  progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """``run`` (float32 NCHW [0, 1] -> the same shape) over ``rgb`` (uint8 HWC) in tiles; uint8 HWC out.

    An image no larger than ``tile`` either way is run whole. ``progress(done, total)`` is told of
    each tile run."""
    h, w = rgb.shape[:2]
    if h <= tile and w <= tile:
        return nchw_to_rgb(run(rgb_to_nchw(rgb)))
    rows, cols = spans(h, tile, overlap), spans(w, tile, overlap)
    wy, wx = weights(rows, margin), weights(cols, margin)
    total, done_tiles = len(rows) * len(cols), 0
    out = np.empty((h, w, 3), np.uint8)
    carry = np.zeros((3, 0, w), np.float32)  # rows from ys on, shared with the band before
    for k, (ys, ye) in enumerate(rows):
        band = np.zeros((3, ye - ys, w), np.float32)
        band[:, :carry.shape[1]] = carry
        for (xs, xe), cw in zip(cols, wx):
            styled = run(rgb_to_nchw(rgb[ys:ye, xs:xe]))[0]
            band[:, :, xs:xe] += styled * wy[k][None, :, None] * cw[None, None, :]
            done_tiles += 1
            if progress is not None:
                progress(done_tiles, total)
        done = rows[k + 1][0] - ys if k + 1 < len(rows) else ye - ys  # rows no later tile touches
        out[ys:ys + done] = nchw_to_rgb(band[None, :, :done])
        carry = band[:, done:].copy()
    return out
