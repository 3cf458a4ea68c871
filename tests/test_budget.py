"""Wall-clock budgets, the planning alone: a fake clock that each probe advances by a known
time, so the steps chosen and the lines for budgets that are too short are exact."""

from __future__ import annotations

import json
import math

import pytest

from glrnn.errors import ConfigError
from glrnn.train.budget import (
    Costs,
    Probes,
    Replans,
    measure,
    plan_steps,
    replan_points,
    run_seconds,
)

COMPILE, STEP, EVALUATION, CHECKPOINT = 10.0, 0.5, 2.0, 1.0


class FakeRun:
    """A clock, and probes that advance it: the first step and the first evaluation and
    checkpoint also pay their compilation (COMPILE, then 3 s and 4 s)."""

    def __init__(self) -> None:
        self.now, self.steps, self.evaluations, self.checkpoints = 0.0, [], 0, 0

    def clock(self) -> float:
        return self.now

    def step(self, n: int) -> None:
        self.now += COMPILE if not self.steps else STEP
        self.steps.append(n)

    def evaluate(self) -> None:
        self.now += EVALUATION + (3.0 if not self.evaluations else 0.0)
        self.evaluations += 1

    def checkpoint(self) -> None:
        self.now += CHECKPOINT + (4.0 if not self.checkpoints else 0.0)
        self.checkpoints += 1

    def measure(self, minutes: float, warmup_steps: int = 5):
        return measure(minutes, 0.0, Probes(self.step, self.evaluate, self.checkpoint),
                       items_per_step=100, final_evaluations=2.0, eval_every=10,
                       checkpoint_every=20, warmup_steps=warmup_steps, clock=self.clock)


def test_run_seconds_counts_every_evaluation_and_checkpoint():
    costs = Costs(step=1.0, evaluation=10.0, checkpoint=100.0, final_evaluations=0.5)
    # 25 steps: evaluations at 10, 20, 25; checkpoints at 20, 25; the end's half evaluation
    assert run_seconds(25, costs, eval_every=10, checkpoint_every=20) == 25 + 30 + 200 + 5


@pytest.mark.parametrize("seconds", [0.0, 5.0, 37.0, 1000.0, 12345.6])
def test_plan_steps_is_the_most_that_fit(seconds):
    costs = Costs(step=0.3, evaluation=2.0, checkpoint=1.5, final_evaluations=3.0)
    steps = plan_steps(seconds, costs, eval_every=7, checkpoint_every=11)
    fits = lambda n: run_seconds(n, costs, 7, 11) <= seconds  # noqa: E731
    assert steps == 0 or fits(steps)
    assert not fits(steps + 1)


def test_measure_times_after_compiling_and_plans_the_rest():
    run = FakeRun()
    budget = run.measure(minutes=1.0)
    # calibration: 2 % of 60 s = 1.2 s: rounds of 1 then 2 steps (1.5 s), on batches 2, 3, 4
    assert run.steps == [1, 2, 3, 4] and budget.calibration_steps == 3
    assert (budget.compile_s, budget.seconds_per_step) == (COMPILE, STEP)
    assert budget.items_per_s == 100 / STEP
    assert (budget.eval_s, budget.checkpoint_s) == (EVALUATION, CHECKPOINT)
    spent = COMPILE + 3 * STEP + (3 + 2 * EVALUATION) + (4 + 2 * CHECKPOINT)
    assert budget.spent_s == spent
    # 60 - 24.5 = 35.5 s left: 40 steps take 20 + 4 evaluations (8) + 2 checkpoints + 2 final
    # evaluations (4) = 34 s, 41 steps 20.5 + 10 + 3 + 4 = 37.5 s
    assert budget.steps == 40
    assert budget.planned_s == spent + 34 <= 60


def test_a_budget_without_room_for_one_step_says_the_least_that_would_do():
    with pytest.raises(ConfigError) as e:
        FakeRun().measure(minutes=0.3)  # 18 s: 24.5 s go to compiling and measuring
    line = str(e.value)
    assert "\n" not in line and line.startswith("train.minutes=0.3: too short on this machine")
    assert "not one step fits: 24.5 s went to start-up, compilation and measuring" in line
    # warmup 5: 6 steps (3 s), an evaluation, a checkpoint, 2 final evaluations: 32.5 s
    least = math.ceil((24.5 + 3 + 2 + 1 + 4) / 60 * 100) / 100
    assert line.endswith(f"expected at least {least:.2f} minutes")


