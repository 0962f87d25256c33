"""DeepDream (Mordvintsev et al. 2015): amplify what a layer already sees.

``dream_steps`` is the bare gradient ascent (the live runner calls it a few steps per
frame); ``deepdream`` is the full method of the original notebook, with octaves. ``deepdream``
runs on a copy of the network with its BatchNorms folded and each convolution fused with its
ReLU6 (``fast_frozen_copy``), in channels_last on the CPU: together 1.70-2.28x less time than the
plain loop at 512 px on 2 shared cores (``scripts/bench_synthesis.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from models.backbones import Backbone, fast_frozen_copy, optimisation_memory_format
from visualize.transforms import resize

# Octaves stop shrinking at this side length: below it the deep layers see only a few pixels.
_MIN_OCTAVE_SIDE = 32


def _dream_step(model: Backbone, x: torch.Tensor, layer: str, lr: float, jitter: int,
                generator: torch.Generator | None,
                memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """One jittered, normalised gradient-ascent step on the mean squared activation of ``layer``."""
    dy, dx = (torch.randint(-jitter, jitter + 1, (2,), generator=generator).tolist() if jitter else (0, 0))
    x = torch.roll(x, (dy, dx), dims=(2, 3)).requires_grad_(True)
    act = model.features(x.contiguous(memory_format=memory_format), [layer])[layer]
    (g,) = torch.autograd.grad(act.float().pow(2).mean(), x)
    with torch.no_grad():
        # Dividing by the mean absolute gradient makes ``lr`` the mean pixel change per step,
        # whatever the layer's scale.
        x = x + lr * g / g.abs().mean().clamp_min(1e-8)
        x = torch.roll(x, (-dy, -dx), dims=(2, 3)).clamp(0, 1)
    return x.detach()


def dream_steps(model: Backbone, image: torch.Tensor, layer: str, steps: int = 3, lr: float = 0.02,
                jitter: int = 8, generator: torch.Generator | None = None,
                memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """A few normalised gradient-ascent steps on the L2 norm of ``layer``'s activations.

    Each step rolls the image by a random offset (jitter) so the pattern does not lock to
    the pixel grid. Returns the image, still in [0, 1]. A caller that runs this often (the
    live effect) passes ``fast_frozen_copy(model)`` and ``optimisation_memory_format``.
    """
    x = image.detach().clone()
    for _ in range(steps):
        x = _dream_step(model, x, layer, lr, jitter, generator, memory_format)
    return x


def _octave_sizes(h: int, w: int, octaves: int, scale: float) -> list[tuple[int, int]]:
    """Image sizes from the smallest octave up to (h, w); no side shrinks below 32 px (or its own size)."""
    sizes = []
    for i in range(octaves):
        f = scale ** i
        sizes.append((max(min(h, _MIN_OCTAVE_SIDE), round(h / f)), max(min(w, _MIN_OCTAVE_SIDE), round(w / f))))
    return sizes[::-1]


def deepdream(model: Backbone, image: torch.Tensor, layer: str, octaves: int = 4, octave_scale: float = 1.4,
              steps: int = 10, lr: float = 0.015, jitter: int = 32, seed: int = 0,
              progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """DeepDream with octaves, as in the original notebook: patterns at several scales.

    The image is shrunk by ``octave_scale`` per octave. Starting from the smallest, each
    octave runs ``steps`` jittered gradient-ascent steps on ``layer``'s activation norm; the
    detail the dream added (dream minus base) is upscaled and added to the next, larger
    base, so coarse patterns grow fine detail instead of being dreamt only at one scale.
    ``lr`` is the mean pixel change per step (pixels in [0, 1]; 0.015 grew the classic fur,
    eyes and animal faces at block 10 on a 256 px photo, 0.01 is subtler). Returns an image of the
    input's size in [0, 1]; ``progress(done, octaves * steps)`` after each step.
    """
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"image must be (B, 3, H, W), got {tuple(image.shape)}")
    if octaves < 1 or steps < 0:
        raise ValueError(f"octaves must be >= 1 and steps >= 0, got octaves={octaves}, steps={steps}")
    if octave_scale < 1:
        raise ValueError(f"octave_scale must be >= 1, got {octave_scale}")
    if jitter < 0 or lr < 0:
        raise ValueError(f"jitter and lr must be >= 0, got jitter={jitter}, lr={lr}")
    model.check_layers([layer])
    generator = torch.Generator().manual_seed(seed)
    image = image.detach().float().clamp(0, 1)
    net, fmt = fast_frozen_copy(model), optimisation_memory_format(None, image.device)
    h, w = image.shape[-2:]
    total, done = octaves * steps, 0
    detail = None
    x = image
    for size in _octave_sizes(h, w, octaves, octave_scale):
        base = resize(image, size)
        x = base if detail is None else (base + resize(detail, size)).clamp(0, 1)
        for _ in range(steps):
            x = _dream_step(net, x, layer, lr, jitter, generator, fmt)
            done += 1
            if progress is not None:
                progress(done, total)
        detail = x - base
    return x
