"""Packed documents never leak into each other: a packed block ≡ each document run on its own."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glrnn.config import AttentionConfig, GateLoopConfig, GateLoopQKVConfig, ModelConfig
from glrnn.models import Backbone, LanguageModel
from glrnn.params import init_params

VOCAB = 13
# two rows with different cuts; the second row's first document continues from position 0
LENGTHS = [(5, 4, 6), (1, 9, 5)]


def packed() -> tuple[jax.Array, jax.Array]:
    """tokens [2, 15] and segment ids [2, 15] (document index, starting at 7 to show that only
    changes matter)."""
    tokens = jax.random.randint(jax.random.key(3), (2, 15), 0, VOCAB)
    ids = np.array([np.repeat(np.arange(len(row)) + 7, row) for row in LENGTHS])
    return tokens, jnp.asarray(ids)


# variants: the mixer name, then what sets them apart; griffin: a hawk block (convolution and
# RG-LRU), then a sliding-window attention block
EXTRA = {"gateloop-untied": {"gateloop": GateLoopConfig(tied_gates=False)},
         "gateloop_qkv-conv": {"gateloop_qkv": GateLoopQKVConfig(heads=2), "conv": True},
         "rglru-griffin": {"block": "griffin", "attention_every": 2,
                           "attention": AttentionConfig(heads=2, window=4, max_len=16)}}


@pytest.mark.parametrize(("mixer", "method"), [
    ("lru", "sequential"), ("lru", "associative"), ("lru", "chunked"),
    ("gateloop", "sequential"), ("gateloop", "associative"), ("gateloop-untied", "chunked"),
    ("rglru-griffin", "chunked"), ("gateloop_qkv-conv", "chunked")])
def test_packed_block_equals_documents_alone(mixer, method):
    extra = EXTRA.get(mixer, {})
    cfg = ModelConfig(vocab_size=VOCAB, d_model=8, d_state=6, n_layers=2, chunk_size=4,
                      mixer=mixer.split("-")[0], scan_method=method, **extra)
    model = LanguageModel(cfg)
    tokens, ids = packed()
    params, _ = init_params(model, jax.random.key(0), tokens)
    apply = jax.jit(lambda p, t, s=None: model.apply({"params": p}, t, segment_ids=s)[0])
    logits = apply(params, tokens, ids)
    # every document alone at the start of a row of its own (causal: what follows is unseen)
    cuts = [(row, start, n) for row, lengths in enumerate(LENGTHS)
            for start, n in zip(np.cumsum((0, *lengths[:-1])), lengths, strict=True)]
    alone = apply(params, jnp.stack([jnp.roll(tokens[row], -start) for row, start, _ in cuts]))
    for (row, start, n), doc in zip(cuts, alone, strict=True):
        np.testing.assert_allclose(logits[row, start:start + n], doc[:n], rtol=1e-5, atol=1e-5,
                                   err_msg=f"row {row}, document at {start}")
    # and without segment ids the documents do leak: the check above can fail
    leaky = apply(params, tokens)
    assert not np.allclose(leaky[0, 5:9], logits[0, 5:9], atol=1e-4)


def test_gradients_do_not_cross_documents():
    """The output on documents 2 and 3 has no gradient with respect to document 1's inputs."""
    backbone = Backbone(ModelConfig(vocab_size=VOCAB, d_model=8, d_state=6, n_layers=2))
    _, ids = packed()
    x = jax.random.normal(jax.random.key(1), (2, 15, 8))
    params, _ = init_params(backbone, jax.random.key(0), x)

    def later_loss(x):
        y, _ = backbone.apply({"params": params}, x, segment_ids=ids)
        return jnp.sum(y[0, 5:] ** 2)

    grad = jax.grad(later_loss)(x)
    assert not np.any(grad[0, :5]) and np.all(np.abs(grad[0, 5:]).sum(-1) > 0)
