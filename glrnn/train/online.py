"""The online rules inside the training loop: a task's gradient by ``train.rule``
(``Task.online_gradient``: glrnn/train/lm_task.py, glrnn/train/classify_task.py), with the
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

from glrnn.config import Config
from glrnn.train.task import Task, TaskGrad


def task_gradient(cfg: Config, task: Task) -> TaskGrad | None:
    """``(params, model_state, batch, key) -> ((loss, model_state), grads)`` by
    ``cfg.train.rule``; None for ``bptt`` (the loop differentiates ``task.loss``)."""
    rule = cfg.train.rule
    return None if rule == "bptt" else task.online_gradient(rule)
