"""Stateful streaming training: learn while reading an unbounded stream, the recurrent state (and
the online rules' sensitivities) carried from one chunk to the next, memory flat in the total
length.

* Online rules update the parameters at **every position** (``online_step``, then the
  optimizer, inside one compiled loop over the chunk): learning never waits for a sequence to
  end, and the sensitivities carry credit across chunk boundaries.
* ``bptt`` is **truncated BPTT**: one update per chunk, gradients through the chunk only, the
  state entering it carried over (with its gradient stopped).

Each chunk is one call of one compiled function of fixed shapes, so nothing grows with the
number of chunks read. ``counter_stream`` generates an unbounded token stream that needs memory
across chunk boundaries; ``python -m glrnn.online.stream`` trains a small LM on it and prints
the loss as it goes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import tyro

from glrnn.cli import USER_ERRORS, report
from glrnn.config import ModelConfig, check, check_choice, float32_ok
from glrnn.losses import token_cross_entropy
from glrnn.mixers import MIXERS
from glrnn.models import LanguageModel
from glrnn.online.grad import OnlineState, StepLoss, init_state, online_step, sequence_loss
from glrnn.online.rules import check_rule
from glrnn.params import init_params

Params = Any
Chunk = tuple[np.ndarray, np.ndarray, np.ndarray | None]  # inputs, targets, resets (or None)


class StreamTrainer:
    """Trains ``model`` chunk by chunk of one stream with ``rule``; ``params``, ``opt_state`` and
    ``state`` (the carry and sensitivities) are what it holds between chunks."""

    def __init__(self, rule: str, model: Any, step_loss: StepLoss,
                 optimizer: optax.GradientTransformation, params: Params,
                 example_input: jax.Array) -> None:
        """``example_input`` [B, ...]: one position of a batch (fixes the batch size)."""
        self.rule, self.model, self.step_loss, self.optimizer = rule, model, step_loss, optimizer
        self.params, self.opt_state = params, optimizer.init(params)
        self.state, self.layers = init_state(rule, model, params, example_input)
        self._chunk = jax.jit(self._bptt_chunk if rule == "bptt" else self._online_chunk)

    def train(self, inputs: jax.Array, targets: jax.Array,
              resets: jax.Array | None = None) -> float:
        """Learn from the next chunk (inputs, targets [B, T, ...], resets bool [B, T] or None);
        returns its mean loss (before each of its updates, for the online rules)."""
        self.params, self.opt_state, self.state, loss = self._chunk(
            self.params, self.opt_state, self.state, inputs, targets, resets)
        return float(loss)

    def _update(self, params: Params, opt_state: Any, grads: Params) -> tuple[Params, Any]:
        updates, opt_state = self.optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    def _online_chunk(self, params, opt_state, state, inputs, targets, resets):
        def body(t, acc):
            params, opt_state, state, total, count = acc
            loss, n, grads, state = online_step(
                self.rule, self.model, self.step_loss, self.layers, params, state, inputs[:, t],
                targets[:, t], None if resets is None else resets[:, t])
            grads = jax.tree.map(lambda g: g / jnp.maximum(n, 1), grads)
            params, opt_state = self._update(params, opt_state, grads)
            return params, opt_state, state, total + loss, count + n

        zero = jnp.zeros((), jnp.float32)
        params, opt_state, state, total, count = jax.lax.fori_loop(
            0, inputs.shape[1], body, (params, opt_state, state, zero, zero))
        return params, opt_state, state, total / count

    def _bptt_chunk(self, params, opt_state, state, inputs, targets, resets):
        carry = jax.lax.stop_gradient(state.carry)
        (total, (count, carry)), grads = jax.value_and_grad(
            lambda p: sequence_loss(self.model, self.step_loss, p, inputs, targets, resets,
                                    carry), has_aux=True)(params)
        params, opt_state = self._update(params, opt_state,
                                         jax.tree.map(lambda g: g / count, grads))
        return params, opt_state, OnlineState(carry, state.traces), total / count


def counter_stream(batch: int, chunk: int, vocab: int, lag: int = 2, noise: float = 0.05,
                   seed: int = 0) -> Iterator[Chunk]:
    """An unbounded stream of chunks (inputs, targets int32 [batch, chunk], no resets) of
    x_t = (x_{t−lag} + 1) mod vocab, each token replaced by a random one with probability
    ``noise``: predicting x_{t+1} needs x_{t+1−lag}, which lies in the previous chunk for the
    first lag − 1 positions of each. Only the last ``lag`` tokens are kept between chunks."""
    rng = np.random.default_rng(seed)
    recent = rng.integers(0, vocab, (batch, lag))  # the last lag tokens, the newest last
    while True:
        seq = np.concatenate([recent, np.zeros((batch, chunk), recent.dtype)], axis=1)
        for t in range(lag, lag + chunk):
            seq[:, t] = (seq[:, t - lag] + 1) % vocab
            flip = rng.random(batch) < noise
            seq[flip, t] = rng.integers(0, vocab, int(flip.sum()))
        tokens = seq[:, lag - 1:].astype(np.int32)  # the newest old token, then the new ones
        yield tokens[:, :-1], tokens[:, 1:], None
        recent = seq[:, -lag:]


@dataclass(frozen=True)
class StreamConfig:
    """``python -m glrnn.online.stream``: a small LM learning the counter stream online."""

    rule: str = "online_full"  # the learning rule (glrnn/online/rules.py), or bptt
    mixer: str = "lru"  # the time mixer of each block
    d_model: int = 32  # width of the residual stream
    d_state: int = 32  # width of the recurrent state
    n_layers: int = 2  # blocks of the language model
    vocab: int = 16  # tokens of the stream: x_t = (x_{t-lag} + 1) mod vocab
    lag: int = 4  # the stream's memory: x_t = x_{t-lag} + 1
    noise: float = 0.05  # the probability that a token is replaced by a random one
    batch_size: int = 8  # streams learned side by side
    chunk: int = 16  # positions per call (and per update with bptt: its truncation)
    chunks: int = 200  # chunks to learn from (the run's length)
    lr: float = 3e-3  # Adam's learning rate
    log_every: int = 20  # chunks between printed losses
    seed: int = 0  # parameters and the stream

    def __post_init__(self) -> None:
        for name in ("vocab", "lag", "batch_size", "chunk", "chunks", "log_every"):
            value = getattr(self, name)
            check(isinstance(value, int) and value > 0, f"--{name.replace('_', '-')}", value,
                  "a positive integer")
        check(0.0 <= self.noise <= 1.0, "--noise", self.noise, "in [0, 1]")
        check(float32_ok(self.lr) and self.lr > 0, "--lr", self.lr, "a float32 value > 0")
        check(isinstance(self.seed, int) and self.seed >= 0, "--seed", self.seed, ">= 0")
        check_choice("--mixer", self.mixer, MIXERS)
        check_rule(self.rule, self.mixer, "--rule")


def main(cfg: StreamConfig) -> list[float]:
    """Train, print the mean loss of every ``log_every`` chunks; returns those means."""
    model = LanguageModel(ModelConfig(vocab_size=cfg.vocab, d_model=cfg.d_model,
                                      d_state=cfg.d_state, n_layers=cfg.n_layers,
                                      mixer=cfg.mixer))
    stream = counter_stream(cfg.batch_size, cfg.chunk, cfg.vocab, cfg.lag, cfg.noise, cfg.seed)
    inputs, _, _ = next(stream)
    params = init_params(model, jax.random.key(cfg.seed), inputs)[0]
    trainer = StreamTrainer(cfg.rule, model, token_cross_entropy, optax.adam(cfg.lr), params,
                            jnp.asarray(inputs[:, 0]))
    means, window, start = [], [], time.perf_counter()
    for index in range(1, cfg.chunks + 1):
        window.append(trainer.train(*next(stream)))
        if index % cfg.log_every == 0:
            means.append(float(np.mean(window)))
            print(f"chunk {index} (token {index * cfg.chunk}): loss {means[-1]:.4f} "
                  f"({time.perf_counter() - start:.1f} s)", flush=True)
            window = []
    return means


def cli(argv: Sequence[str] | None = None) -> int:
    """``python -m glrnn.online.stream``: a mistake is one line (``glrnn/cli.py``)."""
    try:
        main(tyro.cli(StreamConfig, args=argv))
    except USER_ERRORS as e:
        return report(e)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
