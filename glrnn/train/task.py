"""What the training loop trains: a :class:`Task` supplies the model, the batches, the loss and
the evaluation; the loop (glrnn/train/loop.py) does the rest the same way for every task
(optimizer, schedule, accumulation, NaN policy, checkpoints, resume, metrics, early stopping).

Two tasks exist: next-token prediction on text or audio (glrnn/train/lm_task.py) and
classification of whole sequences or of positions (glrnn/train/classify_task.py).

Variables: ``params`` (what the optimizer updates) and ``model_state`` (other flax collections
that training updates without gradients: BatchNorm's ``batch_stats``; ``{}`` for most models).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import flax.linen as nn
import jax

Params = Any
ModelState = dict[str, Any]
Batch = Any  # a pytree of numpy arrays whose leading axis is the batch


class Task(Protocol):
    model: nn.Module
    unit: str  # what ``items_per_step`` counts, for the progress bar: "tok" or "ex"
    items_per_step: int
    best_metric: str  # the validation figure that ranks checkpoints ("val_loss", "val_acc")
    best_higher: bool  # whether a larger ``best_metric`` is better

    def init_variables(self, key: jax.Array) -> tuple[Params, Any, ModelState]:
        """(params, their roles, model_state) of a fresh model."""

    def loss(self, params: Params, model_state: ModelState, batch: Batch,
             key: jax.Array) -> tuple[jax.Array, ModelState]:
        """Mean training loss of ``batch`` (dropout from ``key``) and the updated model_state."""

    def train_batch(self, step: int, rows: slice = slice(None)) -> Batch:
        """The rows ``rows`` (default: all) of the batch of training step ``step`` (a function
        of the step and the data position); each process of a job asks for its own."""

    def evaluate(self, params: Params, model_state: ModelState) -> dict[str, float]:
        """Validation figures, ``val_loss`` and ``best_metric`` among them."""

    def state(self) -> dict[str, Any]:
        """The data position to save with a checkpoint."""

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a saved data position."""

    def finish(self, run_dir: Path, params: Params, model_state: ModelState) -> dict[str, float]:
        """Work at the end of a run on its best parameters (reports, plots); figures to print."""

    def describe(self, figures: dict[str, float]) -> str:
        """A short line of the headline figures."""
