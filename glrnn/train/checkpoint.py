"""Orbax checkpoints of a run: ``RUN/checkpoints/<step>/{params,opt_state,meta}``.

Orbax writes each step into ``<step>.orbax-checkpoint-tmp-*`` and renames it when complete (the
atomic-rename protocol of local file systems), so a step directory is always whole; leftovers
of a killed save are removed when the manager opens. ``meta`` is the loop's JSON: its step (also
the data position: batch ``n`` is drawn from ``(data.seed, n)``), the base PRNG key from which
dropout keys are folded per step, and the elapsed time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

CHECKPOINTS = "checkpoints"


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir).absolute() / CHECKPOINTS


def key_to_json(key: jax.Array) -> list[int]:
    """A typed PRNG key as a list of ints (its raw key data)."""
    return np.asarray(jax.random.key_data(key)).tolist()


def key_from_json(data: list[int]) -> jax.Array:
    return jax.random.wrap_key_data(np.asarray(data, np.uint32))


def preservation(keep: int, keep_best: bool) -> Any:
    """Keep the last ``keep`` steps, and (``keep_best``) the one with the lowest ``val_loss``
    among those saved with one."""
    policies = ocp.checkpoint_managers
    latest = policies.LatestN(n=keep)
    if not keep_best:
        return latest
    best = policies.BestN(get_metric_fn=lambda metrics: metrics["val_loss"], reverse=True, n=1,
                          keep_checkpoints_without_metrics=False)
    return policies.AnyPreservationPolicy([latest, best])


class Checkpoints:
    """Save and restore (params, opt_state, meta) by step, keeping the last ``keep`` steps and
    (``keep_best``) the best by validation loss."""

    def __init__(self, run_dir: str | Path, keep: int = 2, writable: bool = True,
                 keep_best: bool = False) -> None:
        options = ocp.CheckpointManagerOptions(
            preservation_policy=preservation(keep, keep_best),
            create=writable, cleanup_tmp_directories=writable)
        self.manager = ocp.CheckpointManager(checkpoint_dir(run_dir), options=options)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, params: Any, opt_state: Any, meta: dict[str, Any],
             val_loss: float | None = None) -> None:
        """Start saving step ``step`` (asynchronously: training goes on while orbax writes;
        ``close`` waits for it). ``val_loss`` ranks it for ``keep_best``."""
        self.manager.save(step, args=ocp.args.Composite(
            params=ocp.args.StandardSave(params),
            opt_state=ocp.args.StandardSave(opt_state),
            meta=ocp.args.JsonSave(meta)),
            metrics=None if val_loss is None else {"val_loss": val_loss})

    def steps(self) -> list[int]:
        return list(self.manager.all_steps())

    def restore(self, step: int, params: Any, opt_state: Any) -> tuple[Any, Any, dict[str, Any]]:
        """(params, opt_state, meta) of ``step``, shaped like the given (abstract) trees."""
        out = self.manager.restore(step, args=ocp.args.Composite(
            params=ocp.args.StandardRestore(params),
            opt_state=ocp.args.StandardRestore(opt_state),
            meta=ocp.args.JsonRestore()))
        return out["params"], out["opt_state"], out["meta"]

    def restore_params(self, step: int, params: Any) -> Any:
        """Only the parameters of ``step``, shaped like ``params`` (for generation)."""
        out = self.manager.restore(step, args=ocp.args.Composite(
            params=ocp.args.StandardRestore(params)))
        return out["params"]

    def close(self) -> None:
        """Wait for pending saves and release the manager."""
        self.manager.wait_until_finished()
        self.manager.close()
