"""The online rules inside the training loop: a task's gradient by ``train.rule``, with the
signature of ``jax.value_and_grad(task.loss, has_aux=True)`` so that
``glrnn.train.loop.make_train_step`` takes either.

* Language models: inputs ``batch[:, :-1]``, targets ``batch[:, 1:]``, the state cleared where a
  document opens (a BOS input), as the segment ids do for BPTT.
* Classifiers run position by position as a causal model with ``pooling="none"`` (the same
  parameters): labels at positions are scored where they stand; one label per sequence with
  ``pooling="last"`` is scored at the sequence's last real position (the padding after it is
  never scored). Mean pooling (an error known only at the end), two-tower tasks, BatchNorm
  and bidirectional blocks are refused at start-up.
* Dropout: position t of a batch draws its masks from ``fold_in(key, t)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import jax
import jax.numpy as jnp

from glrnn.config import Config, ConfigError
from glrnn.losses import label_cross_entropy, token_cross_entropy
from glrnn.models import Classifier
from glrnn.online.grad import gradient_function
from glrnn.train.classify_task import ClassifyTask
from glrnn.train.lm_task import LMTask
from glrnn.train.task import Batch, ModelState, Params, Task

TaskGrad = Callable[[Params, ModelState, Batch, jax.Array],
                    tuple[tuple[jax.Array, ModelState], Params]]


def task_gradient(cfg: Config, task: Task) -> TaskGrad | None:
    """``(params, model_state, batch, key) -> ((loss, model_state), grads)`` by
    ``cfg.train.rule``; None for ``bptt`` (the loop differentiates ``task.loss``)."""
    rule = cfg.train.rule
    if rule == "bptt":
        return None
    if isinstance(task, LMTask):
        return lm_gradient(rule, task.model, task.tokenizer.bos_id)
    if isinstance(task, ClassifyTask):
        return _classifier_gradient(rule, cfg, task)
    raise ConfigError(f"train.rule={rule!r}: no online form for task {type(task).__name__}; "
                      "expected bptt")


def lm_gradient(rule: str, model: Any, bos_id: int) -> TaskGrad:
    """The language-model task's gradient by ``rule``: batch [B, L+1] int32 packed with
    ``bos_id`` opening each document."""
    grad = gradient_function(rule, model, token_cross_entropy)

    def fn(params, model_state, batch, key):
        inputs = batch[:, :-1]
        loss, grads = grad(params, inputs, batch[:, 1:], inputs == bos_id, key)
        return (loss, model_state), grads

    return fn


def _classifier_gradient(rule: str, cfg: Config, task: ClassifyTask) -> TaskGrad:
    info, pooling = task.info, cfg.model.classifier.pooling
    if info.two_tower:
        raise ConfigError(f"train.rule={rule!r}: task {info.name!r} compares two documents "
                          "(two towers); expected bptt")
    if pooling == "mean":
        raise ConfigError(f"model.classifier.pooling='mean': expected 'last' or 'none' with "
                          f"train.rule={rule!r} (a mean over the sequence has its error only at "
                          "the end)")
    model_cfg = replace(cfg.model, classifier=replace(cfg.model.classifier, pooling="none"))
    stepper = Classifier(model_cfg, info, task.label_slots)
    grad = gradient_function(rule, stepper, label_cross_entropy)

    def fn(params, model_state, batch, key):
        labels = batch["labels"]
        if labels.ndim == 1:  # one label per sequence: scored at its last real position
            positions = jnp.arange(batch["inputs"].shape[1])[None]
            labels = jnp.where(positions == batch["lengths"][:, None] - 1, labels[:, None], -1)
        loss, grads = grad(params, batch["inputs"], labels, key=key)
        return (loss, model_state), grads

    return fn
