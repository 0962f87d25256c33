"""Fooling images (Szegedy et al. 2014; the CS231n version): a change too small to see
makes the network report any class we choose."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from models.backbones import Backbone


@dataclass
class Fooling:
    """The result of :func:`fooling_image`; ``image`` and ``original`` are (1, 3, H, W) in [0, 1]."""

    image: torch.Tensor
    original: torch.Tensor
    target: int
    original_class: int
    original_prob: float
    fooled_class: int
    fooled_prob: float
    linf: float  # largest change of any pixel value, in units of the [0, 1] range
    steps: int

    @property
    def success(self) -> bool:
        return self.fooled_class == self.target

    def difference(self, magnify: float = 10) -> torch.Tensor:
        """The change, magnified ``magnify`` times around mid grey, for display in [0, 1]."""
        return (0.5 + magnify * (self.image - self.original)).clamp(0, 1)


def fooling_image(model: Backbone, image: torch.Tensor, target: int, max_steps: int = 100, lr: float = 0.001,
                  confidence: float = 0.9, progress: Callable[[int, int], None] | None = None,
                  norm: str = "linf") -> Fooling:
    """Nudge ``image`` until the network calls it class ``target`` with probability at least
    ``confidence`` (and as its top class), or ``max_steps`` have passed.

    Each step descends the cross-entropy of ``target`` by a normalised gradient and clips to
    [0, 1]. ``norm="linf"`` (default) takes sign steps of ``lr`` per pixel value (iterative
    FGSM, Kurakin et al. 2016), so after k steps no value has moved more than k * lr;
    ``norm="l2"`` scales the gradient to a root-mean-square change of ``lr`` (the lecture's
    normalised step; smoother change, larger peaks, use lr about 0.0005). Small steps and
    stopping at the first success keep the change minimal: on chelsea at 224 px, 6-17
    steps and an L-inf change of 0.01-0.02 of the range for goldfish, banana, school bus.
    Check :attr:`Fooling.success` when ``max_steps`` may be too few.
    """
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[:2] != (1, 3):
        raise ValueError(f"image must be a (1, 3, H, W) tensor, got {tuple(getattr(image, 'shape', ()))}")
    n = len(model.categories)
    if not 0 <= int(target) < n:
        raise ValueError(f"class index {target} out of range [0, {n})")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if norm not in ("linf", "l2"):
        raise ValueError(f"norm must be 'linf' or 'l2', got {norm!r}")
    if lr <= 0 or max_steps < 0:
        raise ValueError("lr must be > 0 and max_steps >= 0")
    target = int(target)
    original = image.detach().float().clamp(0, 1)
    label = torch.tensor([target], device=image.device)

    x = original.clone()
    steps = 0
    while True:
        # One forward per step: its logits both decide whether to stop and give the gradient.
        x.requires_grad_(True)
        logits = model.classify(x).float()
        probs = logits.detach().softmax(1)[0]
        if steps == 0:
            original_class, original_prob = int(probs.argmax()), float(probs.max())
        reached = int(probs.argmax()) == target and float(probs[target]) >= confidence
        if reached or steps >= max_steps:
            break
        (g,) = torch.autograd.grad(F.cross_entropy(logits, label), x)
        with torch.no_grad():
            if norm == "linf":
                step = g.sign()
            else:
                step = g / g.pow(2).mean().sqrt().clamp_min(1e-20)
            x = (x - lr * step).clamp(0, 1)
        steps += 1
        if progress is not None:
            progress(steps, max_steps)
    if progress is not None and steps < max_steps:
        progress(max_steps, max_steps)  # stopped early: close the bar
    x = x.detach()
    return Fooling(image=x, original=original, target=target, original_class=original_class,
                   original_prob=original_prob, fooled_class=int(probs.argmax()), fooled_prob=float(probs.max()),
                   linf=float((x - original).abs().max()), steps=steps)


__all__ = ["Fooling", "fooling_image"]
