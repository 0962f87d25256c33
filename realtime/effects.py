"""Live effects: each maps one BGR uint8 frame to a BGR uint8 frame of the same size.

One registry (:data:`EFFECTS`) names them for the CLI, the hotkeys and the panel.
An effect is built from :class:`EffectOptions`; ``cycle(+1/-1)`` steps its main
choice (style, layer or mode) and ``status()`` tells the HUD what it is doing.
The ``style`` effect needs only onnxruntime; the others load a torch backbone.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from models.blend import check_strength, finish_style_bgr
from models.images import bgr_to_nchw, nchw_to_bgr, overlay_heat, resize_max_side, resize_to


@dataclass
class EffectOptions:
    """Everything an effect may be configured with (from CLI flags or the panel)."""

    model: str | None = None  # ONNX style model; None: the shipped default
    provider: str = "auto"  # auto | cpu | cuda
    style: str | None = None
    blend: dict[str, float] = field(default_factory=dict)
    size: int | None = None  # processing size: longer side, resized back after
    backbone: str = "efficientnet_lite0"
    weights: str | None = None
    layer: str | None = None
    target: int | None = None  # ImageNet class for saliency; None: the top class
    saliency_mode: str = "plain"  # plain | smoothgrad | guided
    dream_steps: int = 2
    threads: int | None = None
    border_pad: int | None = None  # mirrored margin around style frames; None: the model's own
    workers: int | None = None  # frames the style effect runs at once; None: 2 on a CPU of 2+ cores, else 1
    strength: float = 1.0  # style effect: 0 the frame, 1 the full style (models.blend)
    preserve_color: bool = False  # style effect: keep the frame's colours


class Effect:
    """Base class: ``__call__(frame) -> frame`` with the frame's size kept."""

    name = "effect"
    # How many frames the runner may give this effect at once, from as many threads; more than
    # one only where __call__ is thread-safe and the frames do not depend on each other.
    workers = 1

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def cycle(self, step: int = 1) -> None:
        """Step the effect's main choice (style, layer, mode)."""

    def blend_step(self, amount: float = 0.25) -> None:
        """Move a blend toward the next choice (styles only)."""

    def status(self) -> str:
        return self.name

    def reset(self) -> None:
        """Forget state carried over frames."""


EFFECTS: dict[str, Callable[[EffectOptions], Effect]] = {}


def register(cls: type[Effect]) -> type[Effect]:
    EFFECTS[cls.name] = cls
    return cls


def create_effect(name: str, options: EffectOptions | None = None) -> Effect:
    try:
        factory = EFFECTS[name]
    except KeyError:
        raise ValueError(f"unknown effect {name!r}; effects: {sorted(EFFECTS)}") from None
    return factory(options or EffectOptions())


def _resize_for_processing(frame: np.ndarray, size: int | None) -> np.ndarray:
    return resize_max_side(frame, size, enlarge=True, min_side=16)


@register
class NoEffect(Effect):
    """The raw frame, for comparison."""

    name = "none"

    def __init__(self, options: EffectOptions | None = None):
        pass

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        return frame


