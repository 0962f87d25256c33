"""The adaptive controller: driven by a fake effect whose cost depends on the processing size.

A simulated clock makes the runs exact: no timing assertions anywhere.
"""

from __future__ import annotations

import numpy as np
import pytest

from realtime.effects.base import LadderEffect
from realtime.adaptive import Controller, Setting, build_ladder, size_steps


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def simulate(ctrl: Controller, clock: Clock, cost_at_640: float, frames: int, overhead: float = 0.01,
             parallel: float = 1.8) -> list[Setting]:
    """Run ``frames`` frames: the effect costs ``cost_at_640`` seconds times the rung's pixel share;
    two workers overlap two frames (``parallel`` of them at once) at one frame's latency plus waiting."""
    seen = []
    for _ in range(frames):
        s = ctrl.setting
        effect = cost_at_640 * s.rung.cost
        frame_time = overhead + (effect / parallel if s.workers == 2 else effect)
        latency = overhead + effect * (1.15 if s.workers == 2 else 1.0)
        clock.t += frame_time
        ctrl.frame(latency, effect)
        ctrl.decide()
        seen.append(ctrl.setting)
    return seen


def ladder():
    return build_ladder((480, 640), size_steps(640, 320), [("lite", 1.0)], [32])


def test_size_steps_reach_the_floor_and_never_go_below():
    steps = size_steps(640, 320)
    assert steps[0] == 640 and steps[-1] == 320
    assert all(a > b for a, b in zip(steps, steps[1:]))
    assert size_steps(1920, 320)[-1] == 320
    assert size_steps(256, 320) == [256]  # a frame smaller than the floor is processed as it is


def test_ladder_keeps_one_network_down_to_the_floor_then_cheaper_ones():
    rungs = build_ladder((480, 640), size_steps(640, 320), [("lite", 1.0), ("tiny", 0.45)], [32, 0])
    costs = [r.cost for r in rungs]
    assert costs == sorted(costs, reverse=True) and costs[0] == 1.0
    names = [r.network for r in rungs]
    assert names.index("tiny") > max(i for i, n in enumerate(names) if n == "lite")
    assert rungs[-1].margin == 0 and all(r.margin == 32 for r in rungs[:-1])


def test_an_expensive_effect_is_driven_down_until_the_target_is_met():
    clock = Clock()
    ctrl = Controller(ladder(), workers=[1, 2], target_fps=15, clock=clock)
    simulate(ctrl, clock, cost_at_640=0.15, frames=200)
    s = ctrl.setting
    assert s.rung.size < 640
    effect = 0.15 * s.rung.cost
    fps = 1 / (0.01 + (effect / 1.8 if s.workers == 2 else effect))
    assert fps >= 15
    # and it settled: the last 100 frames saw one setting
    assert len(set(simulate(ctrl, clock, 0.15, 100))) == 1


def test_quality_comes_back_when_the_cost_drops_and_does_not_flicker():
    clock = Clock()
    ctrl = Controller(ladder(), workers=[1, 2], target_fps=15, clock=clock)
    simulate(ctrl, clock, cost_at_640=0.15, frames=200)
    low = ctrl.setting.rung.size
    seen = simulate(ctrl, clock, cost_at_640=0.02, frames=300)  # another program stopped: 7x cheaper
    assert ctrl.setting.rung.size == 640 and low < 640
    sizes = [s.rung.size for s in seen]
    assert all(a <= b for a, b in zip(sizes, sizes[1:]))  # only up, never back and forth


def test_a_rung_that_fails_right_after_a_step_up_is_not_retried_at_once():
    # a cost the pixel model underestimates at the bigger rungs: predicted to fit, measured not to
    clock = Clock()
    rungs = ladder()
    ctrl = Controller(rungs, workers=[1], target_fps=15, clock=clock)
    tries = []
    for _ in range(600):
        s = ctrl.setting
        effect = 0.04 * s.rung.cost + (0.05 if s.rung.size > 512 else 0.0)
        clock.t += 0.005 + effect
        ctrl.frame(0.005 + effect, effect)
        if ctrl.decide() and ctrl.setting.rung.size > 512:
            tries.append(clock.t)
    assert ctrl.setting.rung.size <= 576
    # retries of the failing rung get rarer: the pauses between them grow (the back-off doubles)
    gaps = [b - a for a, b in zip(tries, tries[1:])]
    assert len(tries) >= 3 and all(b > 1.5 * a for a, b in zip(gaps, gaps[1:]))


