"""Wall-clock budgets (``train.minutes``): a run's length measured on the machine it runs on.

A budgeted run starts as any other, then, before its first step, measures what its time goes to
(:func:`measure`):

1. the training step's first call (compilation; spent, not part of the rate);
2. the steady step: rounds of 1, 2, 4, ... steps until ``calibration_seconds`` have passed
   (2 % of the budget, between 1 and 15 s; at most 256 steps), their mean the rate. These
   steps train a copy that is thrown away, on the batches of steps 1, 2, ... (the data position
   is put back after), so the run itself starts from step 1 with its schedule known;
3. one periodic evaluation, timed on its second call (the first compiles);
4. one checkpoint, saved whole into a folder that is removed after, timed on its second save
   (the first compiles the finiteness check and starts orbax's machinery).

The time spent so far (from the start of ``train``: reading the data, building the model,
compiling, measuring) is taken off the budget and :func:`plan_steps` picks the most steps
whose time fits in the rest, counting every periodic evaluation and checkpoint the loop will
make and the end's evaluations (``Task.final_eval_size`` periodic ones: a language model's
whole validation split). The cosine schedule ends at that step; ``config.json`` records the
steps and what was measured (:class:`Budget`), so a resumed run keeps them and measures
nothing. Every process of a job measures together; process 0's clock decides.

The calibration times the step alone on a copy, for a few seconds; the run's own steps also
read their batches and log, and a shared machine's rate drifts (over 10-minute runs on a 2-core
VM, the loop ran from 5 % faster to 20 % slower than its calibration). So the run plans again
(:class:`Replans`) when ``REPLAN_AT`` of its steps are done (10 %, at the earliest where the
warmup ends, and 50 %): the steps the loop took so far, without its evaluations and
checkpoints, give the rate; the time left (the budget less the start-up and the loop so far)
gives the steps that still fit, and the schedule's cosine ends there from then on
(``total_steps`` is a traced argument: no compilation; a 10 % change moves the lr by under 1 %
of its peak at 10 % of a run, a 5 % change by about 4 % at half). ``config.json``'s budget
keeps ``steps``, the first plan, and lists each re-plan in ``replans``: a resumed run takes the
plan in force at each step and measures again only where no re-plan is recorded.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from glrnn.errors import ConfigError
from glrnn.runs.distributed import from_process_0

CALIBRATION_SHARE = 0.02  # of the budget spent timing steps
CALIBRATION_SECONDS = (1.0, 15.0)  # ... but at least / at most this long
CALIBRATION_STEPS = 256  # ... and at most this many steps
REPLAN_AT = (0.1, 0.5)  # shares of the first plan's steps where the run plans again


@dataclass(frozen=True)
class Costs:
    """Seconds each part of a run takes on this machine."""

    step: float  # one training step, compiled
    evaluation: float  # one periodic evaluation, compiled
    checkpoint: float  # one checkpoint, saved whole
    final_evaluations: float = 1.0  # the end of the run's evaluations, in periodic ones


def _every(steps: int, every: int, after: int) -> int:
    """How many of steps ``after + 1 .. after + steps`` are multiples of ``every`` or the last."""
    end = after + steps
    return end // every - after // every + (1 if end % every else 0)


def run_seconds(steps: int, costs: Costs, eval_every: int, checkpoint_every: int,
                after: int = 0) -> float:
    """Seconds that steps ``after + 1 .. after + steps`` take, with the evaluations and
    checkpoints the loop makes (every ``eval_every`` / ``checkpoint_every`` steps and at the
    last) and the end's."""
    evaluations = _every(steps, eval_every, after)
    checkpoints = _every(steps, checkpoint_every, after)
    return (steps * costs.step + evaluations * costs.evaluation
            + checkpoints * costs.checkpoint + costs.final_evaluations * costs.evaluation)


def plan_steps(seconds: float, costs: Costs, eval_every: int, checkpoint_every: int,
               after: int = 0) -> int:
    """The most steps after step ``after`` whose :func:`run_seconds` fit in ``seconds`` (0:
    not even one)."""
    fits = lambda n: run_seconds(n, costs, eval_every, checkpoint_every, after) <= seconds  # noqa: E731
    if not fits(1):
        return 0
    low, high = 1, max(2, math.ceil(seconds / costs.step) + 1)  # fits(low), not fits(high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low


def calibration_seconds(budget_seconds: float) -> float:
    """How long the steady step is timed for a budget of ``budget_seconds``."""
    low, high = CALIBRATION_SECONDS
    return min(max(CALIBRATION_SHARE * budget_seconds, low), high)


@dataclass(frozen=True)
class Budget:
    """What a budgeted run measured and chose (``config.json``'s ``budget``)."""

    minutes: float  # the budget
    steps: int  # the steps chosen
    seconds_per_step: float  # the steady step (the rate)
    items_per_s: float  # the same as tokens (or examples) per second
    compile_s: float  # the training step's first call
    calibration_steps: int  # steps timed (on a copy, thrown away)
    eval_s: float  # one periodic evaluation
    checkpoint_s: float  # one checkpoint
    final_evaluations: float  # the end's evaluations, in periodic ones
    spent_s: float  # from the start of train() to the end of measuring
    planned_s: float  # spent_s + the planned run: at most minutes * 60

    def record(self) -> dict[str, float]:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        return (f"budget {self.minutes:g} min: {self.steps} steps at {self.seconds_per_step:.3f} "
                f"s/step (measured over {self.calibration_steps} steps after {self.compile_s:.1f} "
                f"s of compilation), evaluations {self.eval_s:.2f} s, checkpoints "
                f"{self.checkpoint_s:.2f} s; {self.spent_s:.1f} s spent before step 1, "
                f"{self.planned_s / 60:.2f} min planned")


