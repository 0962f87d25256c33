"""What a run reports: its counts and latencies (:class:`Stats`), the exit summary, and the
heads-up display drawn on live frames."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np


@dataclass
class Stats:
    """Counts and latencies of a run, for the HUD and the exit summary."""

    started: float = field(default_factory=time.perf_counter)
    frames_out: int = 0
    latencies: deque = field(default_factory=lambda: deque(maxlen=10_000))  # seconds, capture -> sink
    frame_times: deque = field(default_factory=lambda: deque(maxlen=30))

    def record(self, captured: float) -> None:
        now = time.perf_counter()
        self.frames_out += 1
        self.latencies.append(now - captured)
        self.frame_times.append(now)

    @property
    def fps(self) -> float:
        t = self.frame_times
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0

    def summary(self, frames_in: int, dropped: int, reconnects: int = 0) -> dict:
        lat = np.array(self.latencies) * 1000 if self.latencies else np.zeros(1)
        wall = time.perf_counter() - self.started
        return {"frames_in": frames_in, "frames_out": self.frames_out, "dropped": dropped,
                "latency_mean_ms": float(lat.mean()), "latency_p95_ms": float(np.percentile(lat, 95)),
                "fps": self.frames_out / wall if wall > 0 else 0.0, "seconds": wall, "reconnects": reconnects}


def format_summary(s: dict, offline: bool = False) -> str:
    """The exit summary in words. ``offline``: a file rendered frame by frame, where no one waits for a
    frame, so latency and drops mean nothing and are left out."""
    if offline:
        return (f"frames in {s['frames_in']}, out {s['frames_out']}, dropped {s['dropped']}; {s['fps']:.1f} "
                f"frames/s over {s['seconds']:.1f} s")
    text = (f"frames in {s['frames_in']}, out {s['frames_out']}, dropped {s['dropped']}; "
            f"latency mean {s['latency_mean_ms']:.1f} ms, p95 {s['latency_p95_ms']:.1f} ms; "
            f"{s['fps']:.1f} FPS over {s['seconds']:.1f} s")
    if s.get("reconnects"):
        text += f"; source reconnected {s['reconnects']} time{'s' if s['reconnects'] > 1 else ''}"
    if s.get("first_frame_s") is not None:
        text += f"; first frame {s['first_frame_s']:.2f} s after the program started"
    if s.get("settings"):
        text += "\nsettled on " + s["setting"] + "; time in each: " + "; ".join(
            f"{label} {sec:.1f} s" for label, sec in s["settings"])
    return text


def draw_hud(frame: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    """Text lines on a translucent box in the top-left corner (draws on a copy)."""
    out = frame.copy()
    scale = max(0.4, min(0.7, frame.shape[1] / 1000))
    line_h = int(22 * scale / 0.6)
    width = max(cv2.getTextSize(l, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] for l in lines) + 12
    box_h = line_h * len(lines) + 8
    roi = out[:box_h, :width]
    roi[:] = (roi * 0.4).astype(np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(out, line, (6, line_h * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out
