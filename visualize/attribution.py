"""Which pixels matter: saliency (Simonyan et al. 2014), SmoothGrad, guided backprop
(Springenberg et al. 2015) and Grad-CAM (Selvaraju et al. 2017)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from models.backbones import Backbone


# Guided backprop's state is per thread, never on the network: the page's handlers share one backbone per
# network (realtime.panel.inputs.backbone), and hooks that clamped every backward through it while one
# request ran turned a concurrent request's plain backprop guided (2 rounds in 4) and moved its saliency.
_guided = threading.local()
_install = threading.Lock()
_HOOKED = "_stylelens_guided_hooks"


class _PositiveGradient(torch.autograd.Function):
    """The identity, whose backward lets only positive gradients through."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.clamp_min(0)


def _guide(module: nn.Module, inputs, output):
    """A ReLU's forward hook: in a thread inside :func:`guided_relus`, its output's gradient is clamped
    at 0 on the way back (the ReLU's own mask then applies, as guided backprop asks); elsewhere nothing."""
    if getattr(_guided, "depth", 0) and torch.is_grad_enabled() and isinstance(output, torch.Tensor):
        return _PositiveGradient.apply(output)
    return None


def _hook_relus(model: nn.Module) -> None:
    """Give every ReLU-type unit of ``model`` the hook of :func:`_guide`, once (it does nothing outside
    :func:`guided_relus`)."""
    if getattr(model, _HOOKED, False):
        return
    with _install:
        if not getattr(model, _HOOKED, False):
            for m in model.modules():
                if isinstance(m, (nn.ReLU, nn.ReLU6)):
                    m.register_forward_hook(_guide)
            object.__setattr__(model, _HOOKED, True)


@contextmanager
def guided_relus(model: nn.Module) -> Iterator[None]:
    """Guided backpropagation: only positive gradients pass back through ReLU-type units, for the
    forward passes this thread runs inside the block; other threads using the same network at the
    same time (the page's other requests) are untouched."""
    _hook_relus(model)
    _guided.depth = getattr(_guided, "depth", 0) + 1
    try:
        yield
    finally:
        _guided.depth -= 1


def _check_image(image: torch.Tensor, single: bool = False) -> None:
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[1] != 3:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"image must be a (B, 3, H, W) tensor, got {shape}")
    if single and image.shape[0] != 1:
        raise ValueError(f"this method explains one image: expected (1, 3, H, W), got {tuple(image.shape)}")


def _check_class(model: Backbone, target: int | None) -> None:
    n = len(model.categories)
    if target is not None and not 0 <= int(target) < n:
        raise ValueError(f"class index {target} out of range [0, {n})")


def _top_class(model: Backbone, image: torch.Tensor) -> int:
    with torch.no_grad():
        return int(model.classify(image[:1]).argmax(1))


def saliency(model: Backbone, image: torch.Tensor, target: int | None = None, smooth_samples: int = 0,
             noise: float = 0.15, guided: bool = False, seed: int | None = None) -> tuple[torch.Tensor, int]:
    """Gradient of a class score w.r.t. the pixels, max of |grad| over channels.

    Returns a (B, H, W) map scaled to [0, 1] per image and the class explained (the top
    class of the first image when ``target`` is None). ``smooth_samples`` > 0 averages
    the gradients of noisy copies (SmoothGrad, Smilkov et al. 2017; ``noise`` is the standard
    deviation as a fraction of the value range, drawn from ``seed``, 0 when not given). On
    EfficientNet-Lite0 the plain gradient is diffuse; SmoothGrad with 8 samples and noise
    0.3 puts about two thirds of the map on chelsea's face (tests/test_visualize_attribution.py).
    """
    _check_image(image)
    _check_class(model, target)
    image = image.detach()
    if target is None:
        target = _top_class(model, image)
    samples = max(1, smooth_samples)
    grads = torch.zeros_like(image)
    # The noise of each call from its own generator (seed 0 unless given): the same picture gives the
    # same map, whatever other requests draw from torch's global generator meanwhile.
    gen = torch.Generator().manual_seed(int(seed) if seed is not None else 0)
    ctx = guided_relus(model) if guided else nullcontext()
    with ctx:
        for i in range(samples):
            if smooth_samples:
                eps = torch.randn(image.shape, generator=gen)
                x = image + noise * eps.to(image.device, image.dtype)
            else:
                x = image.clone()
            x.requires_grad_(True)
            score = model.classify(x)[:, target].sum()
            (g,) = torch.autograd.grad(score, x)
            grads += g
    sal = grads.abs().amax(dim=1)
    peak = sal.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]
    return sal / peak, int(target)


def _forward_after(model: Backbone, h: torch.Tensor, layer: str) -> torch.Tensor:
    """Logits from the activations ``h`` of ``layer`` (the rest of the network)."""
    names = model.layer_names
    for name in names[names.index(layer) + 1:]:
        h = model.stages[name](h)
    return model.classifier(h)


