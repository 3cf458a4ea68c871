"""Mixed precision: bfloat16 compute with float32 parameters and a float32 recurrent state."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from glrnn.config import GateLoopConfig, LRUConfig, ModelConfig
from glrnn.mixers import MIXERS
from glrnn.models import LanguageModel
from glrnn.params import init_params

VOCAB = 31


def loss_and_grads(cfg: ModelConfig, params, tokens):
    model = LanguageModel(cfg)

    def loss(p):
        logits, _ = model.apply({"params": p}, tokens[:, :-1])
        return optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:]).mean()

    return jax.jit(jax.value_and_grad(loss))(params)


@pytest.mark.parametrize("mixer", sorted(MIXERS))
def test_bf16_loss_agrees_with_fp32(mixer):
    """bf16 keeps 8 bits of mantissa (relative rounding 2^-9 ≈ 0.2 % per operation); the mean
    loss measured here moves by about 0.01 % (LRU 8.7e-5, GateLoop 1.1e-4 relative; every
    family's figures are printed), so the stated tolerance is 0.1 %; the gradients point the
    same way (cosine > 0.99). Every registered mixer family."""
    cfg = ModelConfig(vocab_size=VOCAB, d_model=32, d_state=32, n_layers=2, mixer=mixer)
    tokens = jax.random.randint(jax.random.key(1), (4, 65), 0, VOCAB)
    params, _ = init_params(LanguageModel(cfg), jax.random.key(0), tokens[:, :8])
    loss32, g32 = loss_and_grads(cfg, params, tokens)
    bf16 = ModelConfig(**{**cfg.__dict__, "dtype": "bfloat16"})
    loss16, g16 = loss_and_grads(bf16, params, tokens)
    assert loss16.dtype == jnp.float32
    assert abs(float(loss16) - float(loss32)) < 1e-3 * float(loss32)
    flat32, flat16 = (jnp.concatenate([x.ravel() for x in jax.tree.leaves(g)]) for g in (g32, g16))
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(g16))  # float32 parameters
    cosine = flat32 @ flat16 / (jnp.linalg.norm(flat32) * jnp.linalg.norm(flat16))
    print(f"{mixer}: loss relative difference {abs(loss16 / loss32 - 1):.2e}, gradient "
          f"cosine {float(cosine):.5f}")
    assert float(cosine) > 0.99


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("mixer", ["lru", "gateloop"])
def test_long_sequence_with_slow_decay_stays_finite(mixer, dtype):
    """L = 16384 with |λ| in [0.999, 0.9999] (LRU) or forget gates in [0.999, 0.9999]
    (GateLoop): forward and backward give no NaN or inf."""
    cfg = ModelConfig(vocab_size=VOCAB, d_model=8, d_state=8, n_layers=1, mixer=mixer,
                      dtype=dtype, lru=LRUConfig(r_min=0.999, r_max=0.9999),
                      gateloop=GateLoopConfig(f_min=0.999, f_max=0.9999))
    tokens = jax.random.randint(jax.random.key(1), (1, 16385), 0, VOCAB)
    params, _ = init_params(LanguageModel(cfg), jax.random.key(0), tokens[:, :8])
    loss, grads = loss_and_grads(cfg, params, tokens)
    assert np.isfinite(float(loss))
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
