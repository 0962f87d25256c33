"""The ``style`` effect: fast style transfer with an ONNX model, live styles and blends.

It needs only the inference layer (ONNX Runtime or OpenVINO), never torch. On a live run it is
a :class:`LadderEffect`: its ladder holds the processing sizes, the cheaper shipped networks of
the same style (the catalogue's siblings) and smaller margins; each (network, backend, workers)
keeps its own engine once built.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from models import catalogue
from models.common.errors import InputFileError, UserError
from models.common.images import bgr_to_nchw, nchw_to_bgr, resize_max_side, resize_to
from models.inference.finish import check_strength, finish_style_bgr
from realtime.effects.base import EffectOptions, LadderEffect


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def resize_for_processing(frame: np.ndarray, size: int | None) -> np.ndarray:
    """``frame`` at the processing size (its longer side ``size``; as it is when None)."""
    return resize_max_side(frame, size, enlarge=True, min_side=16)


def style_workers(options: EffectOptions, providers: Sequence[str] | None) -> tuple[int, int | None]:
    """Frames in flight and engine threads per frame for the style effect.

    On a CPU the style networks scale poorly across cores within one frame (the instance norms
    and layout changes run on one core: lite at 640x480 took 95 ms on one core and 65 ms on
    two), so two frames at once, one core each, give more frames per second for a little more
    latency. A GPU runs one frame at a time.
    """
    from models.inference.onnx_style import default_providers

    n = cores()
    on_gpu = "CUDAExecutionProvider" in (providers or default_providers())
    workers = options.workers or (1 if on_gpu or n < 2 else 2)
    threads = options.threads or (max(1, n // workers) if workers > 1 else None)
    return workers, threads


def processing_hw(frame_hw: tuple[int, int], size: int | None, margin: int) -> tuple[int, int]:
    """Height and width the network sees for a frame: resized as :func:`resize_for_processing`, plus the margin."""
    h, w = frame_hw
    if size and max(h, w) != size:
        s = size / max(h, w)
        h, w = max(16, round(h * s)), max(16, round(w * s))
    return h + 2 * margin, w + 2 * margin


class StyleEffect(LadderEffect):
    """Fast style transfer with an ONNX model; blends styles of a conditional model live."""

    name = "style"

    def __init__(self, options: EffectOptions):
        from models.inference.onnx_style import OnnxStyleModel, default_providers, providers_for

        self.providers = providers_for(options.provider)
        self.on_gpu = "CUDAExecutionProvider" in (self.providers or default_providers())
        self.workers, threads = style_workers(options, self.providers)
        path = Path(catalogue.resolve_model(options.model, options.style))  # a file, or a style's name
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
        from models.inference.backends import load_style_model

        backend = self._backend.get(path, "onnxruntime")
        key = (path, backend, workers)
        if key not in self._engines:
            threads = self.options.threads
            if not threads and workers > 1:
                threads = max(1, cores() // workers)
            model = load_style_model(path, backend, self.providers, threads, streams=workers)
            if sibling and model.styles != self.model.styles:
                raise InputFileError(path, f"holds the styles {model.styles}, not {self.model.styles}")
            self._own_margins.setdefault(path, model.border_pad)
            self._engines[key] = model
        return self._engines[key]

    def prepare(self, frame_hw: tuple[int, int], log: Callable[[str], None] | None = None,
                live: bool = False) -> None:
        """Pick the backend for the current network at the size frames will be processed (first frame).

        ``--backend auto`` on a CPU: a probe (cached); a GPU keeps onnxruntime. ``live``: the
        adaptive path starts with one worker (lowest latency) unless ``--workers`` says otherwise.
        """
        if live and not self.options.workers:
            self.workers = 1
        from models.inference.backends import openvino_available, probe_backends, split_backend, time_model

        choice, precision = self.options.backend, self.options.precision
        if self.on_gpu:
            choice = "onnxruntime"  # CUDA stays with onnxruntime-gpu, in fp32
        elif choice == "auto" or precision != "fp32":
            if choice == "openvino" and not openvino_available():
                raise UserError("--backend openvino needs the openvino package: pip install openvino")
            hw = processing_hw(frame_hw, self.size, self.margin)
            threads = self.options.threads or (None if self.workers == 1 else max(1, cores() // self.workers))
            choice, self.probe_seconds, built = probe_backends(self.path, hw, threads, log=log, precision=precision,
                                                               engine=None if choice == "auto" else choice)
            if choice in built and self.workers == 1:
                built[choice].border_pad = self.margin
                self._engines[(self.path, choice, 1)] = built[choice]
        split_backend(choice)  # one clear error for a name it does not know
        self._backend[self.path] = choice
        self.model = self._engine(self.path, self.workers)
        self.model.border_pad = self.margin
        if live:  # time it now, on this machine as loaded now (a cached probe may be old): the median of
            # three runs, where one run on a shared machine picked the start from a single sample
            self.probe_seconds = {choice: time_model(self.model, processing_hw(frame_hw, self.size, 0), runs=3,
                                                     typical=True)}

    @property
    def backend(self) -> str:
        return getattr(self.model, "backend", "onnxruntime")

    def _sibling_networks(self) -> list[tuple[Path, str, int]]:
        """(file, architecture, own margin) of the networks the ladder may use, best first."""
        if self.path == self.pinned or self.on_gpu:
            return [(self.path, "", self.margin)]
        found = catalogue.siblings(self.path)
        if not found:  # a file of the user's: its own network only
            return [(self.path, "", self.margin)]
        return [(e.path.resolve(), e.arch or "", e.border_pad) for e in found]

    def ladder(self, frame_hw: tuple[int, int], target_fps: float):
        """(rungs best first, allowed worker counts, starting setting) within what the user pinned.

        Call after :meth:`prepare`. ``--size``, ``--model``, ``--border-pad`` and ``--workers``
        each leave one value. The start is the best rung the probe predicts to fit the target.
        """
        from realtime.adaptive import Setting, build_ladder, size_steps

        o = self.options
        sizes = [o.size] if o.size else size_steps(max(frame_hw), o.min_size)
        networks = self._sibling_networks()
        first = catalogue.ARCH_COST.get(networks[0][1], 1.0)
        self._networks = {p.stem: p for p, _, _ in networks}
        costs: list[tuple] = [(p.stem, catalogue.ARCH_COST.get(a, 1.0) / first) for p, a, _ in networks]
        if o.border_pad is not None:  # pinned: every network at the user's margin
            margins = [self.margin]
        else:  # each network at its own margin (a sibling may be zero-padded, the first not), then less
            costs = [costs[0]] + [(n, c, m) for (n, c), (_, _, m) in zip(costs[1:], networks[1:])]
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
        next (previous) model of :func:`models.catalogue.style_cycle`, whose first (last) style it starts with.

        A file of the user's outside the catalogue (``--model FILE.onnx``) cycles within its own
        styles. Returns the log line of a model switch (the runner then prepares the model again).
        """
        n = len(self.weights)
        target = int(self.weights.argmax()) + step
        if not 0 <= target < n:
            order = catalogue.style_cycle(self.path)
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
        small = resize_for_processing(frame, self.size)
        model, weights = self._look  # one read: see model and weights
        out = nchw_to_bgr(model.run(bgr_to_nchw(small), weights[None] if model.conditional else None))
        return finish_style_bgr(resize_to(out, frame), frame, self.strength, self.preserve_color)
