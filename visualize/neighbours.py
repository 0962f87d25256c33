"""The last layer as a space of meaning (lecture 12): nearest neighbours and a t-SNE map.

Images whose penultimate features are close look alike to the network even when their
pixels differ (a flipped or brightened copy); neighbours in raw pixel space are shown
beside them for contrast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from models.backbones import Backbone


def _check_images(images: torch.Tensor, name: str) -> None:
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"{name} must be (N, 3, H, W), got {tuple(images.shape)}")


def embed(model: Backbone, images: torch.Tensor, batch: int = 16,
          progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Penultimate features (N, D) of ``images`` (N, 3, H, W), in batches, without gradients."""
    _check_images(images, "images")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    n = images.shape[0]
    out = []
    with torch.no_grad():
        for start in range(0, n, batch):
            out.append(model.embed(images[start:start + batch]).float())
            if progress is not None:
                progress(min(start + batch, n), n)
    if not out:
        raise ValueError("no images to embed")
    return torch.cat(out)


@dataclass
class Neighbours:
    """The k nearest gallery images to a query, nearest first, in two spaces.

    ``feature_distance`` is the cosine distance (1 - cosine similarity) of penultimate
    features, ``pixel_distance`` the L2 distance of the raw pixels in [0, 1].
    """

    feature_index: list[int]
    feature_distance: torch.Tensor
    pixel_index: list[int]
    pixel_distance: torch.Tensor


def nearest_neighbours(model: Backbone, query: torch.Tensor, gallery: torch.Tensor, k: int = 5,
                       gallery_features: torch.Tensor | None = None) -> Neighbours:
    """The ``k`` gallery images nearest to ``query`` by features and by pixels.

    Feature distance is the cosine distance of penultimate features (scale-free, so an
    image's overall contrast does not dominate); pixel distance is L2 of the raw pixels.
    ``query`` is (1, 3, H, W) and ``gallery`` (N, 3, H, W) at the same size;
    ``gallery_features`` (N, D) from :func:`embed` saves recomputing them. k is clipped to N.
    """
    _check_images(query, "query")
    _check_images(gallery, "gallery")
    if query.shape[0] != 1:
        raise ValueError(f"query must be one image (1, 3, H, W), got {tuple(query.shape)}")
    if query.shape[2:] != gallery.shape[2:]:
        raise ValueError(f"query {tuple(query.shape[2:])} and gallery {tuple(gallery.shape[2:])} sizes differ")
    n = gallery.shape[0]
    if n == 0 or k < 1:
        raise ValueError(f"need a non-empty gallery and k >= 1, got N={n}, k={k}")
    k = min(k, n)
    feats = embed(model, gallery) if gallery_features is None else gallery_features.float()
    if feats.shape[0] != n:
        raise ValueError(f"gallery_features has {feats.shape[0]} rows for {n} gallery images")
    q = embed(model, query).to(feats.device)
    fdist = 1.0 - F.cosine_similarity(q, feats, dim=1)
    pdist = (gallery.float() - query.float()).flatten(1).norm(dim=1)
    fd, fi = torch.topk(fdist, k, largest=False)
    pd, pi = torch.topk(pdist, k, largest=False)
    return Neighbours(fi.tolist(), fd, pi.tolist(), pd)


def tsne_map(features: torch.Tensor, thumbnails: torch.Tensor, canvas: int = 768, thumb: int = 48,
             perplexity: float | None = None, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """A t-SNE map of ``features`` (N, D) with each image's thumbnail pasted at its point.

    Perplexity defaults to min(30, (N - 1) / 3) (t-SNE needs perplexity < N; N >= 3).
    The 2-D embedding is scaled so whole thumbnails fit on the white canvas; later
    thumbnails cover earlier ones. Returns the canvas (3, canvas, canvas) in [0, 1] and
    the thumbnails' centres (N, 2) as (x, y) pixels.
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    if features.ndim != 2:
        raise ValueError(f"features must be (N, D), got {tuple(features.shape)}")
    _check_images(thumbnails, "thumbnails")
    n = features.shape[0]
    if thumbnails.shape[0] != n:
        raise ValueError(f"{thumbnails.shape[0]} thumbnails for {n} feature rows")
    if n < 3:
        raise ValueError(f"t-SNE needs at least 3 points, got {n}")
    if not 1 <= thumb <= canvas:
        raise ValueError(f"need 1 <= thumb <= canvas, got thumb={thumb}, canvas={canvas}")
    if perplexity is None:
        perplexity = min(30.0, (n - 1) / 3)
    if not 0 < perplexity < n:
        raise ValueError(f"perplexity must be in (0, {n}) for {n} points, got {perplexity}")
    x = features.detach().float().cpu().numpy().astype(np.float64)
    # Exact t-SNE for small maps (no Barnes-Hut approximation needed), and scikit-learn's
    # OpenMP limited to one thread: its threads fought torch's (a second libgomp) and made an
    # 8-point map take 20 s instead of 0.2 s.
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                method="exact" if n <= 500 else "barnes_hut")
    with threadpool_limits(limits=1, user_api="openmp"):
        pts = tsne.fit_transform(x)
    lo, hi = pts.min(0), pts.max(0)
    unit = (pts - lo) / np.where(hi > lo, hi - lo, 1.0)  # each axis in [0, 1]
    half = thumb / 2
    coords = half + unit * (canvas - thumb)  # centres, so every thumbnail fits
    small = F.interpolate(thumbnails.detach().float(), size=(thumb, thumb), mode="bilinear",
                          align_corners=False, antialias=True).clamp(0, 1)
    out = small.new_ones(3, canvas, canvas)
    for (cx, cy), t in zip(coords, small):
        x0 = min(max(int(round(cx - half)), 0), canvas - thumb)
        y0 = min(max(int(round(cy - half)), 0), canvas - thumb)
        out[:, y0:y0 + thumb, x0:x0 + thumb] = t
    return out, coords
