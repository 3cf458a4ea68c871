"""The XLA:CPU workaround that importing glrnn applies (glrnn/__init__.py): a reduction and a dot
that XLA fuses together compute what they compute op by op."""

import os

import jax
import jax.numpy as jnp
import numpy as np

import glrnn  # noqa: F401  (sets XLA_FLAGS before the backend starts)


def test_the_flag_is_set():
    assert "--xla_cpu_experimental_ynn_fusion_type=-reduce" in os.environ["XLA_FLAGS"]


def test_a_reduction_fused_with_a_dot_computes_right():
    """Without the flag jaxlib 0.10.2 returns garbage here (seen: -inf, 1e32)."""
    k = jax.random.normal(jax.random.key(1), (64, 64))

    def f(k):
        return jnp.sum(k, -1, keepdims=True) + k @ jnp.zeros((64, 64))

    np.testing.assert_allclose(jax.jit(f)(k), f(k), rtol=1e-6, atol=1e-5)
