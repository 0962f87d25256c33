"""What an effect is and what the runner may ask of it.

An effect maps one BGR uint8 frame to a BGR uint8 frame of the same size. Every effect answers
the runner's questions through these methods (their defaults say "nothing to do"), so the
runner never probes for attributes:

- :class:`Effect`: the frame, the ``n``/``p`` choice (:meth:`Effect.cycle`), the HUD line, the
  keys of the style effect (strength, colour, blend; no-ops elsewhere), and :meth:`Effect.prepare`
  on the first frame.
- :class:`LadderEffect`: an effect with a quality ladder (the style effect), which
  :class:`realtime.adaptive.Adapter` moves along it to hold a frame rate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class EffectOptions:
    """Everything an effect may be configured with (from CLI flags or the page)."""

    model: str | None = None  # ONNX style model; None: the shipped default
    provider: str = "auto"  # auto | cpu | cuda
    style: str | None = None
    blend: dict[str, float] = field(default_factory=dict)
    size: int | None = None  # processing size: longer side, resized back after
    backbone: str = "efficientnet_lite0"
    weights: str | None = None
    layer: str | None = None
    target: int | None = None  # ImageNet class for saliency; None: the top class
    saliency_mode: str = "plain"  # plain | smoothgrad | guided | gradcam
    dream_steps: int = 1
    threads: int | None = None
    border_pad: int | None = None  # mirrored margin around style frames; None: the model's own
    workers: int | None = None  # frames the style effect runs at once; None: measured (live), else 2 on a CPU
    backend: str = "auto"  # auto | onnxruntime | openvino: the style network's CPU engine; auto: a cached probe
    precision: str = "auto"  # auto | fp32 | bf16 | int8: auto lets the probe pick within the PSNR budget
    min_size: int = 320  # the adaptive live path never processes below this longer side (unless --size)
    strength: float = 1.0  # style effect: 0 the frame, 1 the full style (models.inference.finish)
    preserve_color: bool = False  # style effect: keep the frame's colours


class Effect:
    """Base class: ``__call__(frame) -> frame`` with the frame's size kept."""

    name = "effect"
    # How many frames the runner may give this effect at once, from as many threads; more than
    # one only where __call__ is thread-safe and the frames do not depend on each other.
    workers = 1

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def prepare(self, frame_hw: tuple[int, int], log: Callable[[str], None] | None = None,
                live: bool = False) -> None:
        """Called once before the first frame of size ``frame_hw`` (and again after a switch of network)."""

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
        """The HUD's first line: what the effect shows."""
        return self.name

    def describe(self) -> str | None:
        """What it runs on (size, network, engine) for the HUD and the summary; None: nothing to say."""
        return None

    def reset(self) -> None:
        """Forget state carried over frames."""


class LadderEffect(Effect):
    """An effect with a quality ladder: :class:`realtime.adaptive.Adapter` builds it from
    :meth:`ladder` on the first frame and moves the effect along it with :meth:`apply`."""

    def ladder(self, frame_hw: tuple[int, int], target_fps: float):
        """(rungs best first, allowed worker counts, starting setting); see :mod:`realtime.adaptive`."""
        raise NotImplementedError

    def apply(self, setting) -> None:
        """Process from now on at ``setting`` (a :class:`realtime.adaptive.Setting`)."""
        raise NotImplementedError

    def describe(self, setting=None) -> str:  # type: ignore[override]
        """What a setting (default: the current one) runs: size, network, engine, workers."""
        raise NotImplementedError
