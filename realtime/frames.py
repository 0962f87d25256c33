"""The two ends of a stream: a :class:`Frame`, the :class:`Source` base that yields them and the
:class:`Sink` base that takes them. Sources and sinks of every kind (cameras, folders, video
files, windows) build on these, so no module of them needs another."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Frame:
    """A captured frame: BGR uint8 HWC, its sequence number, capture time (perf_counter) and
    presentation time in seconds from the start of its file (None for sources without one)."""

    image: np.ndarray
    index: int
    captured: float
    pts: float | None = None


class Source:
    """A stream of BGR frames. ``read()`` returns None at the end of the stream."""

    fps: float = 30.0
    live: bool = False  # a camera or stream delivers frames at its own pace
    name: str = "source"

    def read(self) -> np.ndarray | None:
        raise NotImplementedError

    def read_timed(self) -> tuple[np.ndarray, float | None] | None:
        """The next frame and its presentation time in seconds (None where the source has none)."""
        image = self.read()
        return None if image is None else (image, None)

    def reopen(self) -> bool:
        """Try to reconnect a live source that stopped giving frames; True when it is back."""
        return False

    def close(self) -> None:
        pass


class Sink:
    live = False  # shown to a person as it happens (a window, a virtual camera), not recorded

    def write(self, frame: np.ndarray) -> int | None:
        """Show or store a frame; a sink with a keyboard returns the key pressed, or None."""
        raise NotImplementedError

    def write_at(self, frame: np.ndarray, pts: float) -> int | None:
        """Show or store a frame meant for ``pts`` seconds from the start; only files keep the time."""
        return self.write(frame)

    def end_of_stream(self) -> None:
        """The source ended (not a quit or a cut): a file sink may add what follows its last frame."""

    def close(self) -> None:
        pass
