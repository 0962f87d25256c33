"""DeepDream (Mordvintsev et al. 2015): amplify what a layer already sees."""

from __future__ import annotations

import torch

from models.backbones import Backbone


def dream_steps(model: Backbone, image: torch.Tensor, layer: str, steps: int = 3, lr: float = 0.02,
                jitter: int = 8, generator: torch.Generator | None = None) -> torch.Tensor:
    """A few normalised gradient-ascent steps on the L2 norm of ``layer``'s activations.

    Each step rolls the image by a random offset (jitter) so the pattern does not lock to
    the pixel grid. Returns the image, still in [0, 1].
    """
    x = image.detach().clone()
    for _ in range(steps):
        dy, dx = (torch.randint(-jitter, jitter + 1, (2,), generator=generator).tolist() if jitter else (0, 0))
        x = torch.roll(x, (dy, dx), dims=(2, 3)).requires_grad_(True)
        act = model.features(x, [layer])[layer]
        (g,) = torch.autograd.grad(act.float().pow(2).mean(), x)
        with torch.no_grad():
            x = x + lr * g / g.abs().mean().clamp_min(1e-8)
            x = torch.roll(x, (-dy, -dx), dims=(2, 3)).clamp(0, 1)
    return x.detach()
