"""The effects that show what a CNN sees, live: saliency (four modes), DeepDream, activations.

Each runs a frozen ImageNet backbone (``models.backbones``) at a reduced size and draws its map
over the frame at the frame's size: the work is done small, the map is upsampled. torch is
imported when one is built, never by the style path. What makes them live:

- Forward-only work runs in the fast engines (``models.backbone_onnx``: the layer's graph on ONNX
  Runtime or OpenVINO, exported once per size and cached): activation maps, and ``gradcam`` on a
  network that ends in average pooling and one linear layer (EfficientNet-Lite0), where the class
  activation map equals Grad-CAM and needs no backward pass.
- Gradients (``plain``, ``smoothgrad``, ``guided`` saliency; DeepDream) run on a copy with the
  BatchNorms folded (and, but for guided backprop, each convolution fused with its ReLU6), in
  channels_last, with bf16 autocast on CPUs with AVX-512 BF16 or AMX.
- Work is spread over frames: SmoothGrad averages two noisy gradients per frame with those of the
  frames before (a running mean, reset when the scene changes); DeepDream takes one ascent step per
  frame on the previous dream warped to the new frame by optical flow, so the dream grows while the
  camera moves.
"""

from __future__ import annotations

import cv2
import numpy as np

from models.common.extras import require
from models.common.images import bgr_to_nchw, nchw_to_bgr, overlay_heat, resize_to
from realtime.effects.base import Effect, EffectOptions
from realtime.effects.style import resize_for_processing

SCENE_CHANGE = 40.0  # mean absolute grey difference (0-255) between frames that starts a map or dream afresh