@pytest.mark.parametrize("workers", [[1], [2]])
def test_a_pinned_worker_count_is_never_changed(workers):
    clock = Clock()
    ctrl = Controller(ladder(), workers=workers, target_fps=15, clock=clock)
    seen = simulate(ctrl, clock, cost_at_640=0.15, frames=150) + simulate(ctrl, clock, 0.01, 150)
    assert {s.workers for s in seen} == set(workers)


def test_a_pinned_size_is_never_changed():
    clock = Clock()
    rungs = build_ladder((480, 640), [640], [("lite", 1.0)], [32])
    ctrl = Controller(rungs, workers=[1], target_fps=15, clock=clock)
    seen = simulate(ctrl, clock, cost_at_640=0.3, frames=100)
    assert {s.rung.size for s in seen} == {640}


def test_two_workers_are_chosen_only_when_they_measure_better():
    clock = Clock()
    ctrl = Controller(ladder(), workers=[1, 2], target_fps=15, clock=clock)
    # no gain from a second worker (parallel=1): it costs latency for nothing
    simulate(ctrl, clock, cost_at_640=0.15, frames=200, parallel=1.0)
    assert ctrl.setting.workers == 1
    clock2 = Clock()
    ctrl2 = Controller(ladder(), workers=[1, 2], target_fps=15, clock=clock2)
    # a second worker nearly doubles the rate: it keeps a bigger size
    simulate(ctrl2, clock2, cost_at_640=0.15, frames=200, parallel=2.0)
    assert ctrl2.setting.workers == 2 and ctrl2.setting.rung.size > ctrl.setting.rung.size


def test_a_second_worker_is_tried_for_headroom_when_the_target_is_met_without_it():
    clock = Clock()
    rungs = ladder()
    start = Setting(rungs[3], 1)  # meets 15 FPS with one worker, with no headroom for a rung up
    ctrl = Controller(rungs, workers=[1, 2], target_fps=15, start=start, clock=clock)
    simulate(ctrl, clock, cost_at_640=0.1, frames=300, parallel=2.0)
    assert ctrl.setting.workers == 2 and ctrl.setting.rung.cost > start.rung.cost


def test_time_in_each_setting_adds_up_to_the_run():
    clock = Clock()
    ctrl = Controller(ladder(), workers=[1, 2], target_fps=15, clock=clock)
    simulate(ctrl, clock, cost_at_640=0.15, frames=120)
    assert sum(ctrl.totals().values()) == pytest.approx(clock.t)


# the style effect and its backends --------------------------------------------------------------

@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLELENS_CACHE_DIR", str(tmp_path / "cache"))


def _photo(h=48, w=64):
    from realtime.sources import DemoSource

    return DemoSource((w, h), frames=1).read()


def test_openvino_and_onnxruntime_give_the_same_image():
    pytest.importorskip("openvino")
    from models import catalogue
    from models.inference.backends import load_style_model
    from models.common.images import bgr_to_nchw

    x = bgr_to_nchw(_photo(40, 56))
    for name in ("starry_night_lite", "starry_night_tiny", "five_styles_lite"):
        ort = load_style_model(catalogue.model_path(name), "onnxruntime", ["CPUExecutionProvider"])
        ov = load_style_model(catalogue.model_path(name), "openvino", threads=1)
        assert ov.backend == "openvino" and ov.styles == ort.styles
        w = ort.style_weights({ort.styles[-1]: 0.6, ort.styles[0]: 0.4})
        a, b = ort.run(x, w), ov.run(x, w)
        assert a.shape == b.shape == (1, 3, 40, 56)
        assert np.abs(a - b).max() <= 1e-3, name
        assert a.std() > 0.01  # a picture, not a constant


def test_openvino_runs_frames_from_two_threads_at_once():
    pytest.importorskip("openvino")
    from concurrent.futures import ThreadPoolExecutor

    from models import catalogue
    from models.inference.backends import load_style_model
    from models.common.images import bgr_to_nchw

    model = load_style_model(catalogue.model_path("starry_night_tiny"), "openvino", threads=1, streams=2)
    frames = [bgr_to_nchw(_photo(32 + 8 * i, 48)) for i in range(4)]
    alone = [model.run(f) for f in frames]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(model.run, frames))
    assert all(np.array_equal(a, b) for a, b in zip(alone, together))


def test_backend_probe_is_cached_per_model_and_size(tmp_path):
    pytest.importorskip("openvino")
    from models import catalogue
    from models.inference.backends import probe_backends

    cache = tmp_path / "probe.json"
    path = catalogue.model_path("starry_night_tiny")
    first, seconds, built = probe_backends(path, (48, 64), threads=1, cache=cache, precision="fp32")
    assert first in ("onnxruntime", "openvino") and set(seconds) == {"onnxruntime", "openvino"}
    assert first in built  # the winner comes back built, ready to keep
    again, seconds_again, built_again = probe_backends(path, (48, 64), threads=1, cache=cache, precision="fp32")
    assert (again, seconds_again, built_again) == (first, seconds, {})  # from the cache: nothing built
    _, _, other_size = probe_backends(path, (64, 80), threads=1, cache=cache, precision="fp32")
    assert other_size  # another size is probed anew