def test_a_budget_that_ends_inside_the_warmup_is_refused():
    with pytest.raises(ConfigError, match=r"^train.minutes=1: too short on this machine \(40 "
                       r"steps fit, not more than optim.warmup_steps=40.*or a lower "
                       r"optim.warmup_steps$"):
        FakeRun().measure(minutes=1.0, warmup_steps=40)


def test_run_seconds_after_a_step_counts_the_evaluations_and_checkpoints_still_to_come():
    costs = Costs(step=1.0, evaluation=10.0, checkpoint=100.0, final_evaluations=0.0)
    # steps 6 .. 25: evaluations at 10, 20, 25; checkpoints at 20, 25
    assert run_seconds(20, costs, eval_every=10, checkpoint_every=20, after=5) == 20 + 30 + 200
    # steps 21 .. 30: an evaluation at 30 (also the last), a checkpoint at the last
    assert run_seconds(10, costs, eval_every=10, checkpoint_every=20, after=20) == 10 + 10 + 100


@pytest.mark.parametrize(("steps", "warmup", "points"),
                         [(1000, 100, [100, 500]), (1000, 300, [300, 500]),
                          (1000, 0, [100, 500]), (40, 5, [5, 20]), (3, 0, [1, 2]), (1, 0, [])])
def test_a_run_plans_again_at_a_tenth_past_the_warmup_and_at_half(steps, warmup, points):
    assert replan_points(steps, warmup) == points


def replans(record: dict) -> Replans:
    return Replans(record, warmup_steps=5, eval_every=10, checkpoint_every=20)


def test_a_replan_keeps_the_plan_on_time_and_shortens_a_slower_run():
    first = FakeRun().measure(minutes=1.0).record()  # 40 steps, 24.5 s spent before step 1
    on_time = replans(dict(first))
    assert on_time.due(5) and not on_time.due(6)
    # 5 steps at the calibrated 0.5 s: 33 s left fit steps 6 .. 40 (31.5 s), not 41 (35 s)
    assert on_time.replan(5, elapsed_s=2.5, seconds_per_step=STEP) == 40
    slower = replans(dict(first))
    # 5 steps at 0.6 s: 32.5 s left; steps 6 .. 35 take 18 + 4 evaluations + 2 checkpoints + 2
    # final evaluations = 32 s, 6 .. 36 take 32.6 s
    assert slower.replan(5, elapsed_s=3.0, seconds_per_step=0.6) == 35
    assert slower.budget["replans"] == [{"step": 5, "steps": 35, "seconds_per_step": 0.6}]
    assert not slower.due(5) and slower.due(20)
    faster = replans(dict(first))
    assert faster.replan(5, elapsed_s=1.5, seconds_per_step=0.3) > 40
    late = replans(dict(first))  # the time is spent: the step after the warmup, no fewer
    assert late.replan(5, elapsed_s=100.0, seconds_per_step=STEP) == 6
    assert late.replan(20, elapsed_s=100.0, seconds_per_step=STEP) == 21


def test_each_step_takes_the_end_planned_before_it():
    plan = replans(dict(FakeRun().measure(minutes=1.0).record()))
    plan.replan(5, elapsed_s=3.0, seconds_per_step=0.6)  # -> 35
    plan.replan(20, elapsed_s=12.0, seconds_per_step=0.55)
    second = plan.budget["replans"][1]["steps"]
    assert second != 35
    assert [plan.steps_for(n) for n in (1, 5, 6, 20, 21, 30)] == [40, 40, 35, 35, second, second]
    # a resumed run reads the same record: the same ends, nothing due again
    again = replans(json.loads(json.dumps(plan.budget)))
    assert [again.steps_for(n) for n in (5, 6, 21)] == [40, 35, second]
    assert not again.due(5) and not again.due(20)
