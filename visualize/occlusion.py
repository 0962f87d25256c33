"""Occlusion sensitivity (Zeiler & Fergus 2014): which regions the class score needs.

Unlike gradient saliency, this asks the network directly: hide a region behind a grey
square and see how much the class probability falls.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from models.backbones import Backbone


def _starts(length: int, size: int, stride: int) -> list[int]:
    """Window starts every ``stride`` pixels, plus one flush with the far edge so every pixel is covered."""
    last = max(length - size, 0)
    starts = list(range(0, last + 1, stride))
    if starts[-1] != last:
        starts.append(last)
    return starts


def occlusion(model: Backbone, image: torch.Tensor, target: int | None = None, size: int = 32, stride: int = 16,
              fill: float = 0.5, batch: int = 32,
              progress: Callable[[int, int], None] | None = None) -> tuple[torch.Tensor, int]:
    """Heat map (H, W) of the drop in the target's softmax probability when each region is hidden.

    A ``size`` x ``size`` square of value ``fill`` slides over the first image with step
    ``stride`` (the last row and column of windows are flush with the border; a ``stride``
    larger than ``size`` is refused, so every pixel is hidden by at least one window and no
    pixel's value is an untested 0). Each pixel gets the mean drop over the windows that cover it: positive where hiding it hurts the
    class, negative where hiding it helps. ``target`` defaults to the top class. Returns
    the map on the image's device and the class explained.
    """
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"image must be (1, 3, H, W), got {tuple(image.shape)}")
    if size < 1 or stride < 1 or batch < 1:
        raise ValueError(f"size, stride and batch must be >= 1, got size={size}, stride={stride}, batch={batch}")
    if stride > size:
        raise ValueError(f"occlusion stride {stride} is larger than the square size {size}: the pixels between "
                         f"squares would never be hidden, and their 0 would read as 'does not matter'; "
                         f"use a stride of at most {size}")
    image = image[:1].detach()
    _, _, h, w = image.shape
    with torch.no_grad():
        probs = model.classify(image).float().softmax(1)[0]
        if target is None:
            target = int(probs.argmax())
        if not 0 <= target < probs.shape[0]:
            raise ValueError(f"target {target} out of range: {model.name} has {probs.shape[0]} classes")
        base = probs[target]
        windows = [(y, x) for y in _starts(h, size, stride) for x in _starts(w, size, stride)]
        total = torch.zeros(h, w, device=image.device)
        count = torch.zeros(h, w, device=image.device)
        for start in range(0, len(windows), batch):
            chunk = windows[start:start + batch]
            x = image.repeat(len(chunk), 1, 1, 1)
            for j, (y0, x0) in enumerate(chunk):
                x[j, :, y0:y0 + size, x0:x0 + size] = fill
            drops = base - model.classify(x).float().softmax(1)[:, target]
            for (y0, x0), d in zip(chunk, drops):
                total[y0:y0 + size, x0:x0 + size] += d
                count[y0:y0 + size, x0:x0 + size] += 1
            if progress is not None:
                progress(min(start + batch, len(windows)), len(windows))
    return total / count.clamp_min(1), target
