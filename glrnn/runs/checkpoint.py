"""Orbax checkpoints of a run: ``RUN/checkpoints/<step>/{params,opt_state,meta[,model_state]}``
(``model_state``: flax collections other than the parameters, such as BatchNorm's running
averages, saved only when the model has some).

Orbax writes each step into ``<step>.orbax-checkpoint-tmp-*`` and renames it when complete (the
atomic-rename protocol of local file systems), so a step directory is always whole; leftovers
of a killed save are removed when the manager opens. ``meta`` is the loop's JSON: its step (also
the data position: batch ``n`` is drawn from ``(data.seed, n)``), the base PRNG key from which
dropout keys are folded per step, and the elapsed time.

A step whose parameters, optimizer or model state hold NaN or inf is never written. A step that
cannot be read (a disk fault or a hand has damaged it since) is skipped by
:meth:`Checkpoints.newest_readable` (one line naming it and why), which falls back to the newest
step that restores.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from glrnn.config import ConfigError
from glrnn.files import check_folder
from glrnn.runs.distributed import is_writer

CHECKPOINTS = "checkpoints"
UNREADABLE = "unreadable-checkpoints"  # RUN/UNREADABLE/<step>: steps a resumed run set aside


@contextlib.contextmanager
def ctrl_c_deferred() -> Iterator[None]:
    """Ctrl-C (SIGINT) held back until the block ends, then handled as usual: orbax logs a
    KeyboardInterrupt that lands inside its save or its wait as a failed save, traceback and
    all, where the user should see one line."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[tuple[int, Any]] = []
    previous = signal.signal(signal.SIGINT, lambda *received: caught.append(received))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught and callable(previous):
        previous(*caught[0])


def quiet_closed_loop_callbacks() -> None:
    """Drop the tracebacks of orbax's other reads of a step that failed: it reads the arrays
    concurrently, and when one read fails the others finish after its event loop has closed;
    their callbacks' ``RuntimeError: Event loop is closed`` and their coroutines' errors would
    reach the user as a dozen tracebacks beside the one line that names the step. Other
    unraisable errors print as before."""
    previous = sys.unraisablehook
    if getattr(previous, "glrnn_quiet", False):
        return

    def hook(unraisable: Any) -> None:
        error, code = unraisable.exc_value, getattr(unraisable.object, "cr_code", None)
        closed_loop = isinstance(error, RuntimeError) and str(error) == "Event loop is closed"
        orphan_read = code is not None and "orbax" in code.co_filename  # a read never awaited
        if not (closed_loop or orphan_read):
            previous(unraisable)

    hook.glrnn_quiet = True
    sys.unraisablehook = hook


# what orbax and the meta's readers raise on a step with missing, truncated or garbled files
DAMAGE_ERRORS = (ValueError, KeyError, TypeError, OSError)
T = TypeVar("T")


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir).absolute() / CHECKPOINTS


def key_to_json(key: jax.Array) -> list[int]:
    """A typed PRNG key as a list of ints (its raw key data)."""
    return np.asarray(jax.random.key_data(key)).tolist()


def key_from_json(data: list[int]) -> jax.Array:
    return jax.random.wrap_key_data(np.asarray(data, np.uint32))


@jax.jit
def _finite(arrays: list[jax.Array]) -> list[jax.Array]:
    """Whether each array is free of NaN and inf: one program for all of them (op by op, the
    processes of a job running arrays sharded across them stall on each other)."""
    return [jnp.isfinite(x).all() for x in arrays]


def first_nonfinite(tree: Any) -> str | None:
    """The path of the first floating-point leaf of ``tree`` holding NaN or inf, or None."""
    leaves = [(path, x) for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]
              if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
    finite = jax.device_get(_finite([x for _, x in leaves]))
    bad = [jax.tree_util.keystr(path) for (path, _), ok in zip(leaves, finite, strict=True)
           if not ok]
    return bad[0] if bad else None


def unreadable_because(e: BaseException) -> str:
    """Why a step cannot be read, on one line: the error's kind and its first line."""
    return f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}"


def preservation(keep: int, keep_best: bool, metric: str = "val_loss",
                 higher: bool = False) -> Any:
    """Keep the last ``keep`` steps, and (``keep_best``) the one with the best ``metric`` (the
    highest if ``higher``, else the lowest) among those saved with one."""
    policies = ocp.checkpoint_managers
    latest = policies.LatestN(n=keep)
    if not keep_best:
        return latest
    best = policies.BestN(get_metric_fn=lambda metrics: metrics[metric], reverse=not higher,
                          n=1, keep_checkpoints_without_metrics=False)
    return policies.AnyPreservationPolicy([latest, best])


