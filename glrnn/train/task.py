"""What the training loop trains: a :class:`Task` supplies the model, the batches, the loss and
the evaluation; the loop (glrnn/train/loop.py) does the rest the same way for every task
(optimizer, schedule, accumulation, NaN policy, checkpoints, resume, metrics, early stopping).

Three tasks exist: next-token prediction on text or audio (glrnn/train/lm_task.py), next-frame
prediction on real-valued frames (glrnn/train/frame_task.py) and classification of whole
sequences or of positions (glrnn/train/classify_task.py).

Variables: ``params`` (what the optimizer updates) and ``model_state`` (other flax collections
that training updates without gradients: BatchNorm's ``batch_stats``; ``{}`` for most models).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import flax.linen as nn
import jax

from glrnn.frames import FrameCodec
from glrnn.tokenizer import Tokenizer

Params = Any
ModelState = dict[str, Any]
Batch = Any  # a pytree of numpy arrays whose leading axis is the batch
# (params, model_state, batch, key) -> ((loss, model_state), grads): value_and_grad's signature
TaskGrad = Callable[[Params, ModelState, Batch, jax.Array],
                    tuple[tuple[jax.Array, ModelState], Params]]


class Task(Protocol):
    model: nn.Module
    # the run's tokenizer, or a continuous-input run's frame normalisation (config.json records it)
    tokenizer: Tokenizer | FrameCodec
    unit: str  # what ``items_per_step`` counts, for the progress bar: "tok", "frame" or "ex"
    # the throughput's name in metrics.jsonl: "tokens_per_s", "frames_per_s", "examples_per_s"
    rate_name: str
    items_per_step: int
    flops_per_item: float  # model FLOPs per item (for MFU); 0: MFU is not reported
    steps_per_epoch: int | None  # None: no epochs (the run's length is train.steps)
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

    def online_gradient(self, rule: str) -> TaskGrad:
        """``task.loss``'s value and gradient by the online learning ``rule`` (not bptt)."""

    def step_figures(self, step: int) -> dict[str, float]:
        """Figures of training step ``step`` for metrics.jsonl beside the loss (epochs)."""

    def evaluate(self, params: Params, model_state: ModelState) -> dict[str, float]:
        """Validation figures, ``val_loss`` and ``best_metric`` among them (the periodic
        evaluation: a language model's is an estimate on a fixed share of the split)."""

    def final_evaluation(self, params: Params, model_state: ModelState) -> dict[str, float]:
        """Figures of the run's final state beside its last periodic evaluation (a language
        model: the whole validation split, ``full_val_*``); ``{}`` when there are none."""

    @property
    def final_eval_size(self) -> float:
        """What the end of a run evaluates (``final_evaluation`` and ``finish``) in periodic
        evaluations: a budgeted run (``train.minutes``) keeps time for it."""

    def state(self) -> dict[str, Any]:
        """The data position to save with a checkpoint."""

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a saved data position."""

    def finish(self, run_dir: Path, params: Params, model_state: ModelState) -> dict[str, float]:
        """Work at the end of a run on its best parameters (reports, plots); figures to print."""

    def describe(self, figures: dict[str, float]) -> str:
        """A short line of the headline figures."""


def prefixed(prefix: str, figures: dict[str, float]) -> dict[str, float]:
    """``figures`` with every name behind ``prefix`` (``val_`` -> ``full_val_``)."""
    return {f"{prefix}{name}": value for name, value in figures.items()}


def whole_split_cost(targets: int, estimate_windows: int, seq_len: int,
                     batch_size: int) -> float:
    """Scoring ``targets`` positions in windows of ``seq_len``, in evaluations of the estimate's
    ``estimate_windows`` windows (both in batches of ``batch_size``): a language model's
    ``final_eval_size``."""
    windows = math.ceil(targets / seq_len)
    return math.ceil(windows / batch_size) / math.ceil(estimate_windows / batch_size)
