"""Shared fixtures: small photos and style images made here, no files from outside the project."""

from __future__ import annotations

import os
from pathlib import Path

# Idle OpenMP threads sleep instead of spinning: on 2 shared cores, spinning made tests 5-10x slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import cv2
import numpy as np
import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))


def write_bgr(path: Path, rgb: np.ndarray) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="session")
def photos_dir(tmp_path_factory) -> Path:
    """Six small photos from scikit-image, in a nested folder, as jpg and png."""
    from skimage import data

    root = tmp_path_factory.mktemp("photos")
    (root / "nested").mkdir()
    for i, name in enumerate(["astronaut", "coffee", "chelsea", "rocket", "camera", "immunohistochemistry"]):
        img = getattr(data, name)()
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=-1)
        img = cv2.resize(img[..., :3], (96, 72), interpolation=cv2.INTER_AREA)
        folder = root / "nested" if i % 2 else root
        write_bgr(folder / f"{name}.{'png' if i % 3 == 0 else 'jpg'}", img)
    return root


def _stripes(size: int = 128) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size]
    img = np.zeros((size, size, 3), np.uint8)
    band = ((x + y) // 8) % 3
    img[band == 0] = (230, 40, 30)
    img[band == 1] = (250, 210, 20)
    img[band == 2] = (20, 40, 160)
    return img


def _blobs(size: int = 128) -> np.ndarray:
    rng = np.random.default_rng(1)
    img = np.full((size, size, 3), (20, 90, 40), np.uint8)
    for _ in range(40):
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        cv2.circle(img, tuple(int(v) for v in rng.integers(0, size, 2)), int(rng.integers(4, 14)), c, -1)
    return img


@pytest.fixture(scope="session")
def style_images(tmp_path_factory) -> list[Path]:
    """Two synthetic 'paintings' with very different palettes and textures."""
    root = tmp_path_factory.mktemp("styles")
    return [write_bgr(root / "stripes.png", _stripes()), write_bgr(root / "blobs.png", _blobs())]


@pytest.fixture(scope="session", autouse=True)
def _cache_in_a_temporary_folder(tmp_path_factory):
    """The backend probe's cache (models.common.paths.user_cache_dir) goes to a temporary folder, not the
    home of whoever runs the tests; child processes inherit it."""
    os.environ["STYLELENS_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    os.environ.pop("STYLELENS_CACHE_DIR", None)
