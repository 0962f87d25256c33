"""The adaptive controller: driven by a fake effect whose cost depends on the processing size.

A simulated clock makes the runs exact: no timing assertions anywhere.
"""

from __future__ import annotations

import pytest

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


def test_time_in_each_setting_adds_up_to_the_run():
    clock = Clock()
    ctrl = Controller(ladder(), workers=[1, 2], target_fps=15, clock=clock)
    simulate(ctrl, clock, cost_at_640=0.15, frames=120)
    assert sum(ctrl.totals().values()) == pytest.approx(clock.t)
