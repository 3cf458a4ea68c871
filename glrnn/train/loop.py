"""The training loop, one for every task (glrnn/train/task.py): AdamW on a schedule, gradient
accumulation, the NaN policy, periodic evaluation, checkpoints (the last k and the best), exact
resume, metrics rows, early stopping, the final state's evaluation (a language model's whole
validation split) and the task's report at the end. A run sized by ``train.minutes`` measures
its steps first (glrnn/train/budget.py).

Step ``n`` (counted from 1) trains on ``task.train_batch(n)`` with dropout key
``fold_in(key, n)``: both are functions of the step (and the data position saved in the
checkpoint), so a run resumed from the checkpoint of step ``k`` computes the same steps
``k+1, ...`` as one that never stopped.
"""

from __future__ import annotations

import itertools
import math
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh
from tqdm import tqdm

from glrnn.config import Config, ConfigError, check
from glrnn.data import make_data
from glrnn.data.frames import FrameData
from glrnn.data.tasks import TaskData, load_task
from glrnn.files import check_folder
from glrnn.params import overlay_params
from glrnn.runs.checkpoint import (
    DAMAGE_ERRORS,
    Checkpoints,
    key_from_json,
    key_to_json,
    unreadable_because,
)
from glrnn.runs.distributed import is_writer, job_stamp, start_together
from glrnn.runs.load import load_run
from glrnn.runs.lock import RunLock
from glrnn.runs.run import (
    RUN_DIR_OPTIONS,
    latest_link,
    named,
    point_latest,
    read_budget,
    record_budget,
    run_dir_of,
    write_config,
)
from glrnn.runs.start import start_checks
from glrnn.tokenizer import Tokenizer
from glrnn.train.budget import Probes, Replans, measure
from glrnn.train.classify_task import ClassifyTask, epoch_steps
from glrnn.train.flops import measure_peak_flops, mfu
from glrnn.train.frame_task import FrameTask
from glrnn.train.lm_task import LMTask
from glrnn.train.metrics import MetricsLog
from glrnn.train.online import task_gradient
from glrnn.train.optim import lr_schedule, make_optimizer
from glrnn.train.sharding import (
    batch_sharding,
    check_batch,
    local_rows,
    make_mesh,
    place,
    shard_batch,
    state_shardings,
)
from glrnn.train.task import Batch, ModelState, Params, Task

LossFn = Callable[[Params, ModelState, Batch, jax.Array], tuple[jax.Array, ModelState]]
TrainStep = Callable[..., tuple[Params, optax.OptState, ModelState, jax.Array, jax.Array,
                                jax.Array]]


class TrainingDiverged(RuntimeError):
    """The loss, the gradient norm or the updated state became NaN or infinite."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C: the message says where the last checkpoint is."""


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    step: int
    figures: dict[str, float] = field(default_factory=dict)  # last validation + end report

    @property
    def val_loss(self) -> float:
        return self.figures["val_loss"]

    @property
    def val_bpb(self) -> float:
        return self.figures["val_bpb"]


