"""Live effects, named in one registry (:data:`EFFECTS`) for the CLI, the keys and the page.

Each effect maps a BGR uint8 frame to a BGR uint8 frame of the same size
(:mod:`realtime.effects.base` says what the runner may ask of one). ``style`` needs only the
inference layer; ``saliency``, ``deepdream`` and ``activations`` load a torch backbone when
they are built.
"""

from __future__ import annotations

from collections.abc import Callable

from realtime.effects.backbone import ActivationsEffect, DeepDreamEffect, SaliencyEffect
from realtime.effects.base import Effect, EffectOptions, LadderEffect
from realtime.effects.style import StyleEffect


class NoEffect(Effect):
    """The raw frame, for comparison."""

    name = "none"

    def __init__(self, options: EffectOptions | None = None):
        pass

    def __call__(self, frame):
        return frame


EFFECTS: dict[str, Callable[[EffectOptions], Effect]] = {}


def register(cls: type[Effect]) -> type[Effect]:
    """Name ``cls`` in :data:`EFFECTS` by its ``name``."""
    EFFECTS[cls.name] = cls
    return cls


for _cls in (NoEffect, StyleEffect, SaliencyEffect, DeepDreamEffect, ActivationsEffect):
    register(_cls)


def create_effect(name: str, options: EffectOptions | None = None) -> Effect:
    try:
        factory = EFFECTS[name]
    except KeyError:
        raise ValueError(f"unknown effect {name!r}; effects: {sorted(EFFECTS)}") from None
    return factory(options or EffectOptions())


__all__ = ["EFFECTS", "Effect", "EffectOptions", "LadderEffect", "create_effect", "register"]
