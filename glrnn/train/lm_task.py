"""Next-token prediction on packed text or audio windows: the language-model :class:`Task`.

A batch is ``[B, L+1]`` int32 (``glrnn.data``); the loss is the cross entropy of the L targets,
documents (each opened by BOS) never seeing each other through the recurrent state; evaluation
reports nats and bits per token, perplexity and bits per byte of the targets' text.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from glrnn.config import Config
from glrnn.data.text import segment_ids
from glrnn.losses import cross_entropy, token_cross_entropy
from glrnn.models import LanguageModel
from glrnn.online.grad import gradient_function
from glrnn.train.flops import model_flops_per_token
from glrnn.train.metrics import bits_per_byte
from glrnn.train.task import ModelState, Params, TaskGrad
from glrnn.train.variables import apply_model, init_variables

EvalStep = Callable[[Params, ModelState, jax.Array], jax.Array]


def batch_nats(model: LanguageModel, params: Params, batch: jax.Array, bos_id: int, *,
               model_state: ModelState | None = None, train: bool = False,
               key: jax.Array | None = None) -> tuple[jax.Array, ModelState]:
    """(nats per target [B, L], model_state) of a packed batch [B, L+1] int32; documents (each
    opened by ``bos_id``) do not see each other: the segment ids reset the recurrent state."""
    inputs = batch[:, :-1]
    (logits, _), model_state = apply_model(model, params, model_state or {}, inputs,
                                           segment_ids=segment_ids(inputs, bos_id), train=train,
                                           key=key)
    return cross_entropy(logits, batch[:, 1:]), model_state


def lm_loss(model: LanguageModel, bos_id: int) -> Callable[..., tuple[jax.Array, ModelState]]:
    """The training loss ``(params, model_state, batch [B, L+1], dropout key) -> (mean nats per
    target, model_state)`` (what glrnn.train.loop.make_train_step takes)."""

    def loss(params: Params, model_state: ModelState, batch: jax.Array,
             key: jax.Array) -> tuple[jax.Array, ModelState]:
        nats, model_state = batch_nats(model, params, batch, bos_id, model_state=model_state,
                                       train=True, key=key)
        return nats.mean(), model_state

    return loss


def make_eval_step(model: LanguageModel, bos_id: int) -> EvalStep:
    """Jitted ``(params, model_state, batch [B, L+1] int32) -> total nats over the B*L
    targets``."""

    @jax.jit
    def eval_step(params, model_state, batch):
        return batch_nats(model, params, batch, bos_id, model_state=model_state)[0].sum()

    return eval_step


def evaluate(eval_step: EvalStep, params: Params, model_state: ModelState,
             batches: list[np.ndarray], byte_lengths: np.ndarray) -> dict[str, float]:
    """val_loss (nats per token), bits per token, perplexity and val_bpb (bits per byte of the
    targets' text)."""
    nats = sum(float(eval_step(params, model_state, batch)) for batch in batches)
    tokens = sum(batch[:, 1:].size for batch in batches)
    n_bytes = int(sum(byte_lengths[batch[:, 1:]].sum() for batch in batches))
    loss = nats / tokens
    return {"val_loss": loss, "val_bpb": bits_per_byte(nats, n_bytes),
            "val_bits_per_token": loss / math.log(2), "val_ppl": math.exp(min(loss, 700.0))}


def lm_gradient(rule: str, model: Any, bos_id: int) -> TaskGrad:
    """The language-model task's gradient by ``rule``: batch [B, L+1] int32 packed with
    ``bos_id`` opening each document."""
    grad = gradient_function(rule, model, token_cross_entropy)

    def fn(params, model_state, batch, key):
        inputs = batch[:, :-1]
        loss, grads = grad(params, inputs, batch[:, 1:], inputs == bos_id, key)
        return (loss, model_state), grads

    return fn


class LMTask:
    """A language model of ``cfg.model`` on ``data`` (TextData, StreamingTextData, AudioData)."""

    unit = "tok"
    rate_name = "tokens_per_s"
    steps_per_epoch = None  # no epochs: a language model's length is train.steps
    best_metric = "val_loss"
    best_higher = False

    def __init__(self, cfg: Config, data: Any) -> None:
        self.cfg, self.data, self.tokenizer = cfg, data, data.tokenizer
        self.model = LanguageModel(cfg.model)
        self.items_per_step = cfg.data.batch_size * cfg.data.seq_len
        self.flops_per_item = model_flops_per_token(cfg.model, cfg.data.seq_len)
        self._eval_step = make_eval_step(self.model, self.tokenizer.bos_id)
        self.loss = lm_loss(self.model, self.tokenizer.bos_id)

    def init_variables(self, key: jax.Array) -> tuple[Params, Any, ModelState]:
        return init_variables(self.model, key, jnp.zeros((1, self.cfg.data.seq_len), jnp.int32))

    def train_batch(self, step: int, rows: slice = slice(None)) -> np.ndarray:
        return self.data.train_batch(step, rows)

    def evaluate(self, params: Params, model_state: ModelState) -> dict[str, float]:
        return evaluate(self._eval_step, params, model_state, self.data.val_batches(),
                        self.tokenizer.byte_lengths())

    def step_figures(self, step: int) -> dict[str, float]:
        return {}

    def online_gradient(self, rule: str) -> TaskGrad:
        return lm_gradient(rule, self.model, self.tokenizer.bos_id)

    def state(self) -> dict[str, Any]:
        return self.data.state()

    def restore(self, state: dict[str, Any]) -> None:
        self.data.restore(state)

    def finish(self, run_dir: Path, params: Params, model_state: ModelState) -> dict[str, float]:
        return {}

    def describe(self, figures: dict[str, float]) -> str:
        return f"val loss {figures['val_loss']:.4f}, val bpb {figures['val_bpb']:.4f}"
