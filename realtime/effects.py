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
from pathlib import Path

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
    workers: int | None = None  # frames the style effect runs at once; None: measured (live), else 2 on a CPU
    backend: str = "auto"  # auto | onnxruntime | openvino: the style network's CPU engine; auto: a cached probe
    min_size: int = 320  # the adaptive live path never processes below this longer side (unless --size)
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

    def cycle(self, step: int = 1) -> str | None:
        """Step the effect's main choice (style, layer, mode).

        Returns a line for the log when it moved to another network, which the runner then
        prepares again on its next frame (styles only); None otherwise.
        """
        return None

    def blend_step(self, amount: float = 0.25) -> None:
        """Move a blend toward the next choice (styles only)."""

    def step_strength(self, step: float) -> None:
        """Move the strength of the effect by ``step`` within [0, 1] (styles only)."""

    def toggle_color(self) -> None:
        """Keep the frame's colours, or stop keeping them (styles only)."""

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


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def style_workers(options: EffectOptions, providers: Sequence[str] | None) -> tuple[int, int | None]:
    """Frames in flight and onnxruntime threads per frame for the style effect.

    On a CPU the style networks scale poorly across cores within one frame (the instance norms
    and layout changes run on one core: lite at 640x480 took 95 ms on one core and 65 ms on
    two), so two frames at once, one core each, give more frames per second for a little more
    latency. A GPU runs one frame at a time.
    """
    from models.onnx_style import default_providers

    cores = _cores()
    on_gpu = "CUDAExecutionProvider" in (providers or default_providers())
    workers = options.workers or (1 if on_gpu or cores < 2 else 2)
    threads = options.threads or (max(1, cores // workers) if workers > 1 else None)
    return workers, threads


def _processing_hw(frame_hw: tuple[int, int], size: int | None, margin: int) -> tuple[int, int]:
    """Height and width the network sees for a frame: resized as :func:`_resize_for_processing`, plus the margin."""
    h, w = frame_hw
    if size and max(h, w) != size:
        s = size / max(h, w)
        h, w = max(16, round(h * s)), max(16, round(w * s))
    return h + 2 * margin, w + 2 * margin


def style_siblings(path: str | os.PathLike) -> list[tuple[Path, str]]:
    """The same style in networks of other sizes, best first, (file, arch) with ``path`` first.

    A shipped model's manifest entry may list them (``"siblings": [names]``); otherwise the shipped
    models with the same styles are its siblings, ``lite`` before ``tiny``. A user's own file has none.
    """
    from models import zoo

    path = Path(path).resolve()
    entries = zoo.manifest()["models"]
    mine = _shipped_entry(path)
    if mine is None:
        return [(path, "")]
    order = {"johnson": 0, "c32": 1, "lite": 2, "tiny": 3}
    if "siblings" in mine:
        others = [e for e in entries if e["name"] in mine["siblings"]]
    else:
        others = [e for e in entries if e is not mine and e.get("styles") == mine.get("styles")]
    others = [e for e in others if order.get(e.get("arch"), 9) > order.get(mine.get("arch"), 9)]
    others.sort(key=lambda e: order.get(e.get("arch"), 9))
    return [(path, mine.get("arch", ""))] + [(zoo.ZOO_DIR / e["file"], e.get("arch", "")) for e in others]


def style_cycle(current: Path) -> list[Path]:
    """The models ``n``/``p`` step through, in :func:`models.zoo.catalogue`'s order (shipped, then the
    user's): one network per set of shipped styles (the smaller siblings are the ladder's to choose),
    ``current`` always among them; empty when ``current`` is not in the catalogue (a file of the user's)."""
    from models import zoo

    current = Path(current).resolve()
    order, seen = [], set()
    for m in zoo.catalogue():
        path = m["path"].resolve()
        styles = tuple(s["name"] for s in m["styles"])
        if m["origin"] == "shipped" and styles in seen and path != current:
            continue
        seen.add(styles)
        if path not in order:
            order.append(path)
    return order if current in order else []


def _shipped_entry(path: str | os.PathLike) -> dict | None:
    """The shipped manifest's entry of the model in ``path``; None for a file that is not shipped."""
    from models import zoo

    path = Path(path).resolve()
    return next((e for e in zoo.manifest()["models"] if (zoo.ZOO_DIR / e["file"]).resolve() == path), None)


def _shipped_margin(path: Path) -> int:
    """The mirrored margin a shipped model runs on (its manifest's ``border_pad``; 0 if none)."""
    return int((_shipped_entry(path) or {}).get("border_pad", 0))


# Cost of a network relative to ``lite`` before it is measured (onnxruntime and OpenVINO at 640x480).
ARCH_COST = {"johnson": 4.0, "c32": 1.4, "lite": 1.0, "tiny": 0.45}


@register
class StyleEffect(Effect):
    """Fast style transfer with an ONNX model; blends styles of a conditional model live.

    On a live run the runner asks it for its quality ladder (:meth:`ladder`) and moves it along
    with :meth:`apply`; each (network, backend, workers) keeps its own session once built.
    """

    name = "style"

    def __init__(self, options: EffectOptions):
        from models import zoo
        from models.onnx_style import OnnxStyleModel, default_providers, providers_for

        self.providers = providers_for(options.provider)
        self.on_gpu = "CUDAExecutionProvider" in (self.providers or default_providers())
        self.workers, threads = style_workers(options, self.providers)
        path = Path(zoo.resolve_model(options.model, options.style))  # a file, or a shipped or user style's name
        model = OnnxStyleModel(path, providers=self.providers, threads=threads)  # errors name the file as given
        self.path = path.resolve()  # as the catalogue's paths are, for n/p
        self.pinned = self.path if options.model else None  # --model: the ladder keeps this network
        if not options.model and options.style not in model.styles:  # --style named the model itself
            options = replace(options, style=None)
        self.options = options
        self.strength, self.preserve_color = check_strength(options.strength), options.preserve_color
        model.backend = "onnxruntime"
        self._own_margins = {self.path: model.border_pad}  # each model's margin as shipped
        self._engines = {(self.path, "onnxruntime", self.workers): model}
        self._backend: dict[Path, str] = {}  # the engine chosen for each network file
        blend = options.blend or ({options.style: 1.0} if options.style else {model.styles[0]: 1.0})
        model.style_weights(blend)  # checks the names
        weights = np.zeros(len(model.styles), np.float32)
        for k, v in blend.items():
            weights[model.styles.index(k)] = v
        self._use(model, weights / weights.sum())

    def _use(self, model, weights: np.ndarray) -> None:
        """Run ``model`` (the network of :attr:`path`) with ``weights`` from the next frame on, at the
        user's size and margin: the state of a freshly chosen model, before the runner prepares it."""
        self._look = (model, weights)
        self.own_margin = self._own_margins[self.path]
        self.margin = self.own_margin if self.options.border_pad is None else self.options.border_pad
        model.border_pad = self.margin
        self.network = self.path.stem
        self.size = self.options.size
        self.target = int(weights.argmax())  # the style a blend is moving toward
        self.probe_seconds: dict[str, float] = {}  # the backend probe's time per frame at the first size
        self._networks: dict[str, Path] = {self.network: self.path}

    # The network and the style weights are replaced together, never changed in place: a frame in a
    # worker thread reads them once (__call__) while a key press on the main thread moves them, and
    # must see one choice or the other, never the weights of one model with another model.
    @property
    def model(self):
        return self._look[0]

    @model.setter
    def model(self, model) -> None:
        self._look = (model, self._look[1])

    @property
    def weights(self) -> np.ndarray:
        return self._look[1]

    @weights.setter
    def weights(self, weights: np.ndarray) -> None:
        self._look = (self._look[0], weights)

    # engines and the adaptive ladder ----------------------------------------------------------
    def _engine(self, path: Path, workers: int, sibling: bool = True):
        """The model for ``path`` on its chosen backend, with threads for ``workers`` frames at once;
        a ``sibling`` must hold the current model's styles."""
        from models.backends import load_style_model

        backend = self._backend.get(path, "onnxruntime")
        key = (path, backend, workers)
        if key not in self._engines:
            threads = self.options.threads
            if not threads and workers > 1:
                threads = max(1, _cores() // workers)
            model = load_style_model(path, backend, self.providers, threads, streams=workers)
            if sibling and model.styles != self.model.styles:
                from models.errors import InputFileError

                raise InputFileError(path, f"holds the styles {model.styles}, not {self.model.styles}")
            self._own_margins.setdefault(path, model.border_pad)
            self._engines[key] = model
        return self._engines[key]

    def prepare(self, frame_hw: tuple[int, int], log=None, live: bool = False) -> None:
        """Pick the backend for the current network at the size frames will be processed (first frame).

        ``--backend auto`` on a CPU: a probe (cached); a GPU keeps onnxruntime. ``live``: the
        adaptive path starts with one worker (lowest latency) unless ``--workers`` says otherwise.
        """
        if live and not self.options.workers:
            self.workers = 1
        from models.backends import openvino_available, probe_backends

        choice, fresh = self.options.backend, False
        if choice == "auto":
            if self.on_gpu or not openvino_available():
                choice = "onnxruntime"
            else:
                hw = _processing_hw(frame_hw, self.size, self.margin)
                threads = self.options.threads or (None if self.workers == 1 else max(1, _cores() // self.workers))
                choice, self.probe_seconds, built = probe_backends(self.path, hw, threads, log=log)
                fresh = bool(built)  # measured just now, not read from the cache
                if choice in built and self.workers == 1:
                    built[choice].border_pad = self.margin
                    self._engines[(self.path, choice, 1)] = built[choice]
        elif choice == "openvino" and self.on_gpu:
            choice = "onnxruntime"  # CUDA stays with onnxruntime-gpu
        if choice not in ("onnxruntime", "openvino"):
            from models.errors import UserError

            raise UserError(f"unknown backend {choice!r}; choose auto, onnxruntime or openvino")
        self._backend[self.path] = choice
        self.model = self._engine(self.path, self.workers)
        self.model.border_pad = self.margin
        if live and not fresh:  # time it now, on this machine as loaded now (a cached probe may be old)
            from models.backends import time_model

            self.probe_seconds = {choice: time_model(self.model, _processing_hw(frame_hw, self.size, 0), runs=1)}

    @property
    def backend(self) -> str:
        return getattr(self.model, "backend", "onnxruntime")

    def ladder(self, frame_hw: tuple[int, int], target_fps: float):
        """(rungs best first, allowed worker counts, starting setting) within what the user pinned.

        Call after :meth:`prepare`. ``--size``, ``--model``, ``--border-pad`` and ``--workers``
        each leave one value. The start is the best rung the probe predicts to fit the target.
        """
        from realtime.adaptive import Setting, build_ladder, size_steps

        o = self.options
        longest = max(frame_hw)
        sizes = [o.size] if o.size else size_steps(longest, o.min_size)
        if self.path == self.pinned or self.on_gpu:
            networks = [(self.path, "")]
        else:
            networks = style_siblings(self.path)
        first = ARCH_COST.get(networks[0][1], 1.0)
        self._networks = {p.stem: p for p, _ in networks}
        costs = [(p.stem, ARCH_COST.get(a, 1.0) / first) for p, a in networks]
        if o.border_pad is not None:  # pinned: every network at the user's margin
            margins = [self.margin]
        else:  # each network at its own margin (a sibling may be zero-padded, the first not), then less
            costs = [costs[0]] + [(n, c, _shipped_margin(p)) for (n, c), (p, _) in zip(costs[1:], networks[1:])]
            last = costs[-1][2] if len(costs) > 1 else self.margin
            margins = [self.margin] + ([last // 2, 0] if last else [])
        rungs = build_ladder(frame_hw, sizes, costs, margins)
        workers = [o.workers] if o.workers else ([1] if self.on_gpu else [1, 2])
        start = rungs[0]
        if self.probe_seconds:  # the best rung whose network time leaves 40% of a frame for the rest
            at_first = min(self.probe_seconds.values())  # measured at rung 0's size and margin
            start = next((r for r in rungs if at_first * r.cost <= 0.6 / target_fps), rungs[-1])
        return rungs, workers, Setting(start, workers[0])

    def apply(self, setting) -> None:
        """Process from now on at ``setting`` (a :class:`realtime.adaptive.Setting`)."""
        rung = setting.rung
        path = self._networks.get(rung.network, self.path)
        if path not in self._backend:  # a sibling: the engine its parent's probe chose
            self._backend[path] = self._backend.get(self.path, "onnxruntime")
        model = self._engine(path, setting.workers)
        model.border_pad = rung.margin
        self.model, self.network, self.margin = model, rung.network, rung.margin
        self.size = rung.size
        self.workers = setting.workers

    def describe(self, setting=None) -> str:
        """What the HUD and the summary say about a choice (default: the current one)."""
        if setting is None:
            size, network, backend, workers, margin = self.size, self.network, self.backend, self.workers, self.margin
        else:
            rung = setting.rung
            size, network, margin, workers = rung.size, rung.network, rung.margin, setting.workers
            backend = self._backend.get(self._networks.get(network, self.path), "onnxruntime")
        return (f"{size or 'full'} px, {network}, {backend}, {workers} worker{'s' if workers > 1 else ''}"
                + (f", margin {margin}" if margin != self.own_margin else ""))

    # Every setting a key moves is replaced, never changed in place (see model and weights).
    def cycle(self, step: int = 1) -> str | None:
        """The next (``step`` +1) or previous (-1) style of this model; past its last (or first), the
        next (previous) model of :func:`style_cycle`, whose first (last) style it starts with.

        A file of the user's outside the catalogue (``--model FILE.onnx``) cycles within its own
        styles. Returns the log line of a model switch (the runner then prepares the model again).
        """
        n = len(self.weights)
        target = int(self.weights.argmax()) + step
        if not 0 <= target < n:
            order = style_cycle(self.path)
            if len(order) > 1:
                return self._switch(order[(order.index(self.path) + step) % len(order)], step)
        self.target = target % n
        weights = np.zeros(n, np.float32)
        weights[self.target] = 1
        self.weights = weights
        return None

    def _switch(self, path: Path, step: int) -> str:
        """Move to the model in ``path`` at its first style (``step`` > 0) or its last; the sessions
        opened for the models before are kept, so coming back is instant."""
        opened = [k for k in self._engines if k[0] == path and k[1] == self._backend.get(path, "onnxruntime")]
        model = self._engines[opened[0]] if opened else self._engine(path, self.workers, sibling=False)
        weights = np.zeros(len(model.styles), np.float32)
        weights[0 if step > 0 else -1] = 1
        self.path = path
        self._use(model, weights)
        return f"style: {model.styles[self.target]} ({path.stem})"

    def step_strength(self, step: float) -> None:
        self.strength = min(1.0, max(0.0, round(self.strength + step, 2)))

    def toggle_color(self) -> None:
        self.preserve_color = not self.preserve_color

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
        model, weights = self._look
        parts = [f"{s} {w:.0%}" for s, w in zip(model.styles, weights) if w > 0.01]
        return ("style: " + " + ".join(parts) + f"; strength {self.strength:.0%}"
                + (", colour kept" if self.preserve_color else ""))

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        small = _resize_for_processing(frame, self.size)
        model, weights = self._look  # one read: see model and weights
        out = nchw_to_bgr(model.run(bgr_to_nchw(small), weights[None] if model.conditional else None))
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
