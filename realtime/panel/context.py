"""What one served page holds: its limits, the user's style folder, its trainer and its live
style effects. ``build_app`` makes one and hands it to every tab; nothing is set at module level."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Limits:
    """What the page accepts: upload size (enforced by Gradio) and image resolution."""

    max_upload_mb: float = 20.0
    max_side: int = 1024
    max_gallery: int = 64


class LiveCache:
    """At most ``size`` objects by key, the least recently used dropped first.

    The webcam stream keeps one live style effect (with its engines) per style or blend: without a
    bound, every new slider blend on a long-running page would add one. Each entry has its own
    lock: one frame of it at a time."""

    def __init__(self, make: Callable[[tuple], object], size: int = 4):
        self.make, self.size = make, size
        self._items: OrderedDict[tuple, tuple[threading.Lock, object]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> tuple[threading.Lock, object]:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
            else:
                self._items[key] = (threading.Lock(), self.make(key))
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
            return self._items[key]

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class PanelContext:
    """One page's settings and state. ``styles_dir`` None: the user's style folder; ``preset``
    None: the quick training's defaults (``realtime.panel.trainer.Preset``)."""

    limits: Limits = field(default_factory=Limits)
    styles_dir: Path | None = None
    preset: object | None = None
    live_entries: int = 4
    _trainer: object | None = field(default=None, init=False, repr=False)

    def trainer(self):
        """The page's trainer (one training at a time), made on first use."""
        if self._trainer is None:
            from models.common.paths import user_styles_dir
            from realtime.panel.trainer import Trainer

            self._trainer = Trainer(Path(self.styles_dir) if self.styles_dir else user_styles_dir(), self.preset)
        return self._trainer

    def close(self) -> None:
        """Stop a training in progress (the page is going away)."""
        if self._trainer is not None:
            self._trainer.cancel(timeout=5)