def test_unknown_or_missing_backend_is_a_clear_error(monkeypatch):
    from models import catalogue
    from models.inference import backends
    from models.common.errors import UserError

    with pytest.raises(UserError, match="unknown backend"):
        backends.load_style_model(catalogue.model_path(), "tensorrt")
    monkeypatch.setattr(backends, "openvino_available", lambda: False)
    with pytest.raises(UserError, match="pip install openvino"):
        backends.load_style_model(catalogue.model_path(), "openvino")


def test_style_effect_ladder_leaves_pinned_choices_alone():
    from models import catalogue
    from realtime.effects import EffectOptions, create_effect

    # fp32: the ladder is the question here, not which precision the probe would pick on this CPU
    fx = create_effect("style", EffectOptions(provider="cpu", backend="onnxruntime", precision="fp32"))
    fx.prepare((480, 640), live=True)
    rungs, workers, start = fx.ladder((480, 640), 15)
    assert workers == [1, 2] and {r.size for r in rungs} >= {640, 320} and min(r.size for r in rungs) == 320
    assert [r.network for r in rungs][-1] == "starry_night_tiny"  # the shipped default has a tiny sibling
    pinned = create_effect("style", EffectOptions(provider="cpu", backend="onnxruntime", size=200, workers=1,
                                                  border_pad=0, model="starry_night_lite", precision="fp32"))  # a shipped name
    pinned.prepare((480, 640), live=True)
    rungs, workers, start = pinned.ladder((480, 640), 15)
    assert workers == [1] and [(r.size, r.network, r.margin) for r in rungs] == [(200, "starry_night_lite", 0)]


def test_style_effect_applies_a_setting_and_says_what_it_runs():
    from realtime.adaptive import Setting
    from realtime.effects import EffectOptions, create_effect

    # fp32: on a CPU with VNNI the probe would rightly offer onnxruntime-int8, another name
    fx = create_effect("style", EffectOptions(provider="cpu", backend="onnxruntime", precision="fp32"))
    frame = _photo(240, 320)  # at 64x48 the tiny sibling's own margin would make it the dearer network
    fx.prepare(frame.shape[:2], live=True)
    rungs, _, _ = fx.ladder(frame.shape[:2], 15)
    full = fx(frame)
    small = next(r for r in rungs if r.network == "starry_night_tiny")
    from models import catalogue

    tiny = next(e for e in catalogue.shipped() if e.name == "starry_night_tiny")
    assert small.margin == tiny.border_pad  # the sibling runs on its own margin
    fx.apply(Setting(small, 2))
    out = fx(frame)
    assert out.shape == full.shape and fx.workers == 2
    assert np.abs(out.astype(float) - full.astype(float)).mean() > 1  # another network, another picture
    assert fx.describe().startswith(f"{small.size} px, starry_night_tiny, onnxruntime, 2 workers")


class _CostlyEffect(LadderEffect):
    """A fake style effect whose cost grows with the processing size: 0.12 s at 640 px."""

    name = "costly-test"

    def __init__(self, options=None):
        self.size, self.workers, self.cost = 640, 1, 0.12
        self.seen: list[int] = []

    def prepare(self, hw, log=None, live=False):
        pass

    def ladder(self, hw, target_fps):
        rungs = build_ladder(hw, size_steps(max(hw), 320), [("fake", 1.0)], [0])
        return rungs, [1], Setting(rungs[0], 1)

    def apply(self, setting):
        self.size = setting.rung.size

    def describe(self, setting=None):
        return f"{(setting.rung.size if setting else self.size)} px"

    def status(self):
        return "costly"

    def reset(self):
        pass

    def __call__(self, frame):
        import time

        self.seen.append(self.size)
        time.sleep(self.cost * (self.size / 640) ** 2)
        return frame


def test_the_runner_drives_a_costly_effect_down_and_reports_its_choices():
    from realtime.effects import EFFECTS
    from realtime.runner import Runner
    from realtime.stats import format_summary
    from realtime.sources import DemoSource

    EFFECTS["costly-test"] = _CostlyEffect
    try:
        runner = Runner(DemoSource((640, 480), noise=0), [], effect="costly-test", effects=["costly-test"],
                        stabilize=False, hud=False, max_frames=40, target_fps=15)
        summary = runner.run()
    finally:
        del EFFECTS["costly-test"]
    sizes = runner.effect.seen
    assert sizes[0] == 640 and min(sizes) < 640 and sizes[-1] < 640
    assert summary["setting"] == f"{sizes[-1]} px" and summary["settings"][0][0] == "640 px"
    assert "settled on" in format_summary(summary)