def _small_grey(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.resize(frame, (64, 48), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY).astype(np.float32)


class BackboneEffect(Effect):
    """Shared set-up of the effects that run a torch backbone at a reduced size."""

    default_size = 320
    layers: tuple[str, ...] = ()

    def __init__(self, options: EffectOptions):
        require("visualize", f"the {self.name} effect")
        import torch

        from models.backbones import load_backbone
        from models.inference.precision import has_bf16

        if options.threads:
            torch.set_num_threads(options.threads)
        self.torch = torch
        self.model = load_backbone(options.backbone, options.weights)
        self.size = options.size or self.default_size
        self.threads = options.threads
        self.bf16 = has_bf16()
        layers = self.layers if options.backbone == "efficientnet_lite0" else tuple(
            n for n in self.model.layer_names if n.startswith("relu"))
        if options.layer:
            self.model.check_layers([options.layer])
            layers = (options.layer, *[l for l in layers if l != options.layer])
        self.layer_choices = list(layers)
        self.layer_index = 0
        self._prev_grey: np.ndarray | None = None

    @property
    def layer(self) -> str:
        return self.layer_choices[self.layer_index]

    def cycle(self, step: int = 1) -> None:
        self.layer_index = (self.layer_index + step) % len(self.layer_choices)
        self.reset()

    def reset(self) -> None:
        self._prev_grey = None

    def prepare(self, frame_hw: tuple[int, int], log=None, live: bool = False) -> None:
        """Before the first frame: export and open what the fast engine runs at this size (seconds,
        once per machine and size), so the first frames do not stall."""
        from realtime.effects.style import processing_hw

        self.warm(processing_hw(frame_hw, self.size, 0))

    def warm(self, hw: tuple[int, int]) -> None:
        """Build what frames of ``hw`` (the processing size) need; nothing by default."""

    def scene_changed(self, frame: np.ndarray) -> bool:
        """Whether ``frame`` differs from the one before by more than :data:`SCENE_CHANGE` (a cut)."""
        grey = _small_grey(frame)
        changed = self._prev_grey is not None and float(np.abs(grey - self._prev_grey).mean()) > SCENE_CHANGE
        self._prev_grey = grey
        return changed

    def small(self, frame: np.ndarray) -> np.ndarray:
        """``frame`` at the processing size, as float32 NCHW RGB [0, 1]."""
        return bgr_to_nchw(resize_for_processing(frame, self.size))

    def to_tensor(self, frame: np.ndarray):
        return self.torch.from_numpy(self.small(frame))

    def autocast(self):
        """bf16 autocast where the CPU computes bf16 natively; float32 elsewhere."""
        return self.torch.autocast("cpu", dtype=self.torch.bfloat16, enabled=self.bf16)

    def engine(self, layer: str, hw: tuple[int, int], logits: bool = False):
        """The layer's graph on the fast engine for inputs of ``hw``, exported once (cached per size)."""
        from models.backbone_onnx import export_tap

        return self._engine(("tap", layer, hw, logits), lambda: export_tap(self.model, layer, hw, logits), hw)

    def gradient_engine(self, objective: str, hw: tuple[int, int]):
        """The written-out input gradient (``models.input_gradient``) on the fast engine for one image
        of ``hw``; None where it is not written out for this network (VGG keeps PyTorch)."""
        from models.backbone_onnx import export_gradient
        from models.input_gradient import has_written_out_gradient

        if not has_written_out_gradient(self.model):
            return None
        return self._engine(("grad", objective, hw), lambda: export_gradient(self.model, objective, hw), hw)

    def _engine(self, key: tuple, export, hw: tuple[int, int]):
        from models.backbone_onnx import TapEngine

        engines = self.__dict__.setdefault("_engines", {})
        if key not in engines:
            engine = TapEngine(export(), self.threads)
            engine(np.zeros((1, 3, *hw), np.float32), class_weights=np.zeros((1, 1000), np.float32))  # opens, picks
            engines[key] = engine
        return engines[key]


class SaliencyEffect(BackboneEffect):
    """Heat map of what makes the network see its top class (or ``--target``), with the class name."""

    name = "saliency"
    default_size = 224
    modes = ("plain", "smoothgrad", "guided", "gradcam")
    smooth_per_frame = 2  # noisy samples per frame for SmoothGrad; the map is a running mean over frames
    smooth_memory = 0.75  # weight of the frames before in that running mean

    def __init__(self, options: EffectOptions):
        super().__init__(options)
        from models.backbones import fast_frozen_copy, fold_batchnorm

        if options.saliency_mode not in self.modes:
            raise ValueError(f"saliency mode must be one of {self.modes}")
        self.mode = options.saliency_mode
        self.target = options.target
        self.label = ""
        self.fast = fast_frozen_copy(self.model)  # folded and fused: plain gradients and SmoothGrad
        self.folded = fold_batchnorm(self.model)  # folded, its ReLU6 modules kept for guided backprop's hooks
        self.generator = self.torch.Generator().manual_seed(0)
        self._smooth: np.ndarray | None = None
        self._frames = 0  # seeds SmoothGrad's noise, one draw a frame
        self.cam_in_engine = self.model.pooled_linear_head  # CAM, a forward pass, equals Grad-CAM there

    def cycle(self, step: int = 1) -> None:
        self.mode = self.modes[(self.modes.index(self.mode) + step) % len(self.modes)]
        self.reset()

    def warm(self, hw: tuple[int, int]) -> None:
        if self.cam_in_engine:
            self.engine("head", hw, logits=True)
            for objective in ("class", "guided"):
                self.gradient_engine(objective, hw)

    def reset(self) -> None:
        super().reset()
        self._smooth = None

    def status(self) -> str:
        return f"saliency ({self.mode}): {self.label}"

    def _gradient(self, x, net, samples: int, noise: float = 0.3) -> np.ndarray:
        """max over channels of |d score / d pixel|, summed over ``samples`` noisy copies (0: the image)."""
        torch = self.torch
        target = self.target
        if target is None and samples:  # the class of the frame itself, not of a noisy copy
            with torch.no_grad(), self.autocast():
                target = int(net.classify(x.contiguous(memory_format=torch.channels_last)).float().argmax(1))
        grads = torch.zeros_like(x)
        for _ in range(max(1, samples)):
            xi = x + noise * torch.randn(x.shape, generator=self.generator) if samples else x.clone()
            xi = xi.contiguous(memory_format=torch.channels_last).requires_grad_(True)
            with self.autocast():
                logits = net.classify(xi)
            if target is None:
                target = int(logits.detach().float().argmax(1))
            (g,) = torch.autograd.grad(logits[:, target].float().sum(), xi)
            grads += g
        self._cls = target
        return grads.abs().amax(dim=1)[0].float().numpy()

    def _cam(self, x: np.ndarray) -> np.ndarray:
        if not self.cam_in_engine:  # Grad-CAM with a backward pass
            from visualize.attribution import grad_cam

            cam, self._cls = grad_cam(self.model, self.torch.from_numpy(x), self.target)
            return cam[0].numpy() if cam.dim() == 3 else cam.numpy()
        from models.backbone_onnx import class_weights

        feats, logits = self.engine("head", x.shape[-2:], logits=True)(x)
        self._cls = int(self.target if self.target is not None else logits[0].argmax())
        weights = self.__dict__.setdefault("_class_weights", class_weights(self.model))
        cam = np.maximum(np.einsum("c,chw->hw", weights[self._cls], feats[0]), 0)
        return cv2.resize(cam, (x.shape[-1], x.shape[-2]), interpolation=cv2.INTER_LINEAR)

    def _engine_gradient(self, x: np.ndarray, objective: str, noise: float = 0.3) -> np.ndarray | None:
        """max over channels of |gradient| from the written-out gradient graph: of the frame (``class``,
        ``guided``), or for SmoothGrad of the frame and one noisy copy of it; None without the graph."""
        engine = self.gradient_engine("guided" if objective == "guided" else "class", x.shape[-2:])
        if engine is None:
            return None
        weights = np.zeros((1, 1000), np.float32)
        if self.target is not None:
            weights[0, self.target] = 1
        if objective != "smoothgrad":
            g, logits = engine(x, class_weights=weights)
            self._cls = int(self.target if self.target is not None else logits[0].argmax())
            return np.abs(g[0]).max(axis=0)
        if self.target is None:  # the class of the frame itself (a forward pass), not of a noisy copy
            self._cls = int(self.engine("head", x.shape[-2:], logits=True)(x)[1][0].argmax())
        else:
            self._cls = self.target
        weights[0, self._cls] = 1
        rng = np.random.default_rng(self._frames)
        self._frames += 1
        g = sum(engine(x + noise * rng.standard_normal(x.shape).astype(np.float32), class_weights=weights)[0]
                for _ in range(self.smooth_per_frame))
        return np.abs(g[0]).max(axis=0)

    def heat(self, frame: np.ndarray) -> np.ndarray:
        """The map of the current mode at the processing size, (h, w) in [0, 1]."""
        x = self.small(frame)
        fast = None if self.mode == "gradcam" else self._engine_gradient(x, self.mode)
        if self.mode == "gradcam":
            heat = self._cam(x)
        elif fast is not None and self.mode != "smoothgrad":
            heat = fast
        elif self.mode == "guided":
            from visualize.attribution import guided_relus

            with guided_relus(self.folded):
                heat = self._gradient(self.torch.from_numpy(x), self.folded, 0)
        elif self.mode == "smoothgrad":
            heat = fast if fast is not None else self._gradient(self.torch.from_numpy(x), self.fast,
                                                                self.smooth_per_frame)
            heat = heat / max(float(heat.max()), 1e-12)
            if self.scene_changed(frame) or self._smooth is None or self._smooth.shape != heat.shape:
                self._smooth = heat
            else:
                self._smooth = self.smooth_memory * self._smooth + (1 - self.smooth_memory) * heat
            heat = self._smooth
        else:
            heat = self._gradient(self.torch.from_numpy(x), self.fast, 0)
        if self.mode != "gradcam":
            heat = cv2.GaussianBlur(heat, (0, 0), 2)
        return heat / max(float(heat.max()), 1e-6)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        heat = self.heat(frame)
        self.label = self.model.categories[self._cls]
        out = overlay_heat(frame, heat, bgr=True)
        cv2.putText(out, self.label, (8, frame.shape[0] - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2,
                    cv2.LINE_AA)
        return out


class DeepDreamEffect(BackboneEffect):
    """DeepDream that grows over frames: each frame, the previous dream warped to it by optical flow,
    blended with it, and ``--dream-steps`` ascent steps (default 1)."""

    name = "deepdream"
    layers = ("block10", "block7", "block4", "block12")
    feedback = 0.85  # share of the previous (warped) dream kept in each new frame
    step_size = 0.04  # mean pixel change of one ascent step: one step a frame shows the dream within a second

    def __init__(self, options: EffectOptions):
        super().__init__(options)  # first: it says which extra is missing before any torch import
        from models.backbones import fast_frozen_copy, optimisation_memory_format
        from realtime.stabilizer import new_dis

        self.steps = options.dream_steps
        self.generator = self.torch.Generator().manual_seed(0)
        # Folded, fused and in channels_last once, for every frame's steps
        self.fast_model = fast_frozen_copy(self.model)
        self.memory_format = optimisation_memory_format(None, self.torch.device("cpu"))
        self.dis = new_dis()
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.dream: np.ndarray | None = None  # the last dream, BGR uint8 at the processing size
        self.seen: np.ndarray | None = None  # the frame it was dreamt on, at that size

    def status(self) -> str:
        return f"deepdream: {self.layer}"

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        from realtime.stabilizer import backward_flow, warp
        from visualize.deepdream import dream_steps

        small = resize_for_processing(frame, self.size)
        start = small
        if self.scene_changed(frame) or self.dream is None or self.dream.shape != small.shape:
            self.dream = None
        else:  # where each pixel was a frame ago: the dream follows the camera
            flow = backward_flow(self.dis, small, self.seen, (small.shape[1], small.shape[0]))
            warped = warp(self.dream, flow)
            start = cv2.addWeighted(warped, self.feedback, small, 1 - self.feedback, 0)
        x = bgr_to_nchw(start)
        engine = self.gradient_engine(f"dream:{self.layer}", x.shape[-2:])
        if engine is not None:
            x = self._ascend(engine, x)
        else:  # a network whose gradient is not written out: PyTorch
            with self.autocast():
                x = dream_steps(self.fast_model, self.torch.from_numpy(x), self.layer, steps=self.steps,
                                lr=self.step_size, generator=self.generator,
                                memory_format=self.memory_format).float().numpy()
        self.dream, self.seen = nchw_to_bgr(x), small
        return resize_to(self.dream, frame)

    def warm(self, hw: tuple[int, int]) -> None:
        self.gradient_engine(f"dream:{self.layer}", hw)

    def _ascend(self, engine, x: np.ndarray, jitter: int = 8) -> np.ndarray:
        """``--dream-steps`` jittered, normalised ascent steps (``visualize.deepdream.dream_steps``'s
        rule) with the written-out gradient of the layer's mean squared activation."""
        for _ in range(self.steps):
            dy, dx = (int(v) for v in self.torch.randint(-jitter, jitter + 1, (2,), generator=self.generator))
            rolled = np.roll(x, (dy, dx), axis=(2, 3))
            (g, _) = engine(rolled)
            rolled = rolled + self.step_size * g / max(float(np.abs(g).mean()), 1e-8)
            x = np.clip(np.roll(rolled, (-dy, -dx), axis=(2, 3)), 0, 1)
        return np.ascontiguousarray(x, dtype=np.float32)


class ActivationsEffect(BackboneEffect):
    """A grid of a layer's activation maps, with the strongest channel enlarged beside it."""

    name = "activations"
    layers = ("block2", "block4", "block7", "stem", "block10", "block14")

    def warm(self, hw: tuple[int, int]) -> None:
        self.engine(self.layer, hw)

    def maps(self, frame: np.ndarray) -> np.ndarray:
        """The layer's maps (C, h, w), each scaled to [0, 1], from the fast engine."""
        x = self.small(frame)
        (a,) = self.engine(self.layer, x.shape[-2:])(x)
        a = a[0]
        lo, hi = a.min(axis=(1, 2), keepdims=True), a.max(axis=(1, 2), keepdims=True)
        return (a - lo) / np.maximum(hi - lo, 1e-6)

    def status(self) -> str:
        return f"activations: {self.layer} (channel {getattr(self, 'channel', '-')})"

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        from visualize.activations import tile

        maps = self.maps(frame)
        self.channel = int(maps.mean(axis=(1, 2)).argmax())
        h, w = frame.shape[:2]
        grid_w = (2 * w) // 3
        grid = (tile(self.torch.from_numpy(maps)).numpy() * 255).astype(np.uint8)
        s = min(grid_w / grid.shape[1], h / grid.shape[0])
        grid = cv2.resize(grid, (max(1, int(grid.shape[1] * s)), max(1, int(grid.shape[0] * s))),
                          interpolation=cv2.INTER_NEAREST)
        out = np.zeros_like(frame)
        out[:grid.shape[0], :grid.shape[1]] = grid[..., None]
        side_w = w - grid_w
        big = (maps[self.channel] * 255).astype(np.uint8)
        big_h = min(h // 2, round(side_w * big.shape[0] / big.shape[1]))
        big = cv2.applyColorMap(cv2.resize(big, (side_w, big_h), interpolation=cv2.INTER_LINEAR), cv2.COLORMAP_VIRIDIS)
        out[:big_h, grid_w:] = big
        thumb_h = min(h - big_h, round(side_w * h / w))
        out[big_h:big_h + thumb_h, grid_w:] = cv2.resize(frame, (side_w, thumb_h), interpolation=cv2.INTER_AREA)
        return out