@contextmanager
def _pre_activation(model: Backbone, layer: str) -> Iterator[list[torch.Tensor]]:
    """Capture the input of the clamp that ends ``layer``, if it ends in a ReLU6.

    A unit saturated at 6 has no gradient, so unit-mode explanations take the strongest
    position before the clamp (same ranking below 6, still defined above it).
    """
    stage = model.stages[layer]
    last = list(stage.children())[-1] if len(list(stage.children())) else stage
    captured: list[torch.Tensor] = []
    handle = None
    mine = threading.get_ident()  # another request's forward through the same network is not captured
    if isinstance(last, nn.ReLU6):
        handle = last.register_forward_hook(
            lambda m, inp, out: captured.append(inp[0]) if threading.get_ident() == mine else None)
    try:
        yield captured
    finally:
        if handle is not None:
            handle.remove()


def display_gradient(g: torch.Tensor, percentile: float = 99.5) -> torch.Tensor:
    """A signed gradient as an image in [0, 1]: 0.5 + g / (2 s), clipped.

    ``s`` is the ``percentile`` of |g| over all channels and pixels (one scale for every
    channel keeps the colours; a percentile rather than the max stops a few pixels from
    turning the rest grey).
    """
    s = torch.quantile(g.detach().abs().flatten().float(), percentile / 100).clamp_min(1e-12)
    return (0.5 + g / (2 * s)).clamp(0, 1)


def guided_backprop(model: Backbone, image: torch.Tensor, target: int | None = None, layer: str | None = None,
                    channel: int | None = None, guided: bool = True,
                    percentile: float = 99.5) -> tuple[torch.Tensor, int]:
    """What the network looks for in the pixels, as a (3, H, W) image in [0, 1].

    The gradient with respect to the pixels of either the class score ``target`` (when
    ``layer`` is None; the top class when ``target`` is None) or one intermediate unit: the
    spatial position where ``channel`` of ``layer`` is most active (``channel`` None: the
    channel with the largest mean activation; for layers ending in a ReLU6 the unit is
    read before the clamp, where it still has a gradient). With ``guided`` only positive
    gradients pass back through the ReLUs (Springenberg et al. 2015), which gives the sharp
    pattern; ``guided=False`` is plain backprop (the noisier saliency gradient) for the
    side-by-side. Display scaling: see :func:`display_gradient` (0.5 is zero gradient).
    Returns the image and the class or channel explained.
    """
    _check_image(image, single=True)
    x = image.detach().clone().requires_grad_(True)
    ctx = guided_relus(model) if guided else nullcontext()
    if layer is None:
        if channel is not None:
            raise ValueError("channel needs a layer")
        _check_class(model, target)
        if target is None:
            target = _top_class(model, image)
        explained = int(target)
        with ctx:
            score = model.classify(x)[0, explained]
            (g,) = torch.autograd.grad(score, x)
    else:
        if target is not None:
            raise ValueError("give either a class target or a layer (and channel), not both")
        model.check_layers([layer])
        with ctx, _pre_activation(model, layer) as pre:
            out = model.features(x, [layer])[layer][0]
            act = pre[0][0] if pre else out
            if channel is None:  # as visualize.activations.strongest_channel: largest mean activation
                channel = int(out.detach().float().mean(dim=(1, 2)).argmax())
            if not 0 <= int(channel) < act.shape[0]:
                raise ValueError(f"channel {channel} out of range: layer {layer} has {act.shape[0]} channels")
            explained = int(channel)
            unit = act[explained].flatten().max()
            (g,) = torch.autograd.grad(unit, x)
    return display_gradient(g[0], percentile), explained


def grad_cam(model: Backbone, image: torch.Tensor, target: int | None = None,
             layer: str | None = None) -> tuple[torch.Tensor, int]:
    """Grad-CAM (Selvaraju et al. 2017): where in the image the evidence for a class lies.

    The channels of ``layer`` (default ``model.cam_layer``, the last wide spatial layer)
    are weighted by the spatial mean of the class score's gradient, summed, passed through
    a ReLU (only evidence for the class), upsampled bilinearly to the image size and scaled
    to [0, 1]. Returns the (H, W) map and the class explained (top class when None).
    """
    _check_image(image, single=True)
    _check_class(model, target)
    layer = layer or model.cam_layer
    model.check_layers([layer])
    image = image.detach()
    if target is None:
        target = _top_class(model, image)
    with torch.no_grad():
        act = model.features(image, [layer])[layer]
    act = act.detach().requires_grad_(True)
    score = _forward_after(model, act, layer)[0, int(target)]
    (g,) = torch.autograd.grad(score, act)
    weights = g.float().mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * act.detach().float()).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=image.shape[-2:], mode="bilinear", align_corners=False)[0, 0].clamp_min(0)
    peak = cam.max()
    return (cam / peak if peak > 0 else cam), int(target)


__all__ = ["saliency", "guided_relus", "guided_backprop", "grad_cam", "display_gradient"]
