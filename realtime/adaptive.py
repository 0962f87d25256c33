"""Hold a live run's frame rate and latency by measuring it, not by assuming the machine.

The runner reports every frame it shows (latency from capture to sink, the seconds the effect
took) and the time its loop sat idle waiting for a camera; every few frames the
:class:`Controller` compares what it measured with the target and picks the next setting
within what the user allowed: a rung of a quality ladder (processing size, network, border
margin; best first) and a worker count (1 or 2).

- Down: straight to the best rung predicted to meet the target (an effect's cost scales with
  the pixels it processes), after trying the other worker count at the current rung.
- Up: one rung at a time, only with headroom (hysteresis), and a rung that had to be left
  soon after being reached is not tried again for a while (the pause doubles each time), so
  the picture does not flicker between settings.

No clock of its own beyond ``clock``: tests drive it with a simulated one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

TARGET_FPS = 15.0
MAX_LATENCY = 0.2  # seconds, p95 from capture to sink
MIN_SIZE = 320  # the processing size never goes below this longer side unless the user says so
UP_HEADROOM = 1.25  # a rung up must be predicted at this multiple of the target frame rate
DOWN_MARGIN = 1.1  # a rung down must be predicted at this multiple, so one step is enough
FRESH_SECONDS = 15.0  # a measurement of a worker count is trusted this long
BACKOFF_SECONDS = 3.0  # first pause before a rung that failed is tried again; doubles, up to 60 s


@dataclass(frozen=True)
class Rung:
    """One quality step: the processing size (longer side), the network, the border margin."""

    size: int
    network: str
    margin: int
    cost: float  # relative to the best rung (1.0), from pixels and the network's measured cost


@dataclass(frozen=True)
class Setting:
    rung: Rung
    workers: int


def size_steps(longest: int, min_size: int) -> list[int]:
    """Processing sizes from the frame's longer side down to ``min_size``, about 10% apart, multiples of 32."""
    floor = min(min_size, longest)
    sizes = [longest]
    while sizes[-1] > floor:
        nxt = max(floor, int(sizes[-1] * 0.9) // 32 * 32)
        sizes.append(nxt if nxt < sizes[-1] else floor)
    return sizes


def build_ladder(frame_hw: tuple[int, int], sizes: Sequence[int], networks: Sequence[tuple],
                 margins: Sequence[int]) -> list[Rung]:
    """Rungs best first: every size on the first network, then each further (cheaper) network at the
    sizes that cost less than the last rung, then smaller margins at the last rung.

    ``networks``: (name, cost relative to the first) best first, or (name, cost, margin) for a
    network that needs its own margin (a zero-padded sibling of a reflection-padded network);
    ``margins`` best first, the first for the networks without their own. One network is kept as
    long as possible because two networks of a style look different.
    """
    h, w = frame_hw
    aspect = min(h, w) / max(h, w)

    def pixels(size: int, margin: int) -> float:
        return (size + 2 * margin) * (size * aspect + 2 * margin)

    base = pixels(sizes[0], margins[0]) * networks[0][1]
    factors = {n[0]: n[1] for n in networks}
    ladder: list[Rung] = []
    for name, factor, *own in networks:
        margin = own[0] if own else margins[0]
        for size in sizes:
            cost = pixels(size, margin) * factor / base
            if not ladder or cost < ladder[-1].cost:
                ladder.append(Rung(size, name, margin, cost))
    last = ladder[-1]
    for margin in margins[1:]:
        if margin < last.margin:
            ladder.append(Rung(last.size, last.network, margin,
                               pixels(last.size, margin) * factors[last.network] / base))
    return ladder


@dataclass
class Measurement:
    """What one window of frames showed at one setting."""

    frame_time: float  # seconds of busy loop per frame (1 / the rate it could sustain)
    effect: float  # mean seconds the effect took for one frame
    p95: float  # latency, seconds
    cost: float  # the rung's cost
    workers: int
    when: float

    def predict(self, rung: Rung) -> tuple[float, float]:
        """(frames per second, p95 latency) at ``rung`` with the same workers: the effect's share of
        the time scales with the rung's cost; the rest (capture, stabiliser, sinks) stays."""
        scale = rung.cost / self.cost
        share = min(self.effect / self.workers, self.frame_time)
        frame_time = self.frame_time - share + share * scale
        return 1.0 / max(frame_time, 1e-6), self.p95 + self.effect * (scale - 1)


@dataclass
class Controller:
    """Picks the setting of a live run; see the module's docstring.

    ``workers``: the allowed counts (one value when the user pinned it). Call :meth:`frame` for
    every frame shown, :meth:`idle` for time spent waiting with nothing in flight, and
    :meth:`decide` after each frame: it returns a new setting to apply, or None.
    """

    ladder: list[Rung]
    workers: Sequence[int]
    target_fps: float = TARGET_FPS
    max_latency: float = MAX_LATENCY
    start: Setting | None = None
    min_frames: int = 4
    min_seconds: float = 0.4
    clock: Callable[[], float] = time.perf_counter
    setting: Setting = field(init=False)
    time_in: dict[Setting, float] = field(init=False, default_factory=dict)
    changes: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.setting = self.start or Setting(self.ladder[0], self.workers[0])
        self._records: dict[int, Measurement] = {}
        self._blocked: dict[Rung, float] = {}  # rung -> time before which it is not tried again
        self._backoff: dict[Rung, float] = {}
        self._explored: set[tuple[Rung, int]] = set()  # (rung, workers) tried for headroom
        self._came_up_at: float | None = None  # when the current rung was reached from below
        now = self.clock()
        self._since = now  # the current setting has run since
        self._reset(now, skip=1)

    # measurements -----------------------------------------------------------------------
    def _reset(self, now: float, skip: int) -> None:
        self._skip = skip  # frames still computed with the previous setting, or warming up
        self._t0 = now
        self._idle = 0.0
        self._lat: list[float] = []
        self._eff: list[float] = []

    def idle(self, seconds: float) -> None:
        """The loop waited ``seconds`` for a frame with nothing in flight (the source was slower)."""
        if not self._skip:
            self._idle += seconds

    def frame(self, latency: float, effect_seconds: float) -> None:
        """One frame reached the sinks."""
        if self._skip:
            self._skip -= 1
            if not self._skip:
                self._t0, self._idle = self.clock(), 0.0
            return
        self._lat.append(latency)
        self._eff.append(effect_seconds)

    def _measure(self, now: float) -> Measurement | None:
        n, wall = len(self._lat), now - self._t0
        if n < self.min_frames or wall < self.min_seconds:
            return None
        busy = max(wall - self._idle, 1e-6)
        return Measurement(busy / n, float(np.mean(self._eff)), float(np.percentile(self._lat, 95)),
                           self.setting.rung.cost, self.setting.workers, now)

    def _meets(self, fps: float, p95: float, fps_margin: float = 1.0, lat_margin: float = 1.0) -> bool:
        return fps >= self.target_fps * fps_margin and p95 <= self.max_latency * lat_margin

    # decisions --------------------------------------------------------------------------
    def _switch(self, setting: Setting, now: float) -> Setting:
        self.time_in[self.setting] = self.time_in.get(self.setting, 0.0) + now - self._since
        index = self.ladder.index
        self._came_up_at = now if index(setting.rung) < index(self.setting.rung) else None
        self.setting, self._since = setting, now
        self.changes += 1
        self._reset(now, skip=max(self.workers) + 1)
        return setting

    def decide(self) -> Setting | None:
        """A new setting when the last window of frames calls for one, else None."""
        now = self.clock()
        m = self._measure(now)
        if m is None:
            return None
        self._records[m.workers] = m
        i = self.ladder.index(self.setting.rung)
        fresh = {w: r for w, r in self._records.items() if now - r.when <= FRESH_SECONDS and w in self.workers}
        untried = [w for w in self.workers if w not in fresh]
        if self._meets(1 / m.frame_time, m.p95):
            self._reset(now, skip=0)
            self._came_up_at = None  # the rung held: it is not a failed step up if it fails later
            if i > 0 and now >= self._blocked.get(self.ladder[i - 1], 0.0):
                if self._meets(*m.predict(self.ladder[i - 1]), UP_HEADROOM, 1 / UP_HEADROOM):
                    return self._switch(Setting(self.ladder[i - 1], m.workers), now)
                other = [w for w in self.workers if w != m.workers and (self.setting.rung, w) not in self._explored]
                if other:  # no headroom with these workers: the other count may have it (tried once a rung)
                    self._explored.add((self.setting.rung, other[0]))
                    return self._switch(Setting(self.setting.rung, other[0]), now)
            for w, r in fresh.items():  # both counts meet the target here: the lower latency
                if w != m.workers and r.cost == m.cost and self._meets(1 / r.frame_time, r.p95) and r.p95 < m.p95:
                    return self._switch(Setting(self.setting.rung, w), now)
            return None
        if untried:  # the other worker count first: it may meet the target at this quality
            return self._switch(Setting(self.setting.rung, untried[0]), now)
        best: tuple[int, float, int] | None = None  # (rung index, predicted p95, workers)
        for w, r in fresh.items():
            for j in range(i, len(self.ladder)):
                fps, p95 = r.predict(self.ladder[j])
                if self._meets(fps, p95, DOWN_MARGIN, 1 / DOWN_MARGIN):
                    best = min(best or (j, p95, w), (j, p95, w))
                    break
        if best is None:  # nothing is predicted to meet it: the cheapest rung, the faster worker count
            w = max(fresh, key=lambda w: fresh[w].predict(self.ladder[-1])[0])
            best = (len(self.ladder) - 1, 0.0, w)
        j, _, w = best
        if self._came_up_at is not None and j > i:  # this rung was just reached and failed: wait longer next time
            rung = self.ladder[i]
            self._backoff[rung] = min(60.0, self._backoff.get(rung, BACKOFF_SECONDS / 2) * 2)
            self._blocked[rung] = now + self._backoff[rung]
        target = Setting(self.ladder[j], w)
        if target == self.setting:
            self._reset(now, skip=0)
            return None
        return self._switch(target, now)

    def totals(self) -> dict[Setting, float]:
        """Seconds spent in each setting so far, the current one included."""
        out = dict(self.time_in)
        out[self.setting] = out.get(self.setting, 0.0) + self.clock() - self._since
        return out


class Adapter:
    """Holds a :class:`realtime.effects.base.LadderEffect` to a frame rate: the one place where its
    ladder and :class:`Controller` are built (on its first frame) and each decision is applied.

    The live runner and the page's webcam stream both drive it: :meth:`start` with the first
    frame's size, :meth:`frame` for every frame shown (latency from capture, seconds the effect
    took), :meth:`idle` for time spent waiting for a frame with nothing in flight.
    ``one_worker``: frames come one at a time and wait for each (the page), so one worker only.
    """

    def __init__(self, effect, target_fps: float = TARGET_FPS, one_worker: bool = False,
                 clock: Callable[[], float] = time.perf_counter):
        self.effect, self.target_fps, self.one_worker, self.clock = effect, target_fps, one_worker, clock
        self.controller: Controller | None = None

    def start(self, frame_hw: tuple[int, int]) -> None:
        """Build the ladder for frames of ``frame_hw`` (after the effect's ``prepare``) and apply its start."""
        rungs, workers, start = self.effect.ladder(frame_hw, self.target_fps)
        if self.one_worker:
            workers, start = [1], Setting(start.rung, 1)
        self.controller = Controller(rungs, workers, self.target_fps, start=start, clock=self.clock)
        self.effect.apply(start)

    def frame(self, latency: float, effect_seconds: float) -> None:
        """One frame reached the sinks; a new setting is applied when the last frames call for one."""
        self.controller.frame(latency, effect_seconds)
        new = self.controller.decide()
        if new is not None:
            self.effect.apply(new)

    def idle(self, seconds: float) -> None:
        self.controller.idle(seconds)

    def summary(self) -> dict:
        """The setting it settled on, the seconds spent in each, and how often it changed."""
        describe = self.effect.describe
        return {"setting": describe(self.controller.setting),
                "settings": [(describe(k), v) for k, v in self.controller.totals().items()],
                "setting_changes": self.controller.changes}


class AdaptiveEffect:
    """A ladder effect (the style effect) held to its frame rate for a caller that hands it one
    frame at a time and waits for each (the page's webcam stream), through an :class:`Adapter`.

    The time between calls counts as idle (the browser was capturing, encoding, sending), so
    only the effect's own time is held to the target. One frame at a time: one worker.
    """

    def __init__(self, effect, target_fps: float = TARGET_FPS, log: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        self.effect, self.log, self.clock = effect, log, clock
        self.adapter = Adapter(effect, target_fps, one_worker=True, clock=clock)
        self._returned: float | None = None  # when the last call returned

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """The effect on ``frame`` (its size kept) at the current setting; then the next decision."""
        if self.adapter.controller is None:
            self.effect.prepare(frame.shape[:2], log=self.log, live=True)
            self.adapter.start(frame.shape[:2])
        elif self._returned is not None:
            self.adapter.idle(self.clock() - self._returned)
        t = self.clock()
        out = self.effect(frame)
        seconds = self.clock() - t
        self.adapter.frame(seconds, seconds)
        self._returned = self.clock()
        return out

    def describe(self) -> str:
        """The setting in use (size, network, backend), as the runner's summary names it."""
        return self.effect.describe()