def style_workers(options: EffectOptions, providers: Sequence[str] | None) -> tuple[int, int | None]:
    """Frames in flight and onnxruntime threads per frame for the style effect.

    On a CPU the style networks scale poorly across cores within one frame (the instance norms
    and layout changes run on one core: lite at 640x480 took 95 ms on one core and 65 ms on
    two), so two frames at once, one core each, give more frames per second for a little more
    latency. A GPU runs one frame at a time.
    """
    from models.onnx_style import default_providers

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    on_gpu = "CUDAExecutionProvider" in (providers or default_providers())
    workers = options.workers or (1 if on_gpu or cores < 2 else 2)
    threads = options.threads or (max(1, cores // workers) if workers > 1 else None)
    return workers, threads


@register
class StyleEffect(Effect):
    """Fast style transfer with an ONNX model; blends styles of a conditional model live."""

    name = "style"

    def __init__(self, options: EffectOptions):
        from models import zoo
        from models.onnx_style import OnnxStyleModel, providers_for

        providers = providers_for(options.provider)
        self.workers, threads = style_workers(options, providers)
        path = zoo.resolve_model(options.model, options.style)  # a file, or a shipped or user style's name
        self.model = OnnxStyleModel(path, providers=providers, threads=threads)
        if not options.model and options.style not in self.model.styles:  # --style named the model itself
            options = replace(options, style=None)
        self.strength, self.preserve_color = check_strength(options.strength), options.preserve_color
        if options.border_pad is not None:
            self.model.border_pad = options.border_pad
        self.size = options.size
        n = len(self.model.styles)
        blend = options.blend or ({options.style: 1.0} if options.style else {self.model.styles[0]: 1.0})
        self.model.style_weights(blend)  # checks the names
        self.weights = np.zeros(n, np.float32)
        for k, v in blend.items():
            self.weights[self.model.styles.index(k)] = v
        self.weights /= self.weights.sum()
        self.target = int(self.weights.argmax())  # the style a blend is moving toward

    # The weights are replaced, never changed in place: a frame in a worker thread reads them
    # while a key press on the main thread moves them, and must see one blend or the other.
    def cycle(self, step: int = 1) -> None:
        n = len(self.weights)
        self.target = (int(self.weights.argmax()) + step) % n
        weights = np.zeros(n, np.float32)
        weights[self.target] = 1
        self.weights = weights

    def blend_step(self, amount: float = 0.25) -> None:
        """Move ``amount`` of the weight toward the target style; once it is reached, aim at the next."""
        n = len(self.weights)
        if n < 2:
            return
        weights = self.weights.copy()
        if weights[self.target] >= 1 - 1e-6:
            self.target = (self.target + 1) % n
        others = 1.0 - float(weights[self.target])
        moved = min(amount, others)
        for i in range(n):
            if i != self.target:
                weights[i] *= (others - moved) / others
        weights[self.target] += moved
        self.weights = weights

    def status(self) -> str:
        parts = [f"{s} {w:.0%}" for s, w in zip(self.model.styles, self.weights) if w > 0.01]
        return "style: " + " + ".join(parts)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        small = _resize_for_processing(frame, self.size)
        weights = self.weights[None] if self.model.conditional else None  # one read: see cycle()
        out = nchw_to_bgr(self.model.run(bgr_to_nchw(small), weights))
        return finish_style_bgr(resize_to(out, frame), frame, self.strength, self.preserve_color)


class _BackboneEffect(Effect):
    """Shared set-up of the effects that run a torch backbone at a reduced size."""

    default_size = 320
    layers: tuple[str, ...] = ()

    def __init__(self, options: EffectOptions):
        import torch

        from models.backbones import load_backbone

        if options.threads:
            torch.set_num_threads(options.threads)
        self.torch = torch
        self.model = load_backbone(options.backbone, options.weights)
        self.size = options.size or self.default_size
        layers = self.layers if options.backbone == "efficientnet_lite0" else tuple(
            n for n in self.model.layer_names if n.startswith("relu"))
        if options.layer:
            self.model.check_layers([options.layer])
            layers = (options.layer, *[l for l in layers if l != options.layer])
        self.layer_choices = list(layers)
        self.layer_index = 0

    @property
    def layer(self) -> str:
        return self.layer_choices[self.layer_index]

    def cycle(self, step: int = 1) -> None:
        self.layer_index = (self.layer_index + step) % len(self.layer_choices)
        self.reset()

    def to_tensor(self, frame: np.ndarray):
        return self.torch.from_numpy(bgr_to_nchw(_resize_for_processing(frame, self.size)))


@register
class SaliencyEffect(_BackboneEffect):
    """Heat map of |d class score / d pixel| over the frame, with the predicted class."""

    name = "saliency"
    default_size = 224
    modes = ("plain", "smoothgrad", "guided")

    def __init__(self, options: EffectOptions):
        super().__init__(options)
        if options.saliency_mode not in self.modes:
            raise ValueError(f"saliency mode must be one of {self.modes}")
        self.mode = options.saliency_mode
        self.target = options.target
        self.label = ""

    def cycle(self, step: int = 1) -> None:
        self.mode = self.modes[(self.modes.index(self.mode) + step) % len(self.modes)]

    def status(self) -> str:
        return f"saliency ({self.mode}): {self.label}"

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        from visualize.attribution import saliency

        x = self.to_tensor(frame)
        sal, cls = saliency(self.model, x, self.target, smooth_samples=4 if self.mode == "smoothgrad" else 0,
                            guided=self.mode == "guided")
        self.label = self.model.categories[cls]
        heat = sal[0].numpy()
        heat = cv2.GaussianBlur(heat, (0, 0), 2)
        out = overlay_heat(frame, heat / max(float(heat.max()), 1e-6), bgr=True)
        cv2.putText(out, self.label, (8, frame.shape[0] - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2,
                    cv2.LINE_AA)
        return out


@register
class DeepDreamEffect(_BackboneEffect):
    """A few DeepDream steps per frame, fed back over frames so the dream grows."""

    name = "deepdream"
    layers = ("block10", "block7", "block4", "block12")
    scene_change = 40.0  # mean absolute grey difference between frames that resets the dream
    feedback = 0.85  # share of the previous dream kept in each new frame

    def __init__(self, options: EffectOptions):
        from models.backbones import fast_frozen_copy, optimisation_memory_format

        super().__init__(options)
        self.steps = options.dream_steps
        self.generator = self.torch.Generator().manual_seed(0)
        # Folded, fused and in channels_last once, for every frame's steps
        self.fast_model = fast_frozen_copy(self.model)
        self.memory_format = optimisation_memory_format(None, self.torch.device("cpu"))
        self.reset()

    def reset(self) -> None:
        self.dream = None
        self.prev_grey: np.ndarray | None = None

    def status(self) -> str:
        return f"deepdream: {self.layer}"

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        from visualize.deepdream import dream_steps

        grey = cv2.cvtColor(cv2.resize(frame, (64, 48), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
        if self.prev_grey is not None and float(np.abs(grey.astype(np.float32) - self.prev_grey).mean()) > self.scene_change:
            self.dream = None
        self.prev_grey = grey.astype(np.float32)
        x = self.to_tensor(frame)
        if self.dream is not None and self.dream.shape == x.shape:
            x = self.feedback * self.dream + (1 - self.feedback) * x
        x = dream_steps(self.fast_model, x, self.layer, steps=self.steps, generator=self.generator,
                        memory_format=self.memory_format)
        self.dream = x
        return resize_to(nchw_to_bgr(x.numpy()), frame)


@register
class ActivationsEffect(_BackboneEffect):
    """A grid of a layer's activation maps, with the strongest channel enlarged beside it."""

    name = "activations"
    layers = ("block2", "block4", "block7", "stem", "block10", "block14")

    def status(self) -> str:
        return f"activations: {self.layer} (channel {getattr(self, 'channel', '-')})"

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        from visualize.activations import activation_maps, tile

        maps = activation_maps(self.model, self.to_tensor(frame), self.layer)
        self.channel = int(maps.mean(dim=(1, 2)).argmax())
        h, w = frame.shape[:2]
        grid_w = (2 * w) // 3
        grid = (tile(maps).numpy() * 255).astype(np.uint8)
        s = min(grid_w / grid.shape[1], h / grid.shape[0])
        grid = cv2.resize(grid, (max(1, int(grid.shape[1] * s)), max(1, int(grid.shape[0] * s))),
                          interpolation=cv2.INTER_NEAREST)
        out = np.zeros_like(frame)
        out[:grid.shape[0], :grid.shape[1]] = grid[..., None]
        side_w = w - grid_w
        big = (maps[self.channel].numpy() * 255).astype(np.uint8)
        big_h = min(h // 2, round(side_w * big.shape[0] / big.shape[1]))
        big = cv2.applyColorMap(cv2.resize(big, (side_w, big_h), interpolation=cv2.INTER_LINEAR), cv2.COLORMAP_VIRIDIS)
        out[:big_h, grid_w:] = big
        thumb_h = min(h - big_h, round(side_w * h / w))
        out[big_h:big_h + thumb_h, grid_w:] = cv2.resize(frame, (side_w, thumb_h), interpolation=cv2.INTER_AREA)
        return out
