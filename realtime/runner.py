"""The live loop: source -> effect -> stabiliser -> heads-up display -> sinks.

:class:`Runner` owns the statistics (frames in and out, drops, latency from capture to
sink) and the actions that keys and flags trigger (:data:`KEYS`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from models.common.errors import InputFileError, UserError
from realtime.adaptive import TARGET_FPS, Adapter
from realtime.effects import EFFECTS, Effect, EffectOptions, LadderEffect, create_effect
from realtime.sinks import Sink
from realtime.sources import Frame, LatestFrameGrabber, Source, SourceLost
from realtime.stats import Stats, draw_hud
from realtime.stabilizer import FlowStabilizer

MAX_WORKERS = 8  # frames in flight at most, whatever an effect asks for
POLL_SECONDS = 0.002  # how often the loop looks at frames in flight while it waits for a new one
_END = object()  # the source has ended
STRENGTH_STEP = 0.1  # what one press of - or + moves the style strength by

# key -> (action, help)
KEYS: dict[str, tuple[str, str]] = {
    "n": ("next_style", "next style / layer / mode"),
    "p": ("previous_style", "previous style / layer / mode"),
    "e": ("next_effect", "next effect"),
    "b": ("blend", "blend a quarter toward the next style"),
    "-": ("weaker", "style strength down 10%"),
    "+": ("stronger", "style strength up 10% (also =)"),
    "=": ("stronger", "style strength up 10%"),
    "c": ("toggle_color", "keep the frame's colours, or not"),
    "h": ("toggle_hud", "show or hide the heads-up display"),
    "s": ("snapshot", "save the current output frame as PNG"),
    "q": ("quit", "quit (also Esc)"),
}


class Runner:
    """Runs effects on a source and sends the results to sinks.

    ``drop=True`` (live use) reads the source in a thread that keeps only the newest
    frame; ``drop=False`` processes every frame in order (offline rendering). Each frame
    reaches the sinks with its presentation time: the file's own, else the capture time
    of a live source, else its index over the frame rate. ``progress`` shows a tqdm bar
    (for file renders). Ctrl+C ends the run like a quit (:attr:`interrupted`), so the
    sinks close properly and a recorded file stays playable.
    """

    def __init__(self, source: Source, sinks: Sequence[Sink], effect: str = "style",
                 options: EffectOptions | None = None, effects: Sequence[str] | None = None,
                 drop: bool = True, stabilize: bool = True, hud: bool = True, max_frames: int | None = None,
                 snapshot_dir: str | Path = ".", snapshot_at: Sequence[int] = (),
                 reconnect_timeout: float = 60.0, log: Callable[[str], None] = print, progress: bool = False,
                 target_fps: float | None = TARGET_FPS, started_at: float | None = None):
        self.source, self.sinks = source, list(sinks)
        self.options = options or EffectOptions()
        self.effect_names = list(effects or EFFECTS)
        if effect not in self.effect_names:
            self.effect_names.insert(0, effect)
        self.effect_name = effect
        self._effects: dict[str, Effect] = {}
        self.effect: Effect = self._get_effect(effect)
        self.drop, self.hud, self.max_frames = drop, hud, max_frames
        self.stabilizer = FlowStabilizer() if stabilize else None
        self.snapshot_dir, self.snapshot_at = Path(snapshot_dir), set(snapshot_at)
        self.log = log
        self.reconnect_timeout = reconnect_timeout
        self.lost: str | None = None  # set when a live source was lost for good; the run then ends
        self.interrupted = False  # Ctrl+C ended the run
        self.progress = progress
        self._bar = None
        self._t0: float | None = None  # capture time of the first frame of a live source
        self.stats = Stats()
        self.running = True
        self._grabber: LatestFrameGrabber | None = None
        self.last_output: np.ndarray | None = None
        self.snapshots: list[Path] = []
        self.target_fps = target_fps
        self.started_at = started_at
        self.adapter: Adapter | None = None  # holds the adaptive effect (live style) to the target
        self._prepared: set[int] = set()  # ids of the effects prepared on their first frame
        self.first_frame_s: float | None = None

    def _get_effect(self, name: str) -> Effect:
        if name not in self._effects:
            self._effects[name] = create_effect(name, self.options)
        return self._effects[name]

    def _check_snapshot_dir(self) -> None:
        if self.snapshot_dir.exists() and not self.snapshot_dir.is_dir():
            raise InputFileError(self.snapshot_dir, "snapshot folder is a file")

    # actions -----------------------------------------------------------------------------
    def next_style(self) -> None:
        self._cycle(+1)

    def previous_style(self) -> None:
        self._cycle(-1)

    def _cycle(self, step: int) -> None:
        switched = self.effect.cycle(step)
        if switched:  # another network: its backend, ladder and controller are chosen on its next frame
            self.log(switched)
            if self.stabilizer:
                self.stabilizer.reset()
            self._prepared.discard(id(self.effect))
            if self.adapter is not None and self.adapter.effect is self.effect:
                self.adapter = None

    def blend(self) -> None:
        self.effect.blend_step(0.25)

    def weaker(self) -> None:
        self.effect.step_strength(-STRENGTH_STEP)

    def stronger(self) -> None:
        self.effect.step_strength(+STRENGTH_STEP)

    def toggle_color(self) -> None:
        self.effect.toggle_color()

    def next_effect(self) -> None:
        """Switch to the next effect that can be built here; one that cannot is reported and skipped."""
        i = self.effect_names.index(self.effect_name)
        for _ in range(len(self.effect_names) - 1):
            i = (i + 1) % len(self.effect_names)
            try:
                self.effect = self._get_effect(self.effect_names[i])
            except UserError as e:
                self.log(f"skipping effect {self.effect_names[i]}: {e}")
                continue
            self.effect_name = self.effect_names[i]
            break
        if self.stabilizer:
            self.stabilizer.reset()

    def toggle_hud(self) -> None:
        self.hud = not self.hud

    def snapshot(self) -> None:
        if self.last_output is not None:
            self.snapshot_dir.mkdir(parents=True, exist_ok=True)
            path = self.snapshot_dir / f"snapshot_{time.strftime('%Y%m%d_%H%M%S')}_{self.stats.frames_out:06d}.png"
            if not cv2.imwrite(str(path), self.last_output):
                raise InputFileError(path, "cannot write the snapshot")
            self.snapshots.append(path)
            self.log(f"saved {path}")

    def quit(self) -> None:
        self.running = False

    def on_key(self, key: int) -> None:
        if key == 27:
            return self.quit()
        action = KEYS.get(chr(key).lower(), (None,))[0] if 0 <= key < 256 else None
        if action:
            getattr(self, action)()

    # the loop ----------------------------------------------------------------------------
    def _finish(self, frame: Frame, out: np.ndarray, effect_name: str) -> np.ndarray:
        """What follows the effect, in frame order on the main thread: stabiliser and HUD."""
        if self.stabilizer is not None and effect_name == "style":
            out = self.stabilizer(frame.image, out)
        self.last_output = out
        if self.hud:
            lag = self.stats.latencies[-1] * 1000 if self.stats.latencies else 0.0
            dropped = self._grabber.dropped if self._grabber else 0
            lines = [self.effect.status(), f"{self.stats.fps:5.1f} FPS  latency {lag:4.0f} ms  dropped {dropped}"]
            described = self.effect.describe()
            if described:
                lines.append(described)
            out = draw_hud(out, lines)
        return out

    def _show_waiting(self, message: str) -> None:
        """While a live source is away: the last picture, dimmed, with the message, on the live sinks.

        Keeps a window responsive (its keys still work) and says what is going on.
        """
        base = self.last_output if self.last_output is not None else np.zeros((240, 320, 3), np.uint8)
        frame = draw_hud((base * 0.5).astype(np.uint8), [message, "q: quit"])
        for sink in self.sinks:
            if sink.live:
                key = sink.write(frame)
                if key is not None:
                    self.on_key(key)

    def _next_frame(self, timeout: float) -> Frame | None | object:
        """The next frame to process; None if none came within ``timeout`` (live sources only);
        ``_END`` when the source has ended."""
        if self.drop:
            frame = self._grabber.get(timeout=timeout)
            if frame is None:
                if self._grabber.ended:
                    return _END
                if self._grabber.lost:
                    self._show_waiting(self._grabber.lost)
            return frame
        got = self.source.read_timed()
        if got is None:
            return _END
        self._read += 1
        return Frame(got[0], self._read - 1, time.perf_counter(), got[1])

    def _pts(self, frame: Frame) -> float:
        """When the frame is shown, in seconds from the start of the output."""
        if frame.pts is not None:
            return frame.pts
        if self.source.live:
            if self._t0 is None:
                self._t0 = frame.captured
            return frame.captured - self._t0
        return frame.index / self.source.fps

    def _prepare(self, frame: Frame) -> None:
        """On an effect's first frame: the style effect's backend for this size and, live, its controller."""
        effect = self.effect
        self._prepared.add(id(effect))
        live = self.drop and bool(self.target_fps)
        hw = frame.image.shape[:2]
        effect.prepare(hw, log=self.log, live=live)
        if live and self.adapter is None and isinstance(effect, LadderEffect):
            self.adapter = Adapter(effect, self.target_fps)
            self.adapter.start(hw)

    @staticmethod
    def _timed(effect: Effect, image: np.ndarray) -> tuple[np.ndarray, float]:
        t = time.perf_counter()
        out = effect(image)
        return out, time.perf_counter() - t

    def _start(self, frame: Frame, pool: ThreadPoolExecutor) -> Future:
        """The effect on ``frame``: in a worker thread, or here and now for a one-worker effect."""
        if id(self.effect) not in self._prepared:
            self._prepare(frame)
        if self.effect.workers > 1:
            return pool.submit(self._timed, self.effect, frame.image)
        done: Future = Future()
        done.set_result(self._timed(self.effect, frame.image))
        return done

    def _emit(self, frame: Frame, effect_name: str, result: Future) -> None:
        image, seconds = result.result()
        out = self._finish(frame, image, effect_name)
        if self.stats.frames_out + 1 in self.snapshot_at:
            self.snapshot()
        pts = self._pts(frame)
        for sink in self.sinks:
            key = sink.write_at(out, pts)
            if key is not None:
                self.on_key(key)
        self.stats.record(frame.captured)
        if self.first_frame_s is None and self.started_at is not None:
            self.first_frame_s = time.perf_counter() - self.started_at
        if self.adapter is not None and self.effect is self.adapter.effect:
            self.adapter.frame(self.stats.latencies[-1], seconds)
        if self._bar is not None:
            self._bar.update(1)

    def run(self) -> dict:
        """Run until the source ends, ``max_frames`` are out, or quit; returns the summary."""
        if self.snapshot_at:
            self._check_snapshot_dir()
        self._grabber = LatestFrameGrabber(self.source, reconnect_timeout=self.reconnect_timeout,
                                           log=self.log) if self.drop else None
        self.stats = Stats()
        # Frames in flight, oldest first: an effect with workers > 1 runs that many at once in
        # threads; their results still leave in capture order through one stabiliser and the sinks.
        # A finished frame leaves as soon as it is the oldest, not when the next one arrives.
        pending: deque[tuple[Frame, str, Future]] = deque()
        pool = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="effect")
        self._read = 0  # frames read from a file source (no-drop mode)
        ended = False  # the source ran out, and everything read was written
        if self.progress:
            from tqdm import tqdm

            total = min(filter(None, (getattr(self.source, "frames", None), self.max_frames)), default=None)
            self._bar = tqdm(total=total, unit="frame", dynamic_ncols=True)
        try:
            while self.running:
                while pending and pending[0][2].done():
                    self._emit(*pending.popleft())
                full = len(pending) >= min(self.effect.workers, MAX_WORKERS)
                enough = bool(self.max_frames) and self.stats.frames_out + len(pending) >= self.max_frames
                if pending and (full or enough):
                    self._emit(*pending.popleft())  # waits for it
                    continue
                if enough:
                    break
                waited = time.perf_counter()
                frame = self._next_frame(POLL_SECONDS if pending else 0.25)
                if not pending and self.adapter is not None:  # nothing in flight: the source is slower
                    self.adapter.idle(time.perf_counter() - waited)
                if frame is _END:
                    ended = True
                    break
                if frame is not None:
                    pending.append((frame, self.effect_name, self._start(frame, pool)))
            while pending and self.running:  # the source ended: what is in flight leaves too
                self._emit(*pending.popleft())
            if ended and not pending:
                for sink in self.sinks:
                    sink.end_of_stream()
        except SourceLost as e:  # the run ends, with its summary; the caller reports the loss
            self.lost = str(e)
        except KeyboardInterrupt:  # a quit: the sinks below close, so a recorded file stays playable
            self.interrupted = True
        finally:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
            pool.shutdown(wait=True, cancel_futures=True)
            if self._grabber:
                self._grabber.close()
            else:
                self.source.close()
            for sink in self.sinks:
                sink.close()
        # frames taken but never shown (a quit or a lost source with frames in flight) count as dropped
        frames_in = self._grabber.captured if self._grabber else self._read
        dropped = (self._grabber.dropped if self._grabber else 0) + len(pending)
        if self.interrupted:  # Ctrl+C may land between taking a frame and showing it
            dropped = frames_in - self.stats.frames_out
        reconnects = self._grabber.reconnects if self._grabber else 0
        summary = self.stats.summary(frames_in, dropped, reconnects)
        summary["first_frame_s"] = self.first_frame_s
        if self.adapter is not None:
            summary.update(self.adapter.summary())
        elif self.effect.describe():
            summary["setting"] = self.effect.describe()
        return summary
