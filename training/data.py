"""Training photos: a folder of images, resized and randomly cropped.

Sampling is a pure function of the step number and a seed (``StepSampler``), so a
run resumed at step k sees exactly the batches an uninterrupted run would have seen,
on any number of processes, with no data-loader state to save.
"""

from __future__ import annotations

import hashlib
import os
import random
import warnings
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from models.common.errors import InputFileError
from models.common.images import IMAGE_SUFFIXES, read_rgb, rgb_to_nchw


def find_images(root: str | os.PathLike) -> list[Path]:
    """All image files (.jpg .jpeg .png .webp .bmp) under ``root``, recursively, in a stable order."""
    root = Path(root)
    if not root.is_dir():
        raise InputFileError(root, "data folder not found")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise InputFileError(root, f"no images ({', '.join(IMAGE_SUFFIXES)}) found in this folder")
    return files


def files_fingerprint(root: str | os.PathLike, files: list[Path]) -> str:
    """SHA-256 of the image files' names (relative to ``root``) and sizes, in order.

    The batches of a step are drawn from this list, so a resumed run sees the images an
    uninterrupted one would only while it is unchanged: a file added, removed or rewritten with
    another size changes the fingerprint. Names and sizes, not contents: reading 300 photos at
    every start would cost more than the check is worth."""
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.relative_to(root).as_posix()}\t{f.stat().st_size}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def warn_unreadable(error: InputFileError) -> None:
    """The one warning for a training image that cannot be read (the run goes on without it)."""
    warnings.warn(f"skipping unreadable training image {error.path}: {error.problem}", stacklevel=3)


def random_crop(rgb: np.ndarray, size: int, rng: random.Random, max_scale: float = 1.3) -> np.ndarray:
    """Resize so the shorter side is ``size`` times a random scale in [1, max_scale], then crop."""
    h, w = rgb.shape[:2]
    s = size * rng.uniform(1.0, max_scale) / min(h, w)
    nh, nw = max(size, round(h * s)), max(size, round(w * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    rgb = cv2.resize(rgb, (nw, nh), interpolation=interp)
    y, x = rng.randrange(nh - size + 1), rng.randrange(nw - size + 1)
    return rgb[y:y + size, x:x + size]


class CropDataset(Dataset):
    """Random square crops of the images in a folder, as float tensors (3, size, size) in [0, 1].

    Indexed by ``(image index, crop seed)`` from :class:`StepSampler`. An unreadable
    file is skipped with a warning naming it, and a readable one is used instead.
    """

    def __init__(self, root: str | os.PathLike, size: int):
        self.files = find_images(root)
        self.size = size
        self._bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key: tuple[int, int]) -> torch.Tensor:
        index, seed = key
        rng = random.Random(seed)
        fallbacks = rng.sample(range(len(self.files)), len(self.files))  # every file, in a seeded order
        for i in [index, *fallbacks]:
            if i in self._bad:
                continue
            try:
                rgb = read_rgb(self.files[i])
            except InputFileError as e:
                self._bad.add(i)
                warn_unreadable(e)
                continue
            return torch.from_numpy(rgb_to_nchw(random_crop(rgb, self.size, rng))[0])
        raise InputFileError(self.files[0].parent, "none of the training images could be read")


def _mix(*numbers: int) -> int:
    """A stable 63-bit seed from integers (Python's hash() is salted per process)."""
    digest = hashlib.blake2b(repr(numbers).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class StepSampler(Sampler):
    """Batches of ``(image index, crop seed)`` for steps ``start_step`` .. ``total_steps - 1``.

    The global batch of a step is ``batch * world_size`` consecutive positions of an
    endless stream of shuffled epochs; rank r takes its ``batch`` positions of it.
    """

    def __init__(self, num_images: int, batch: int, total_steps: int, seed: int = 0,
                 start_step: int = 0, rank: int = 0, world_size: int = 1):
        self.n, self.batch, self.seed = num_images, batch, seed
        self.start, self.total = start_step, total_steps
        self.rank, self.world = rank, world_size
        self._perm: tuple[int, torch.Tensor] | None = None

    def __len__(self) -> int:
        return max(0, self.total - self.start)

    def positions(self, step: int) -> range:
        """Stream positions of this rank's images at ``step`` (also used for style indices)."""
        first = (step * self.world + self.rank) * self.batch
        return range(first, first + self.batch)

    def _index(self, pos: int) -> int:
        epoch = pos // self.n
        if self._perm is None or self._perm[0] != epoch:
            g = torch.Generator().manual_seed(_mix(self.seed, epoch))
            self._perm = (epoch, torch.randperm(self.n, generator=g))
        return int(self._perm[1][pos % self.n])

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start, self.total):
            yield [(self._index(p), _mix(self.seed, p, 1)) for p in self.positions(step)]