class _SizedEffect:
    """An effect with the style effect's ladder protocol whose cost follows the processing size
    on a simulated clock; ``cost_at_640`` seconds a frame at 640 px."""

    def __init__(self, clock: Clock, cost_at_640: float):
        self.clock, self.cost_at_640 = clock, cost_at_640
        self.size, self.prepared, self.applied = 640, 0, []

    def prepare(self, hw, log=None, live=False):
        self.prepared += 1

    def ladder(self, hw, target_fps):
        rungs = build_ladder(hw, size_steps(max(hw), 320), [("lite", 1.0)], [0])
        return rungs, [1, 2], Setting(rungs[0], 2)

    def apply(self, setting):
        self.applied.append(setting)
        self.size = setting.rung.size

    def __call__(self, frame):
        self.clock.t += self.cost_at_640 * (self.size / 640) ** 2
        return frame[::-1].copy()

    def describe(self):
        return f"{self.size} px"


def test_an_effect_called_frame_by_frame_is_held_to_the_target_and_the_wait_between_calls_is_not_its_cost():
    from realtime.adaptive import AdaptiveEffect

    clock = Clock()
    fx = _SizedEffect(clock, cost_at_640=0.15)  # 6.7 frames/s at full size; 15 needs <= 66 ms
    live = AdaptiveEffect(fx, target_fps=15, clock=clock)
    frame = np.zeros((480, 640, 3), np.uint8)
    for _ in range(150):
        out = live(frame)
        clock.t += 0.04  # the browser's share between two calls: idle for the effect
    assert out.shape == frame.shape and fx.prepared == 1
    assert all(s.workers == 1 for s in fx.applied)  # one frame at a time: never two workers
    assert fx.size < 640 and fx.cost_at_640 * (fx.size / 640) ** 2 <= 1 / 15
    assert fx.size >= 320 and live.describe() == f"{fx.size} px"
    fx.cost_at_640 = 0.02  # the machine got faster: quality comes back
    for _ in range(300):
        live(frame)
        clock.t += 0.04
    assert fx.size == 640


def test_a_sibling_that_needs_a_margin_keeps_it_until_the_last_rungs():
    # A reflection-padded lite (no margin) with a zero-padded tiny sibling (16 px): tiny's rungs
    # carry its margin and cost it; only the cheapest rungs give it up.
    rungs = build_ladder((480, 640), size_steps(640, 320), [("lite", 1.0), ("tiny", 0.45, 16)], [0, 8, 0])
    lite = [r for r in rungs if r.network == "lite"]
    tiny = [r for r in rungs if r.network == "tiny"]
    assert all(r.margin == 0 for r in lite) and tiny[0].margin == 16
    assert [r.margin for r in rungs[-2:]] == [8, 0]
    costs = [r.cost for r in rungs]
    assert costs == sorted(costs, reverse=True)


def test_the_live_start_is_timed_by_the_median_run_and_engines_are_ranked_by_the_fastest(monkeypatch):
    """One sample on a shared machine can land on a burst of load or miss one: the live start
    predicts from the median of its runs, the engine ranking takes the fastest."""
    import models.inference.backends as backends

    class Steps:  # a model whose runs take 40, 10, 30 ms of a fake clock after the warm-up
        def __init__(self, clock):
            self.clock, self.times = clock, iter([0.0, 0.04, 0.01, 0.03])

        def run(self, x):
            self.clock.t += next(self.times)

    clock = Clock()
    monkeypatch.setattr(backends.time, "perf_counter", clock)
    assert backends.time_model(Steps(clock), (4, 4), runs=3, typical=True) == pytest.approx(0.03)
    assert backends.time_model(Steps(clock), (4, 4), runs=3) == pytest.approx(0.01)


def test_the_style_effect_starts_from_the_median_of_three_runs(monkeypatch):
    import models.inference.backends as backends
    from realtime.effects import EffectOptions, create_effect

    calls = []
    real = backends.time_model

    def spy(model, hw, runs=backends.PROBE_RUNS, typical=False):
        calls.append((runs, typical))
        return real(model, hw, runs, typical)

    monkeypatch.setattr(backends, "time_model", spy)
    fx = create_effect("style", EffectOptions(model="starry_night_tiny", provider="cpu", backend="onnxruntime",
                                              precision="fp32"))
    fx.prepare((48, 64), live=True)
    assert calls[-1] == (3, True) and set(fx.probe_seconds) == {fx.backend}
