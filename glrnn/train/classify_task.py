"""Classification of sequences (one label each) or of positions (labels at some positions, or K
labels per position): the classifier :class:`Task` over the arrays of glrnn/data/tasks/base.py.

* Batches: a seeded permutation per epoch, optionally grouped by length and cut to a power of
  two (``data.bucket_by_length``; glrnn/train/batching.py).
* Loss: softmax cross entropy averaged over every label that is not -1.
* Figures: ``val_loss`` (nats per label), ``val_acc`` (share of labels right) and, where a
  sequence carries several labels, ``val_seq_acc`` (share of sequences with every label right:
  the copy task's per-sequence accuracy). Checkpoints are ranked by ``val_seq_acc`` where it
  exists, else ``val_acc``.
* At the end: the best checkpoint on the test split (the validation split if there is none),
  with per-class accuracy and the confusion matrix in ``RUN/report.json`` and
  ``RUN/plots/confusion.png``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from glrnn.config import Config, ConfigError
from glrnn.data.tasks.base import Split, TaskData
from glrnn.files import write_text_atomic
from glrnn.losses import label_cross_entropy, label_nats
from glrnn.models import Classifier
from glrnn.online.grad import gradient_function
from glrnn.runs.distributed import is_writer
from glrnn.tokenizer import Tokenizer
from glrnn.train.batching import cut_to_length, epoch_batches
from glrnn.train.confusion import confusion_report
from glrnn.train.task import ModelState, Params, TaskGrad
from glrnn.train.variables import apply_model, init_variables

Batch = dict[str, np.ndarray]
REPORT = "report.json"


def split_batch(split: Split) -> Batch:
    """A split's arrays by the names the model and the loss take (second document if any)."""
    batch = {"inputs": split.inputs, "lengths": split.lengths, "labels": split.labels}
    if split.inputs2 is not None:
        batch |= {"inputs2": split.inputs2, "lengths2": split.lengths2}
    return batch


def target_positions(labels: np.ndarray) -> np.ndarray | None:
    """int [N, P]: the positions that carry a label in each sequence of labels [N, L, ...]
    (labelled ones first, in order; P = the most any sequence has), or None when more than a
    quarter of the positions of some sequence carry one (the head then runs everywhere)."""
    labelled = (labels >= 0).reshape(*labels.shape[:2], -1).any(axis=-1)  # [N, L]
    most = int(labelled.sum(axis=1).max())
    if most == 0 or 4 * most > labels.shape[1]:
        return None
    return np.argsort(~labelled, axis=1, kind="stable")[:, :most].astype(np.int32)


@dataclass(frozen=True)
class Examples:
    """A split as the model reads it: with ``positions`` (int [N, P], see
    :func:`target_positions`) the labels are those at the positions ([N, P, ...]), so the head
    runs only where there is a target (MQAR: 4 of 64 positions)."""

    split: Split
    positions: np.ndarray | None = None

    @classmethod
    def of(cls, split: Split) -> Examples:
        positions = target_positions(split.labels) if split.labels.ndim > 1 else None
        if positions is None:
            return cls(split)
        index = positions.reshape(positions.shape + (1,) * (split.labels.ndim - 2))
        labels = np.take_along_axis(split.labels, index, axis=1)
        return cls(replace(split, labels=labels), positions)

    def __len__(self) -> int:
        return len(self.split)

    def batch(self, index: np.ndarray) -> Batch:
        """The examples at ``index`` as named arrays (``positions`` among them if any)."""
        batch = split_batch(self.split.take(index))
        if self.positions is not None:
            batch["positions"] = self.positions[index]
        return batch


def epoch_steps(cfg: Config, data: TaskData) -> int:
    """Training steps in one epoch of ``data``: whole batches of ``data.batch_size`` (the
    last partial one dropped); ConfigError when not one batch fits."""
    examples = len(data.splits["train"])
    if cfg.data.batch_size > examples:
        raise ConfigError(f"data.batch_size={cfg.data.batch_size}: expected <= the "
                          f"{examples} training examples of task {data.info.name!r}")
    return examples // cfg.data.batch_size


