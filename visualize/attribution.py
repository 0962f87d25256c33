"""Which pixels matter: saliency (Simonyan et al. 2014), SmoothGrad, guided backprop."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import torch
from torch import nn

from models.backbones import Backbone


@contextmanager
def guided_relus(model: nn.Module) -> Iterator[None]:
    """Guided backpropagation: only positive gradients pass back through ReLU-type units."""
    def clamp(module, grad_input, grad_output):
        return tuple(g.clamp_min(0) if g is not None else None for g in grad_input)

    handles = [m.register_full_backward_hook(clamp) for m in model.modules() if isinstance(m, (nn.ReLU, nn.ReLU6))]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def saliency(model: Backbone, image: torch.Tensor, target: int | None = None, smooth_samples: int = 0,
             noise: float = 0.15, guided: bool = False) -> tuple[torch.Tensor, int]:
    """Gradient of a class score w.r.t. the pixels, max of |grad| over channels.

    Returns a (B, H, W) map scaled to [0, 1] per image and the class explained (the top
    class of the first image when ``target`` is None). ``smooth_samples`` > 0 averages
    the gradients of noisy copies (SmoothGrad, noise as a fraction of the value range).
    """
    image = image.detach()
    with torch.no_grad():
        if target is None:
            target = int(model.classify(image[:1]).argmax(1))
    samples = max(1, smooth_samples)
    grads = torch.zeros_like(image)
    ctx = guided_relus(model) if guided else nullcontext()
    with ctx:
        for i in range(samples):
            x = image + noise * torch.randn_like(image) if smooth_samples else image.clone()
            x.requires_grad_(True)
            score = model.classify(x)[:, target].sum()
            (g,) = torch.autograd.grad(score, x)
            grads += g
    sal = grads.abs().amax(dim=1)
    peak = sal.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]
    return sal / peak, target
