"""The effects that show what a CNN sees, live: saliency, DeepDream, activations.

Each runs a frozen ImageNet backbone (``models.backbones``) at a reduced size; torch is
imported when one is built, never by the style path.
"""

from __future__ import annotations

import cv2
import numpy as np

from models.common.extras import require
from models.common.images import bgr_to_nchw, nchw_to_bgr, overlay_heat, resize_to
from realtime.effects.base import Effect, EffectOptions
from realtime.effects.style import resize_for_processing


class BackboneEffect(Effect):
    """Shared set-up of the effects that run a torch backbone at a reduced size."""

    default_size = 320
    layers: tuple[str, ...] = ()

    def __init__(self, options: EffectOptions):
        require("visualize", f"the {self.name} effect")
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
        return self.torch.from_numpy(bgr_to_nchw(resize_for_processing(frame, self.size)))



class SaliencyEffect(BackboneEffect):
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



class DeepDreamEffect(BackboneEffect):
    """A few DeepDream steps per frame, fed back over frames so the dream grows."""

    name = "deepdream"
    layers = ("block10", "block7", "block4", "block12")
    scene_change = 40.0  # mean absolute grey difference between frames that resets the dream
    feedback = 0.85  # share of the previous dream kept in each new frame

    def __init__(self, options: EffectOptions):
        super().__init__(options)  # first: it says which extra is missing before any torch import
        from models.backbones import fast_frozen_copy, optimisation_memory_format

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



class ActivationsEffect(BackboneEffect):
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
