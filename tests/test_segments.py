"""Packed documents never leak into each other: a packed block ≡ each document run on its own."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glrnn.config import GateLoopConfig, ModelConfig
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


@pytest.mark.parametrize(("mixer", "method"), [
    ("lru", "sequential"), ("lru", "associative"), ("lru", "chunked"),
    ("gateloop", "sequential"), ("gateloop", "associative"), ("gateloop-untied", "chunked")])
def test_packed_block_equals_documents_alone(mixer, method):
    extra = ({"gateloop": GateLoopConfig(tied_gates=False)} if mixer == "gateloop-untied" else {})
    cfg = ModelConfig(vocab_size=VOCAB, d_model=8, d_state=6, n_layers=2, chunk_size=4,
                      mixer=mixer.split("-")[0], scan_method=method, **extra)
    model = LanguageModel(cfg)
    tokens, ids = packed()
    params, _ = init_params(model, jax.random.key(0), tokens)
    logits, _ = jax.jit(lambda p, t, s: model.apply({"params": p}, t, segment_ids=s))(
        params, tokens, ids)
    for row, lengths in enumerate(LENGTHS):
        start = 0
        for n in lengths:
            alone, _ = model.apply({"params": params}, tokens[row:row + 1, start:start + n])
            np.testing.assert_allclose(logits[row, start:start + n], alone[0], rtol=1e-5,
                                       atol=1e-5, err_msg=f"row {row}, document at {start}")
            start += n
    # and without segment ids the documents do leak: the check above can fail
    leaky, _ = model.apply({"params": params}, tokens)
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