def check_task_fits(cfg: Config, data: TaskData) -> None:
    """ConfigErrors for a config that cannot train on ``data``: the pooling against the labels'
    shape, a missing validation split, and what an online rule (``train.rule``) cannot train
    on a classifier: mean pooling (its error is known only at the end) and two towers. The
    model's own limits for the online rules are checked before (glrnn/online/rules.py)."""
    info, train = data.info, data.splits["train"]
    pooling = cfg.model.classifier.pooling
    per_position = train.labels.ndim > 1
    if per_position != (pooling == "none"):
        expected = ("'none' (a label at positions of the sequence)" if per_position
                    else "'mean' or 'last' (one label per sequence)")
        raise ConfigError(f"model.classifier.pooling={pooling!r}: expected {expected} for task "
                          f"{info.name!r}")
    if per_position and cfg.model.bidirectional:
        raise ConfigError(f"model.bidirectional=True: task {info.name!r} labels positions as "
                          "the sequence goes; expected a causal model (false)")
    if "val" not in data.splits:
        raise ConfigError(f"task {info.name!r} has no val split (has {sorted(data.splits)})")
    rule = cfg.train.rule
    if rule == "bptt":
        return
    if info.two_tower:
        raise ConfigError(f"train.rule={rule!r}: task {info.name!r} compares two documents "
                          "(two towers); expected bptt")
    if pooling == "mean":
        raise ConfigError(f"model.classifier.pooling='mean': expected 'last' or 'none' with "
                          f"train.rule={rule!r} (the model runs one position at a time; a mean "
                          "over the sequence has its error only at the end)")