@dataclass(frozen=True)
class Probes:
    """What :func:`measure` times: a training step (by its number, on a copy of the state;
    returns once it is done), one periodic evaluation and one checkpoint save (whole)."""

    step: Callable[[int], None]
    evaluate: Callable[[], None]
    checkpoint: Callable[[], None]


def _timed(fn: Callable[[], None], clock: Callable[[], float]) -> float:
    start = clock()
    fn()
    return clock() - start


def measure(minutes: float, started: float, probes: Probes, *, items_per_step: int,
            final_evaluations: float, eval_every: int, checkpoint_every: int,
            warmup_steps: int, clock: Callable[[], float] = time.perf_counter) -> Budget:
    """Time ``probes`` and choose the steps that fit in ``minutes`` from ``started`` (a
    ``clock`` reading); ConfigError, one line with the smallest budget that would do, when not
    one step fits, or no more than ``warmup_steps``."""
    budget = minutes * 60
    compile_s = _timed(lambda: probes.step(1), clock)
    timed, done, rounds = 0.0, 0, 1
    while True:
        start = clock()
        for n in range(2 + done, 2 + done + rounds):
            probes.step(n)
        timed += clock() - start
        done += rounds
        enough = timed >= calibration_seconds(budget) or done >= CALIBRATION_STEPS
        if from_process_0(enough):
            break
        rounds = min(2 * rounds, CALIBRATION_STEPS - done)
    step_s = from_process_0(timed / done)
    probes.evaluate()  # compiles
    eval_s = from_process_0(_timed(probes.evaluate, clock))
    probes.checkpoint()  # compiles
    checkpoint_s = from_process_0(_timed(probes.checkpoint, clock))
    costs = Costs(step_s, eval_s, checkpoint_s, final_evaluations)
    spent = from_process_0(clock() - started)
    steps = plan_steps(budget - spent, costs, eval_every, checkpoint_every)
    least = max(1, warmup_steps + 1)
    if steps < least:
        needed = spent + run_seconds(least, costs, eval_every, checkpoint_every)
        what = ("not one step fits" if steps == 0 else
                f"{steps} steps fit, not more than optim.warmup_steps={warmup_steps}")
        raise ConfigError(
            f"train.minutes={minutes:g}: too short on this machine ({what}: {spent:.1f} s went "
            f"to start-up, compilation and measuring, then {step_s:.3f} s a step, "
            f"{eval_s:.2f} s an evaluation, {checkpoint_s:.2f} s a checkpoint); expected at "
            f"least {math.ceil(needed / 60 * 100) / 100:.2f} minutes"
            + (" or a lower optim.warmup_steps" if steps else ""))
    return Budget(minutes=minutes, steps=steps, seconds_per_step=step_s,
                  items_per_s=items_per_step / step_s, compile_s=compile_s,
                  calibration_steps=done, eval_s=eval_s, checkpoint_s=checkpoint_s,
                  final_evaluations=final_evaluations, spent_s=spent,
                  planned_s=spent + run_seconds(steps, costs, eval_every, checkpoint_every))


def replan_points(steps: int, warmup_steps: int) -> list[int]:
    """The steps after which a run of ``steps`` planned steps plans again: ``REPLAN_AT`` of
    them, the first no earlier than the warmup's end; only steps before the last."""
    first, *rest = (max(1, round(share * steps)) for share in REPLAN_AT)
    return sorted({p for p in (max(first, warmup_steps), *rest) if p < steps})


@dataclass
class Replans:
    """A budgeted run's plans: ``budget`` (config.json's record: the first plan's ``steps``,
    what was measured, and ``replans``, a list of ``{"step", "steps", "seconds_per_step"}``:
    after ``step``, the run ends at ``steps``)."""

    budget: dict[str, Any]
    warmup_steps: int
    eval_every: int
    checkpoint_every: int

    @property
    def done(self) -> list[dict[str, Any]]:
        return self.budget.setdefault("replans", [])

    def steps_for(self, step: int) -> int:
        """The run's end as planned when ``step`` is taken (its schedule's ``total_steps``)."""
        ends = [r["steps"] for r in self.done if r["step"] < step]
        return ends[-1] if ends else self.budget["steps"]

    def due(self, step: int) -> bool:
        """Whether the run plans again after ``step`` (a point no re-plan is recorded for)."""
        return (step in replan_points(self.budget["steps"], self.warmup_steps)
                and all(r["step"] != step for r in self.done))

    def replan(self, step: int, elapsed_s: float, seconds_per_step: float) -> int:
        """Plan again after ``step``, ``elapsed_s`` into the run's loop (its start-up,
        ``budget["spent_s"]``, not counted), its steps taking ``seconds_per_step``; records
        and returns the new end (at least one step more, and past the warmup)."""
        costs = Costs(seconds_per_step, self.budget["eval_s"], self.budget["checkpoint_s"],
                      self.budget["final_evaluations"])
        left = self.budget["minutes"] * 60 - self.budget["spent_s"] - elapsed_s
        more = plan_steps(left, costs, self.eval_every, self.checkpoint_every, after=step)
        steps = from_process_0(max(step + more, step + 1, self.warmup_steps + 1))
        self.done.append({"step": step, "steps": steps, "seconds_per_step": seconds_per_step})
        return steps