class Checkpoints:
    """Save and restore (params, opt_state, meta, model_state) by step, keeping the last
    ``keep`` steps and (``keep_best``) the best by the validation figure ``metric``."""

    def __init__(self, run_dir: str | Path, keep: int = 2, writable: bool = True,
                 keep_best: bool = False, metric: str = "val_loss", higher: bool = False) -> None:
        options = ocp.CheckpointManagerOptions(
            preservation_policy=preservation(keep, keep_best, metric, higher),
            create=writable, cleanup_tmp_directories=writable)
        self.metric = metric
        directory = check_folder(checkpoint_dir(run_dir), "the run's checkpoints")
        self.manager = ocp.CheckpointManager(directory, options=options)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, params: Any, opt_state: Any, meta: dict[str, Any],
             value: float | None = None, model_state: dict[str, Any] | None = None) -> None:
        """Start saving step ``step`` (asynchronously: training goes on while orbax writes;
        ``close`` waits for it). ``value`` (of the metric) ranks it for ``keep_best``. ValueError
        naming the array, and nothing written, if any state holds NaN or inf."""
        self._save(step, {"params": params, "opt_state": opt_state, "model_state": model_state},
                   meta, value)

    def save_params(self, step: int, params: Any, meta: dict[str, Any],
                    model_state: dict[str, Any] | None = None) -> None:
        """Save step ``step`` without optimizer state (a model imported from elsewhere:
        glrnn/convert/); generation, evaluation and ``train.init_from`` read it as any step."""
        self._save(step, {"params": params, "model_state": model_state}, meta)

    def _save(self, step: int, trees: dict[str, Any], meta: dict[str, Any],
              value: float | None = None) -> None:
        """Save ``trees`` (by item name; model_state only when it has arrays) and ``meta``."""
        for name, tree in trees.items():
            if (where := first_nonfinite(tree)) is not None:
                raise ValueError(f"step {step}: {name}{where} holds NaN or inf: not saved")
        items = {name: ocp.args.StandardSave(tree) for name, tree in trees.items()
                 if tree or name != "model_state"}
        with ctrl_c_deferred():
            self.manager.save(step, args=ocp.args.Composite(**items, meta=ocp.args.JsonSave(meta)),
                              metrics=None if value is None else {self.metric: value})

    def wait(self) -> None:
        """Wait for the pending save (a Ctrl-C meanwhile is raised once it is written)."""
        with ctrl_c_deferred():
            self.manager.wait_until_finished()

    def steps(self) -> list[int]:
        return list(self.manager.all_steps())

    def restore(self, step: int, params: Any, opt_state: Any,
                model_state: dict[str, Any] | None = None) -> tuple[Any, Any, dict[str, Any],
                                                                      dict[str, Any]]:
        """(params, opt_state, meta, model_state) of ``step``, shaped like the given (abstract)
        trees."""
        items = {"params": ocp.args.StandardRestore(params),
                 "opt_state": ocp.args.StandardRestore(opt_state),
                 "meta": ocp.args.JsonRestore()}
        if model_state:
            items["model_state"] = ocp.args.StandardRestore(model_state)
        out = self.manager.restore(step, args=ocp.args.Composite(**items))
        return (out["params"], out["opt_state"], out["meta"],
                out["model_state"] if model_state else {})

    def restore_params(self, step: int, params: Any,
                       model_state: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """(params, model_state) of ``step``, shaped like the given trees (no optimizer state:
        generation, evaluation, the end-of-run report)."""
        items = {"params": ocp.args.StandardRestore(params)}
        if model_state:
            items["model_state"] = ocp.args.StandardRestore(model_state)
        out = self.manager.restore(step, args=ocp.args.Composite(**items))
        return out["params"], out["model_state"] if model_state else {}

    def restore_saved(self, step: int) -> tuple[Any, dict[str, Any]]:
        """(params, model_state) of ``step`` as they were saved, numpy arrays: for a reader
        that has no model to shape them (an export)."""
        items = {"params": ocp.args.StandardRestore()}
        if (self.directory / str(step) / "model_state").is_dir():
            items["model_state"] = ocp.args.StandardRestore()
        out = self.manager.restore(step, args=ocp.args.Composite(**items))
        return out["params"], out["model_state"] if "model_state" in items else {}

    def newest_readable(self, restore: Callable[[int], T],
                      set_aside: bool = False) -> tuple[int, T]:
        """``(step, restore(step))`` for the newest step that ``restore`` reads without error;
        each newer step (damaged, or not this model's) is named on stderr with why. With
        ``set_aside`` (a run that will save those steps again) they are moved to
        ``RUN/unreadable-checkpoints/`` (by process 0 of a job; every process then sees them
        gone). ConfigError if no step can be read."""
        unreadable = []
        quiet_closed_loop_callbacks()
        for step in sorted(self.steps(), reverse=True):
            try:
                value = restore(step)
            except DAMAGE_ERRORS as e:
                unreadable.append((step, unreadable_because(e)))
                continue
            for bad, why in unreadable:
                moved = f"; moved to {self._set_aside(bad)}" if set_aside else ""
                print(f"warning: checkpoint step {bad} cannot be read ({why}): skipped, using "
                      f"step {step}{moved}", file=sys.stderr)
            if set_aside and unreadable:
                if jax.process_count() > 1:  # process 0 has moved them
                    multihost_utils.sync_global_devices("glrnn: unreadable steps set aside")
                self.manager.reload()
            return step, value
        raise ConfigError(f"{self.directory}: no checkpoint can be read ("
                          + "; ".join(f"step {s}: {why}" for s, why in unreadable) + ")")

    @property
    def directory(self) -> Path:
        return Path(self.manager.directory)

    def _set_aside(self, step: int) -> Path:
        """Move step ``step``'s directory to ``RUN/unreadable-checkpoints/<step>[.n]``."""
        target = self.directory.parent / UNREADABLE / str(step)
        n = 0
        while target.exists():
            n += 1
            target = target.with_name(f"{step}.{n}")
        if is_writer():
            target.parent.mkdir(exist_ok=True)
            (self.directory / str(step)).rename(target)
        return target

    def close(self) -> None:
        """Wait for pending saves and release the manager."""
        self.wait()
        self.manager.close()
