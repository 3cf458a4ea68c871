"""Next-token prediction on packed text or audio windows: the language-model :class:`Task`.

A batch is ``[B, L+1]`` int32 (``glrnn.data``); the loss is the cross entropy of the L targets,
documents (each opened by BOS) never seeing each other through the recurrent state; evaluation
reports nats and bits per token, perplexity and bits per byte of the targets' text, and how many
tokens and windows it scored.

Two evaluations: the loop's periodic one is an *estimate* on the data's fixed ``val`` windows
(``data.val_windows`` of them, evenly spaced: ``val_*`` figures, what ranks checkpoints); the
final state of a run is scored on the *whole* validation split (``data.val_split()``, every
token once: ``full_val_*`` figures), as ``python -m glrnn.evaluate`` scores a run by default.
Windows are batched ``[batch_size, L+1]`` with a mask of the real targets: a short last window
and the missing rows of the last batch are padded and masked, so one shape is compiled.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
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
from glrnn.train.task import ModelState, Params, TaskGrad, prefixed, whole_split_cost
from glrnn.train.variables import apply_model, init_variables

EvalStep = Callable[[Params, ModelState, jax.Array, jax.Array], jax.Array]


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
    """Jitted ``(params, model_state, batch [B, L+1] int32, mask [B, L] bool) -> total nats
    over the targets where ``mask`` is true``."""

    @jax.jit
    def eval_step(params, model_state, batch, mask):
        nats = batch_nats(model, params, batch, bos_id, model_state=model_state)[0]
        return jnp.where(mask, nats, 0.0).sum()

    return eval_step


def padded_batches(windows: Iterable[np.ndarray], batch_size: int,
                   seq_len: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(batch [batch_size, seq_len + 1] int32, mask [batch_size, seq_len] bool) of ``windows``
    (each of at most seq_len + 1 tokens): a shorter window is padded with token 0 after its
    end, the last batch with rows of padding, and ``mask`` marks the real targets. The model is
    causal and rows are independent, so padding changes no real target's loss."""
    batch = np.zeros((batch_size, seq_len + 1), np.int32)
    mask = np.zeros((batch_size, seq_len), bool)
    row = 0
    for window in windows:
        batch[row, :len(window)] = window
        mask[row, :len(window) - 1] = True
        row += 1
        if row == batch_size:
            yield batch.copy(), mask.copy()
            batch[:], mask[:], row = 0, False, 0
    if row:
        yield batch, mask


def score(eval_step: EvalStep, params: Params, model_state: ModelState,
          batches: Iterable[tuple[np.ndarray, np.ndarray]],
          byte_lengths: np.ndarray) -> dict[str, float]:
    """loss (nats per token), bits per token, perplexity, bpb (bits per byte of the targets'
    text), tokens (targets scored) and windows of ``batches`` (:func:`padded_batches`)."""
    nats, tokens, n_bytes, windows = 0.0, 0, 0, 0
    for batch, mask in batches:  # one batch at a time: a multi-process job on CPU deadlocked
        # with several in flight (2 of 4 devices at a collective permute; tests/test_distributed)
        nats += float(eval_step(params, model_state, batch, mask))
        tokens += int(mask.sum())
        n_bytes += int(byte_lengths[batch[:, 1:]][mask].sum())
        windows += int(mask.any(axis=1).sum())
    loss = nats / tokens
    return {"loss": loss, "bpb": bits_per_byte(nats, n_bytes), "bits_per_token": loss / math.log(2),
            "ppl": math.exp(min(loss, 700.0)), "tokens": tokens, "windows": windows}


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

    def _score(self, params: Params, model_state: ModelState,
               windows: Iterable[np.ndarray]) -> dict[str, float]:
        batches = padded_batches(windows, self.cfg.data.batch_size, self.cfg.data.seq_len)
        return score(self._eval_step, params, model_state, batches,
                     self.tokenizer.byte_lengths())

    def evaluate(self, params: Params, model_state: ModelState) -> dict[str, float]:
        """The estimate on the data's ``val`` windows: ``val_loss``, ``val_bpb``, ...,
        ``val_tokens``, ``val_windows``."""
        return prefixed("val_", self._score(params, model_state, self.data.val))

    def final_evaluation(self, params: Params, model_state: ModelState) -> dict[str, float]:
        """The whole validation split: ``full_val_loss``, ``full_val_bpb``, ...,
        ``full_val_tokens``, ``full_val_windows``."""
        return prefixed("full_val_", self._score(params, model_state, self.data.val_split()))

    @property
    def final_eval_size(self) -> float:
        """The whole split's batches over the estimate's: what the final evaluation costs in
        periodic ones."""
        return whole_split_cost(self.data.n_val_targets, len(self.data.val),
                                self.cfg.data.seq_len, self.cfg.data.batch_size)

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
        """The estimate's loss and bpb (and the windows it read), then the whole split's."""
        parts = []
        if "val_loss" in figures:
            parts.append(f"val loss {figures['val_loss']:.4f}, val bpb {figures['val_bpb']:.4f} "
                         f"(estimate: {figures['val_windows']:,} windows)")
        if "full_val_loss" in figures:
            parts.append(f"full validation split: loss {figures['full_val_loss']:.4f}, "
                         f"bpb {figures['full_val_bpb']:.4f} ({figures['full_val_tokens']:,} "
                         "tokens)")
        return "; ".join(parts)
