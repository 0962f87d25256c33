"""Feature inversion (Mahendran & Vedaldi 2015): the image a layer "remembers".

From noise, find an image whose features at one layer match those of a given image, with
a total-variation prior. Early layers keep almost everything (the photo comes back);
deep layers keep what matters for the class, and colour, position and detail fade.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from models.backbones import Backbone
from models.losses import content_loss, tv_loss
from visualize.param import PixelImage

Progress = Callable[[int, int], None] | None

# Adam on sigmoid-parametrised pixels (visualize.param.PixelImage): the step is bounded
# per pixel whatever the scale of the layer's loss, so one learning rate serves every
# layer; L-BFGS converged faster on early layers but stalled or diverged on deep ones.
INVERSION_LR = 0.1
# tv_loss is the mean absolute neighbour difference (about 0.1-0.2 for a photo, 0.4+ for
# noise) against a content loss relative to the target (1 at the start): weight 1 removes
# the start noise that deep layers do not constrain; 0.05-0.5 left deep inversions noisy,
# 2 blurred early ones (chelsea, 128 px, efficientnet_lite0).
TV_WEIGHT = 1.0
INIT_STD = 0.5  # noise start: sigmoid(N(0, 0.5^2)), values spread over about [0.27, 0.73]


def _check(model: Backbone, image: torch.Tensor, layers: Sequence[str], steps: int) -> None:
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[:2] != (1, 3):
        raise ValueError(f"image must be a (1, 3, H, W) tensor, got {tuple(getattr(image, 'shape', ()))}")
    if not layers:
        raise ValueError("need at least one layer")
    model.check_layers(layers)
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")


def _invert(model: Backbone, image: torch.Tensor, layer: str, steps: int, tv_weight: float, lr: float, seed: int,
            tick: Callable[[], None]) -> torch.Tensor:
    with torch.no_grad():
        target = {layer: model.features(image, [layer])[layer].detach()}
    param = PixelImage(image.shape, seed=seed, init_std=INIT_STD, device=image.device)
    opt = torch.optim.Adam(param.parameters(), lr=lr)
    for _ in range(steps):
        x = param()
        loss = content_loss(model.features(x, [layer]), target, {layer: 1.0}) + tv_weight * tv_loss(x)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        tick()
    with torch.no_grad():
        return param().detach()


def invert_features(model: Backbone, image: torch.Tensor, layer: str, steps: int = 200, tv_weight: float = TV_WEIGHT,
                    lr: float = INVERSION_LR, seed: int = 0, progress: Progress = None) -> torch.Tensor:
    """Reconstruct ``image`` (1, 3, H, W) from its features at ``layer``.

    Minimises content_loss (squared feature error relative to the target's norm) plus
    ``tv_weight`` * tv_loss, from seeded noise, with Adam (``lr``) on sigmoid-parametrised
    pixels for ``steps`` steps. Returns the (1, 3, H, W) reconstruction in [0, 1].
    """
    return invert_layers(model, image, [layer], steps=steps, tv_weight=tv_weight, lr=lr, seed=seed,
                         progress=progress)[layer]


def invert_layers(model: Backbone, image: torch.Tensor, layers: Sequence[str], steps: int = 200,
                  tv_weight: float = TV_WEIGHT, lr: float = INVERSION_LR, seed: int = 0,
                  progress: Progress = None) -> dict[str, torch.Tensor]:
    """:func:`invert_features` for each of ``layers`` from the same noise, for a side-by-side;
    ``progress`` counts the steps of all layers together."""
    layers = list(layers)
    _check(model, image, layers, steps)
    image = image.detach()
    total = steps * len(layers)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    return {layer: _invert(model, image, layer, steps, tv_weight, lr, seed, tick) for layer in layers}


__all__ = ["invert_features", "invert_layers"]