def make_train_step(loss_fn: LossFn, optimizer: optax.GradientTransformation,
                    grad_accum: int = 1, skip_nonfinite: bool = False,
                    grad_fn: Callable[..., Any] | None = None) -> TrainStep:
    """Jitted ``(params, opt_state, model_state, batch, dropout key[, total_steps]) -> (params,
    opt_state, model_state, mean loss, gradient global norm, finite)`` for ``loss_fn(params,
    model_state, batch, key) -> (loss, model_state)``; ``total_steps`` (traced: a run's
    length, for the schedule of glrnn.train.optim.make_optimizer) goes to the optimizer's
    ``update`` when given; ``finite``: the loss, the gradient norm and every
    array of the updated state are free of NaN and inf. With ``grad_accum`` = k every array of
    the batch is cut into k micro-batches of B/k rows whose gradients are averaged in a
    ``lax.scan``: the same update as the whole batch (for models without batch statistics),
    with a k-th of the activation memory. With ``skip_nonfinite``, a step that is not
    ``finite`` returns the state it was given. ``grad_fn``, with the signature of
    ``jax.value_and_grad(loss_fn, has_aux=True)``, replaces it (an online learning rule:
    glrnn/train/online.py)."""
    value_and_grad = grad_fn or jax.value_and_grad(loss_fn, has_aux=True)

    def accumulate(params, model_state, batch, key):
        micro = jax.tree.map(
            lambda x: x.reshape(grad_accum, x.shape[0] // grad_accum, *x.shape[1:]), batch)
        keys = jax.random.split(key, grad_accum)

        def add(carry, xs):
            total_loss, total_grads, state = carry
            (loss, state), grads = value_and_grad(params, state, *xs)
            return (total_loss + loss, jax.tree.map(jnp.add, total_grads, grads), state), None

        zero = (jnp.zeros((), jnp.float32), jax.tree.map(jnp.zeros_like, params), model_state)
        (loss, grads, model_state), _ = jax.lax.scan(add, zero, (micro, keys))
        return (loss / grad_accum, model_state), jax.tree.map(lambda g: g / grad_accum, grads)

    grad_fn = value_and_grad if grad_accum == 1 else accumulate

    @jax.jit
    def train_step(params, opt_state, model_state, batch, key, total_steps=None):
        (loss, new_model_state), grads = grad_fn(params, model_state, batch, key)
        grad_norm = optax.global_norm(grads)
        length = {} if total_steps is None else {"total_steps": total_steps}
        updates, new_opt_state = optimizer.update(grads, opt_state, params, **length)
        new = (optax.apply_updates(params, updates), new_opt_state, new_model_state)
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        for x in jax.tree.leaves(new):
            if jnp.issubdtype(x.dtype, jnp.inexact):
                finite &= jnp.isfinite(x).all()
        if skip_nonfinite:
            new = jax.tree.map(lambda n, o: jnp.where(finite, n, o), new,
                               (params, opt_state, model_state))
        return (*new, loss, grad_norm, finite)

    return train_step


def task_data(cfg: Config, data: Any = None) -> Any:
    """``data``, or the arrays of ``cfg.task`` for a classifier given none (read before the
    run's length is resolved: its epochs count them); a language model's data stay None,
    read by :func:`make_task`."""
    return load_task(cfg.task) if cfg.task.name and data is None else data


def make_task(cfg: Config, tokenizer: Tokenizer | None, data: Any = None) -> Task:
    """The task ``cfg`` trains: a classifier of ``data`` (a task's arrays: :func:`task_data`),
    else a language model of ``data`` (default: the data of ``cfg.data``, read with
    ``tokenizer``; frames for a continuous-input model)."""
    if isinstance(data, TaskData):
        return ClassifyTask(cfg, data, tokenizer)
    if cfg.model.norm == "batchnorm":
        raise ConfigError("model.norm='batchnorm': expected layernorm or rmsnorm for a language "
                          "model (batch statistics over positions would let it see the future)")
    if cfg.model.continuous:
        return FrameTask(cfg, data if data is not None else FrameData(cfg.data,
                                                                      cfg.model.frame_width))
    return LMTask(cfg, data if data is not None else make_data(cfg.data, tokenizer))


def with_steps(cfg: Config, steps: int) -> Config:
    return replace(cfg, train=replace(cfg.train, steps=steps))


def resolve_steps(cfg: Config, data: Any) -> Config:
    """``cfg`` with the run's length in ``train.steps``, decided here once and before a
    language model's data are read: ``train.steps``, or ``train.epochs`` over a classifier's
    training examples (``data``: its arrays, :func:`task_data`). ConfigError unless
    ``optim.warmup_steps`` is below that length. A budgeted run (``train.minutes``) keeps its
    steps for the budget to measure (glrnn/train/budget.py refuses a budget that fits no
    more steps than the warmup, with the budget that would)."""
    if cfg.train.minutes:
        return cfg
    steps, length = cfg.train.steps, f"train.steps ({cfg.train.steps})"
    if cfg.train.epochs > 0:
        if not isinstance(data, TaskData):
            raise ConfigError(f"train.epochs={cfg.train.epochs}: expected 0 for a language "
                              "model (its length is train.steps)")
        per_epoch = epoch_steps(cfg, data)
        steps = max(1, math.ceil(cfg.train.epochs * per_epoch))
        length = (f"the {steps} steps of train.epochs={cfg.train.epochs} ({per_epoch} per "
                  "epoch)")
    check(cfg.optim.warmup_steps < steps, "optim.warmup_steps", cfg.optim.warmup_steps,
          f"< {length}")
    return with_steps(cfg, steps)


def _fit_budget(cfg: Config, task: Task, state: State, train_step: TrainStep, run_dir: Path,
                started: float) -> tuple[Config, dict[str, Any]]:
    """``cfg`` with the steps that fit in ``train.minutes`` from ``started`` (a
    ``time.perf_counter`` reading), measured by glrnn/train/budget.py with ``train_step`` on a
    copy of ``state`` (which stays as it was, as does the data position), and the budget's
    record; process 0 writes config.json with it."""
    batch_of = _batches(cfg, task, state.mesh)
    total = np.int32(cfg.train.steps)  # a traced argument: the run's own steps compile nothing

    def step(n: int) -> None:
        float(train_step(state.params, state.opt_state, state.model_state, batch_of(n),
                         jax.random.fold_in(state.dropout_key, n), total)[3])

    # checkpoints saved there are removed after (a name of its own for each start of a job)
    probe = run_dir / f".budget-probe-{job_stamp()}"
    saves, numbers = Checkpoints(probe, keep=1), itertools.count(1)

    def checkpoint() -> None:
        number = next(numbers)
        saves.save(number, state.params, state.opt_state, {"step": number},
                   model_state=state.model_state)
        saves.wait()

    position = task.state()
    try:
        budget = measure(cfg.train.minutes, started,
                         Probes(step, lambda: task.evaluate(state.params, state.model_state),
                                checkpoint),
                         items_per_step=task.items_per_step,
                         final_evaluations=task.final_eval_size,
                         eval_every=cfg.train.eval_every,
                         checkpoint_every=cfg.train.checkpoint_every,
                         warmup_steps=cfg.optim.warmup_steps)
    finally:
        saves.close()
        if is_writer():
            shutil.rmtree(probe, ignore_errors=True)
    task.restore(position)
    cfg = with_steps(cfg, budget.steps)
    if is_writer():
        write_config(run_dir, cfg, task.tokenizer, budget.record())
    _say(budget.describe())
    return cfg, budget.record()


def _batches(cfg: Config, task: Task, mesh: Mesh) -> Callable[[int], Batch]:
    """Training step -> this process's share of its batch, placed on the mesh."""
    batches = batch_sharding(mesh)
    rows = local_rows(batches, cfg.data.batch_size)  # this process's share of every batch
    return lambda step: jax.tree.map(lambda x: shard_batch(x, batches, cfg.data.batch_size),
                                     task.train_batch(step, rows))


def train(cfg: Config, data: Any = None) -> TrainResult:
    """Train ``cfg`` in ``OUT/NAME``, resuming from its newest readable checkpoint if any.
    Everything is checked before the run directory is made or ``OUT/latest`` moves, and the
    directory is locked while the run trains (glrnn/runs/lock.py). Every process of a job
    calls it alike and their start-ups agree (glrnn/runs/distributed.py); process 0 writes
    the run directory's files."""
    clock = time.perf_counter()  # a budget (train.minutes) counts from here
    started = start_together(lambda: _start(cfg, data), config_of=lambda s: s.cfg,
                             undo=Started.abandon)
    cfg, task, run_dir, state, metrics, budget = (started.cfg, started.task, started.run_dir,
                                                  started.state, started.metrics, started.budget)
    try:
        train_step = make_train_step(task.loss, state.optimizer, cfg.optim.grad_accum,
                                     skip_nonfinite=cfg.train.on_nan == "skip",
                                     grad_fn=task_gradient(cfg, task))
        # process 0 alone measures the matmul peak (for MFU)
        peak = measure_peak_flops() if task.flops_per_item and is_writer() else 0.0
        # orbax's manager: every process of a job at once (it syncs them)
        checkpoints = Checkpoints(run_dir, keep=cfg.train.keep_checkpoints,
                                  keep_best=cfg.train.keep_best, metric=task.best_metric,
                                  higher=task.best_higher)
    except BaseException:
        started.abandon()
        raise
    if not started.measured:
        try:
            cfg, budget = _fit_budget(cfg, task, state, train_step, run_dir, clock)
        except BaseException:
            checkpoints.close()
            started.abandon()
            raise
    try:
        if is_writer():
            point_latest(run_dir)
        if checkpoints.latest_step() is not None:
            state = _resume(state, checkpoints, task)
            _say(f"resuming {run_dir} from step {state.step}")
        metrics.drop_after(state.step)
        replans = None if budget is None else Replans(
            budget, cfg.optim.warmup_steps, cfg.train.eval_every, cfg.train.checkpoint_every)
        state, figures = _run(cfg, task, state, train_step, checkpoints, metrics, peak,
                              replans, run_dir)
        checkpoints.wait()
        figures |= _finish(task, state, checkpoints, run_dir)
    except KeyboardInterrupt:
        checkpoints.wait()
        raise TrainingInterrupted(f"interrupted; {_last_checkpoint(checkpoints)}") from None
    finally:
        checkpoints.close()
        metrics.close()
        started.lock.release()
    _say(f"run directory: {run_dir}  (step {state.step}, {task.describe(figures)}); "
         f"curves: python -m glrnn.plot {run_dir}")
    return TrainResult(run_dir, state.step, figures)


def _last_checkpoint(checkpoints: Checkpoints) -> str:
    """Where a stopped run can be resumed from, in words."""
    step = checkpoints.latest_step()
    if step is None:
        return f"no checkpoint was saved in {checkpoints.directory} yet"
    return (f"the last good checkpoint is step {step} in {checkpoints.directory} (the same "
            "command resumes from it)")


@dataclass(frozen=True)
class Started:
    """A run ready to train: its resolved config, task, directory (locked by process 0),
    fresh state and metrics log; ``measured``: False for a budgeted run whose steps are still
    to be measured (its config.json is written then); ``budget``: a resumed budgeted run's
    record."""

    cfg: Config
    task: Task
    run_dir: Path
    state: State
    lock: RunLock
    metrics: MetricsLog
    measured: bool = True
    budget: dict[str, Any] | None = None

    def abandon(self) -> None:
        """Let go of the run directory (removed if this start made it): the start failed
        after it, here or in another process of the job."""
        self.metrics.close()
        self.lock.abandon()


def _start(cfg: Config, data: Any) -> Started:
    """The start-up work, all of it before anything is trained and none of it talking to the
    other processes of a job: the tokenizer and the checks of glrnn/runs/start.py, the run's
    length (:func:`resolve_steps`), the run directory's place, the mesh (the batch checked
    against it), the task and its data, the fresh state on the mesh; then the run
    directory, locked by process 0, with its config.json (process 0 writes it) and the metrics
    log. A budgeted run (``train.minutes``) takes its steps from the budget its config.json
    records; without one they are still to be measured, and config.json waits for them."""
    tokenizer = start_checks(cfg)
    data = task_data(cfg, data)
    cfg = resolve_steps(named(cfg, "run"), data)
    run_dir = run_dir_of(cfg).absolute()
    latest_link(check_folder(run_dir, RUN_DIR_OPTIONS).parent)
    mesh = make_mesh(cfg.train.fsdp)
    check_batch(cfg.data.batch_size, mesh)
    task = make_task(cfg, tokenizer, data)
    state = _initial_state(cfg, task, mesh)
    writer = is_writer()
    lock = RunLock(run_dir, hold=writer)
    try:
        budget = read_budget(run_dir) if cfg.train.minutes else None
        if budget is not None:  # measured when the run started: resumed with the same steps
            cfg = with_steps(cfg, budget["steps"])
        measured = not cfg.train.minutes or budget is not None
        if writer and measured:
            write_config(run_dir, cfg, task.tokenizer)
        metrics = MetricsLog(run_dir, cfg.train.tensorboard, cfg.train.wandb, writer=writer)
    except BaseException:
        lock.abandon()
        raise
    return Started(cfg, task, run_dir, state, lock, metrics, measured, budget)


def _say(line: str) -> None:
    """A line beside the progress bar, from process 0 only."""
    if is_writer():
        tqdm.write(line)


@dataclass
class State:
    """What a checkpoint holds: parameters, optimizer and model state, step, dropout key,
    elapsed time, the best validation figure so far and its step; with the optimizer that goes
    with them and the mesh they are placed on."""

    params: Params
    opt_state: optax.OptState
    model_state: ModelState
    step: int
    dropout_key: jax.Array
    elapsed: float
    optimizer: optax.GradientTransformation
    mesh: Any
    best: dict[str, float] = field(default_factory=dict)  # {"step": s, "value": v}


def _initial_state(cfg: Config, task: Task, mesh: Mesh) -> State:
    """Fresh parameters, optimizer and model state, placed on the mesh."""
    init_key, dropout_key = jax.random.split(jax.random.key(cfg.train.seed))
    params, roles, model_state = task.init_variables(init_key)
    if cfg.train.init_from:
        try:
            params = overlay_params(params, load_run(cfg.train.init_from)[3])
        except ValueError as e:  # a parameter the model lacks, or of another shape
            raise ConfigError(f"train.init_from={cfg.train.init_from!r}: {e}") from e
    optimizer = make_optimizer(cfg.optim, cfg.train.steps, roles)
    opt_state = optimizer.init(params)
    put = lambda tree: place(tree, state_shardings(tree, mesh))  # noqa: E731
    return State(put(params), put(opt_state), put(model_state), 0, dropout_key, 0.0, optimizer,
                 mesh)


def _resume(state: State, checkpoints: Checkpoints, task: Task) -> State:
    """``state`` with what the newest readable checkpoint holds (restored into the same
    shardings; unreadable newer steps are set aside); the data continue from the position
    saved with it."""

    def restore(step: int) -> tuple[State, dict[str, Any]]:
        params, opt_state, meta, model_state = checkpoints.restore(
            step, state.params, state.opt_state, state.model_state)
        return replace(state, params=params, opt_state=opt_state, model_state=model_state,
                       step=meta["step"], dropout_key=key_from_json(meta["rng"]),
                       elapsed=meta["elapsed"], best=meta.get("best", {})), meta.get("data", {})

    _, (state, data) = checkpoints.newest_readable(restore, set_aside=True)
    task.restore(data)
    return state


def _improved(task: Task, best: dict[str, float], value: float) -> bool:
    if not best:
        return True
    return value > best["value"] if task.best_higher else value < best["value"]


def _run(cfg: Config, task: Task, state: State, train_step: TrainStep,
         checkpoints: Checkpoints, metrics: MetricsLog, peak: float,
         replans: Replans | None = None,
         run_dir: Path | None = None) -> tuple[State, dict[str, float]]:
    """Steps ``state.step + 1 .. cfg.train.steps`` (fewer if early stopping ends the run; a
    budgeted run's ``replans`` move the end, recorded in ``run_dir``'s config.json); returns
    the final state and the last validation figures with the final state's (at the last step,
    also in its metrics row). ``peak``: the matmul FLOP/s for MFU (0: none)."""
    skip = cfg.train.on_nan == "skip"
    ends = (lambda _: cfg.train.steps) if replans is None else replans.steps_for
    batch_of = _batches(cfg, task, state.mesh)
    writer = is_writer()  # process 0 alone logs and draws the bar
    params, opt_state, model_state = state.params, state.opt_state, state.model_state
    clock = time.perf_counter()
    window_start, window_steps, window_losses, skipped, in_a_row = clock, 0, [], 0, 0
    val: dict[str, float] = {}
    best, step, end = dict(state.best), state.step, ends(state.step + 1)
    paced, paused = (clock, state.step), 0.0  # the rate's start; evaluating and saving since
    bar = tqdm(total=end, initial=state.step, unit="step", dynamic_ncols=True,
               disable=not writer)
    try:
        while step < end:
            step += 1
            params, opt_state, model_state, loss, grad_norm, finite = train_step(
                params, opt_state, model_state, batch_of(step),
                jax.random.fold_in(state.dropout_key, step), np.int32(end))
            loss, grad_norm = float(loss), float(grad_norm)
            if finite:
                window_losses.append(loss)
                in_a_row = 0
            else:
                skipped, in_a_row = skipped + 1, in_a_row + 1
                what = f"loss={loss}, grad_norm={grad_norm}"
                if math.isfinite(loss) and math.isfinite(grad_norm):
                    what += ", the updated parameters or optimizer state"
                if not skip or in_a_row > cfg.train.max_skips:
                    raise TrainingDiverged(
                        f"step {step}: {what} (not finite"
                        f"{f', {in_a_row} steps in a row' if skip else ''}); "
                        f"{_last_checkpoint(checkpoints)}")
                _say(f"step {step}: {what} (not finite): batch skipped")
            window_steps += 1
            rate = window_steps * task.items_per_step / (time.perf_counter() - window_start)
            bar.set_postfix({"loss": f"{loss:.4f}", f"{task.unit}/s": f"{rate:,.0f}"},
                            refresh=False)
            bar.update(1)
            last = step == end
            evaluated = step % cfg.train.eval_every == 0 or last
            stop_early = False
            pause = time.perf_counter()
            if evaluated:
                val = task.evaluate(params, model_state)
                if _improved(task, best, val[task.best_metric]):
                    best = {"step": step, "value": val[task.best_metric]}
                stale = (step - best["step"]) // cfg.train.eval_every
                stop_early = 0 < cfg.train.patience <= stale and not last
                _say(f"step {step}: {task.describe(val)}"
                     + (f"; no better {task.best_metric} in {stale} evaluations: "
                        "stopping early" if stop_early else ""))
                if last or stop_early:  # the final state: its figures join the row
                    final = task.final_evaluation(params, model_state)
                    if final:
                        _say(f"step {step}: {task.describe(final)} (the final state; "
                             f"metrics.jsonl, row of step {step})")
                    val |= final
            elapsed = state.elapsed + time.perf_counter() - clock
            if step % cfg.train.log_every == 0 or evaluated:
                if writer:  # a window of skipped steps only has no loss to report
                    losses = {"loss": float(np.mean(window_losses))} if window_losses else {}
                    extra = ({"mfu": mfu(rate, task.flops_per_item, peak)} if peak else {})
                    metrics.write({"step": step, **losses,
                                   "lr": float(lr_schedule(cfg.optim, end)(step - 1)),
                                   "grad_norm": grad_norm,
                                   task.rate_name: rate, "elapsed": elapsed, **extra,
                                   **task.step_figures(step),
                                   "skipped": skipped, **(val if evaluated else {})})
                window_losses, window_steps, window_start = [], 0, time.perf_counter()
            if step % cfg.train.checkpoint_every == 0 or last or stop_early:
                checkpoints.save(step, params, opt_state,
                                 {"step": step, "rng": key_to_json(state.dropout_key),
                                  "elapsed": elapsed, "data": task.state(), "best": best},
                                 value=val[task.best_metric] if evaluated else None,
                                 model_state=model_state)
            if stop_early:
                break
            paused += time.perf_counter() - pause
            if replans is not None and not last and replans.due(step):
                now = time.perf_counter()
                seconds_per_step = (now - paced[0] - paused) / (step - paced[1])
                replans.replan(step, state.elapsed + now - clock, seconds_per_step)
                if writer:
                    record_budget(run_dir, replans.budget)
                paced, paused = (now, step), 0.0
            elif step == state.step + 1:  # this process's first step compiled: pace after it
                paced, paused = (time.perf_counter(), step), 0.0
            if ends(step + 1) != end:
                end = bar.total = ends(step + 1)
                rate_s = next(r["seconds_per_step"] for r in replans.done if r["step"] == step)
                _say(f"step {step}: {end} steps now fit in the budget (the loop's rate: "
                     f"{rate_s:.3f} s/step)")
    finally:
        bar.close()
    if not val:  # the run was already complete: evaluate what it ended with
        val = task.evaluate(params, model_state) | task.final_evaluation(params, model_state)
    state = replace(state, params=params, opt_state=opt_state, model_state=model_state,
                    step=step, best=best)
    return state, val


def _finish(task: Task, state: State, checkpoints: Checkpoints,
            run_dir: Path) -> dict[str, float]:
    """The task's end-of-run work on the best checkpoint (the final state if it was not kept)."""
    params, model_state = state.params, state.model_state
    best_step = state.best.get("step")
    if best_step is not None and best_step != state.step and best_step in checkpoints.steps():
        try:
            params, model_state = checkpoints.restore_params(best_step, params, model_state)
        except DAMAGE_ERRORS as e:
            print(f"warning: the best checkpoint, step {best_step}, cannot be read "
                  f"({unreadable_because(e)}): the final state is scored instead",
                  file=sys.stderr)
    return task.finish(run_dir, params, model_state)