class ClassifyTask:
    """A :class:`~glrnn.models.Classifier` of ``cfg.model`` on the splits of ``data``."""

    unit = "ex"
    rate_name = "examples_per_s"
    flops_per_item = 0.0  # no MFU: the classifier's FLOPs per example are not counted
    best_higher = True

    def __init__(self, cfg: Config, data: TaskData, tokenizer: Tokenizer) -> None:
        check_task_fits(cfg, data)
        self.cfg, self.data, self.info, self.tokenizer = cfg, data, data.info, tokenizer
        train = data.splits["train"]
        self.label_slots = train.labels.shape[2] if train.labels.ndim == 3 else 0
        # several labels per sequence: rank checkpoints by whole sequences right
        self.best_metric = "val_seq_acc" if train.labels.ndim > 1 else "val_acc"
        self.model = Classifier(cfg.model, self.info, self.label_slots)
        self.batch_size = cfg.data.batch_size
        self.items_per_step = self.batch_size
        self.examples = len(train)
        self.steps_per_epoch = epoch_steps(cfg, data)
        self.bucket = cfg.data.bucket_by_length
        self.sets = {name: Examples.of(split) for name, split in data.splits.items()}
        self._epoch: tuple[int, np.ndarray] = (-1, np.zeros((0, 0), np.int64))
        self._eval_step = jax.jit(self._eval_fn)

    def _logits(self, params: Params, model_state: ModelState, batch: Batch, *,
                train: bool = False, key: jax.Array | None = None) -> tuple[jax.Array, Any]:
        (logits, _), model_state = apply_model(
            self.model, params, model_state, batch["inputs"], batch["lengths"],
            batch.get("inputs2"), batch.get("lengths2"), positions=batch.get("positions"),
            train=train, key=key)
        return logits, model_state

    def init_variables(self, key: jax.Array) -> tuple[Params, Any, ModelState]:
        example = {name: a[:2] for name, a in self.train_batch(1).items()}
        return init_variables(self.model, key, example["inputs"], example["lengths"],
                              example.get("inputs2"), example.get("lengths2"),
                              positions=example.get("positions"))

    def loss(self, params: Params, model_state: ModelState, batch: Batch,
             key: jax.Array) -> tuple[jax.Array, ModelState]:
        logits, model_state = self._logits(params, model_state, batch, train=True, key=key)
        nats, valid = label_nats(logits, batch["labels"])
        return nats.sum() / jnp.maximum(valid.sum(), 1), model_state

    def train_batch(self, step: int, rows: slice = slice(None)) -> Batch:
        epoch, index = divmod(step - 1, self.steps_per_epoch)
        train = self.data.splits["train"]
        if self._epoch[0] != epoch:
            lengths = train.lengths if self.bucket else None
            self._epoch = (epoch, epoch_batches(self.examples, self.batch_size,
                                                self.cfg.data.seed, epoch, lengths))
        whole = self._epoch[1][index]
        batch = self.sets["train"].batch(whole[rows])
        if not self.bucket:
            return batch
        lengths = {name: getattr(train, name)[whole] for name in ("lengths", "lengths2")
                   if getattr(train, name) is not None}
        return cut_to_length(batch, lengths)

    def epoch(self, step: int) -> float:
        """Epochs done after training step ``step``."""
        return step / self.steps_per_epoch

    def step_figures(self, step: int) -> dict[str, float]:
        return {"epoch": self.epoch(step)}

    def online_gradient(self, rule: str) -> TaskGrad:
        """The gradient by the online ``rule``: the classifier run position by position as a
        causal model with ``pooling="none"`` (the same parameters). What the rule cannot train
        was refused when the task was made (:func:`check_task_fits`)."""
        info = self.info
        model_cfg = replace(self.cfg.model,
                            classifier=replace(self.cfg.model.classifier, pooling="none"))
        stepper = Classifier(model_cfg, info, self.label_slots)
        grad = gradient_function(rule, stepper, label_cross_entropy)

        def fn(params, model_state, batch, key):
            labels = batch["labels"]
            if labels.ndim == 1:  # one label per sequence: scored at its last real position
                positions = jnp.arange(batch["inputs"].shape[1])[None]
                labels = jnp.where(positions == batch["lengths"][:, None] - 1, labels[:, None],
                                   -1)
            loss, grads = grad(params, batch["inputs"], labels, key=key)
            return (loss, model_state), grads

        return fn

    def _eval_fn(self, params: Params, model_state: ModelState,
                 batch: Batch) -> tuple[jax.Array, jax.Array]:
        """(nats [labels' shape], predictions int [labels' shape])."""
        logits, _ = self._logits(params, model_state, batch)
        nats, _ = label_nats(logits, batch["labels"])
        return nats, jnp.argmax(logits, axis=-1)

    def predict(self, params: Params, model_state: ModelState,
                examples: Examples) -> tuple[np.ndarray, np.ndarray]:
        """(nats, predictions), each of the labels' shape, over a whole split in batches of B
        (the last one filled up with copies of the first example, then cut off; with length
        buckets the examples go by length and each batch is cut to its bucket)."""
        labels = examples.split.labels
        nats, predictions = np.zeros(labels.shape, np.float32), np.zeros(labels.shape, np.int32)
        order = (np.argsort(examples.split.lengths, kind="stable") if self.bucket
                 else np.arange(len(examples)))
        for start in range(0, len(examples), self.batch_size):
            index = order[start:start + self.batch_size]
            batch = examples.batch(np.resize(index, self.batch_size))
            if self.bucket:
                batch = cut_to_length(batch)
            n, p = (np.asarray(a)[:len(index)] for a in self._eval_step(params, model_state,
                                                                         batch))
            cut = (index,) if n.ndim == 1 else (index, slice(0, n.shape[1]))
            nats[cut], predictions[cut] = n, p
        return nats, predictions

    def figures(self, params: Params, model_state: ModelState, examples: Examples,
                prefix: str) -> tuple[dict[str, float], np.ndarray]:
        """({prefix}_loss, {prefix}_acc and, for several labels per sequence, {prefix}_seq_acc;
        the predictions, shaped like the examples' labels)."""
        nats, predictions = self.predict(params, model_state, examples)
        labels = examples.split.labels
        valid = labels >= 0
        right = (predictions == labels) & valid
        out = {f"{prefix}_loss": float(nats[valid].mean()),
               f"{prefix}_acc": float(right.sum() / valid.sum())}
        if labels.ndim > 1:
            axes = tuple(range(1, labels.ndim))
            scored = valid.any(axis=axes)
            whole = (right == valid).all(axis=axes)
            out[f"{prefix}_seq_acc"] = float(whole[scored].mean())
        return out, predictions

    def evaluate(self, params: Params, model_state: ModelState) -> dict[str, float]:
        return self.figures(params, model_state, self.sets["val"], "val")[0]

    def final_evaluation(self, params: Params, model_state: ModelState) -> dict[str, float]:
        return {}  # the whole val split is what evaluate scores; finish scores the test split

    @property
    def final_eval_size(self) -> float:
        """finish's split over the val split (what the end report costs in evaluations)."""
        return len(self.sets[self._report_split]) / len(self.sets["val"])

    @property
    def _report_split(self) -> str:
        return "test" if "test" in self.data.splits else "val"

    def state(self) -> dict[str, Any]:
        return {}  # batches are a function of the step

    def restore(self, state: dict[str, Any]) -> None:
        """Nothing to restore (see ``state``)."""

    def finish(self, run_dir: Path, params: Params, model_state: ModelState) -> dict[str, float]:
        """Score the test split (or val), write report.json and plots/confusion.png (process
        0 of a job; every process scores)."""
        name = self._report_split
        examples = self.sets[name]
        out, predictions = self.figures(params, model_state, examples, name)
        if not is_writer():
            return out
        title = f"{self.info.name}: {name} accuracy {out[f'{name}_acc']:.4f}"
        report = {"split": name, "examples": len(examples), **out, **confusion_report(
            examples.split.labels, predictions, self.info.n_classes, self.info.class_names,
            run_dir / "plots" / "confusion.png", title)}
        write_text_atomic(run_dir / REPORT, json.dumps(report, indent=2) + "\n")
        return out

    def describe(self, figures: dict[str, float]) -> str:
        parts = [f"{k.replace('_', ' ')} {v:.4f}" for k, v in figures.items()
                 if k.endswith(("_acc", "_loss")) and not k.startswith("train")]
        return ", ".join(parts)
