"""Streaming training: the state really crosses chunk boundaries, and a small LM learns an
unbounded stream whose next token depends on the previous chunk."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from test_online import init_params

from glrnn.config import ModelConfig
from glrnn.losses import token_cross_entropy
from glrnn.models import LanguageModel
from glrnn.online.stream import StreamTrainer, counter_stream

VOCAB, BATCH, CHUNK, LAG = 8, 8, 4, 2


def make(rule: str, lr: float) -> tuple[StreamTrainer, LanguageModel]:
    model = LanguageModel(ModelConfig(vocab_size=VOCAB, d_model=16, d_state=16, n_layers=1,
                                      channel_mixer="none"))
    params = init_params(model, jnp.zeros((BATCH, CHUNK), jnp.int32))
    trainer = StreamTrainer(rule, model, token_cross_entropy, optax.adam(lr), params,
                            jnp.zeros((BATCH,), jnp.int32))
    return trainer, model


def test_counter_stream_is_continuous_and_follows_its_rule():
    chunks = [next(s) for s in [counter_stream(BATCH, CHUNK, VOCAB, LAG, noise=0.0)]
              for _ in range(3)]
    inputs = np.concatenate([c[0] for c in chunks], axis=1)
    targets = np.concatenate([c[1] for c in chunks], axis=1)
    np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])  # one unbroken sequence
    whole = np.concatenate([inputs, targets[:, -1:]], axis=1)
    np.testing.assert_array_equal(whole[:, LAG:], (whole[:, :-LAG] + 1) % VOCAB)


@pytest.mark.parametrize("rule", ["bptt", "online_full"])
def test_the_state_is_carried_from_chunk_to_chunk(rule):
    """With a zero learning rate the state after three chunks is the state after the three
    chunks in one pass (what the next chunk makes of it: the test below)."""
    trainer, model = make(rule, 0.0)
    stream = counter_stream(BATCH, CHUNK, VOCAB, LAG)
    chunks = [next(stream) for _ in range(3)]
    losses = [trainer.train(*chunk) for chunk in chunks]
    inputs = jnp.asarray(np.concatenate([c[0] for c in chunks], axis=1))
    _, carry = jax.jit(model.apply)({"params": trainer.params}, inputs)
    for a, b in zip(jax.tree.leaves(trainer.state.carry), jax.tree.leaves(carry), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert all(np.isfinite(losses))


@functools.cache
def trained(rule: str, chunks: int, lr: float):
    trainer, model = make(rule, lr)
    stream = counter_stream(BATCH, CHUNK, VOCAB, LAG, noise=0.0, seed=1)
    losses = [trainer.train(*next(stream)) for _ in range(chunks)]
    return trainer, model, losses, stream


@pytest.mark.parametrize(("rule", "chunks", "lr"), [("online_full", 80, 1e-2),
                                                    ("bptt", 150, 1e-2)])
def test_loss_falls_on_the_stream_and_needs_the_carry(rule, chunks, lr):
    trainer, model, losses, stream = trained(rule, chunks, lr)
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    assert last < 0.5 * first, (first, last)
    # the first target of a chunk depends on the previous chunk: only the carry knows it
    inputs, targets, _ = next(stream)
    params = trainer.params

    def first_loss(carry) -> float:
        logits = model.apply({"params": params}, jnp.asarray(inputs), carry)[0]
        return float(token_cross_entropy(logits[:, 0], jnp.asarray(targets[:, 0]))[0] / BATCH)

    assert first_loss(trainer.state.carry) < 0.5 * first_loss(None)
