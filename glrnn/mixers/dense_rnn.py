"""A dense RNN, linear or not, with a state of width N = ``d_state``:

    h_t = φ(A h_{t−1} + B x_t + b)          A ∈ R^{N×N}, B ∈ R^{N×H}, b ∈ R^N
    y_t = C h_t + D ⊙ x_t                   C ∈ R^{H×N}, D ∈ R^H

φ is ``activation``: ``identity`` (the linear RNN of the rescaled-Glorot paper), ``tanh`` or
``relu``. A full matrix couples every state to every other, so the time loop is a ``lax.scan``
(glrnn/mixers/sequential.py); B x_t + b is computed for the whole sequence first.

Initialisation: A by ``a_init`` (glrnn/mixers/rnn_init.py: ``glorot``, ``orthogonal``,
``rescaled_glorot``, ``fixed`` with spectral radius ``radius``), B Glorot-normal, b zero,
C ~ N(0, 1/N), D ~ N(0, 1), all from the module's JAX keys.

Parameter roles: A, B, b ``recurrent``; C, D ``weight``. The state is float32; matmuls of the
input and the read-out run in the input's dtype.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from glrnn.activations import Activation, activation
from glrnn.config import RNN_ACTIVATIONS
from glrnn.mixers.lru import normal_init
from glrnn.mixers.rnn_init import recurrent_matrix_init
from glrnn.mixers.sequential import SequentialRNN
from glrnn.params import with_role

# --- the math (pure functions) ---


def rnn_input(x: jax.Array, b: jax.Array, bias: jax.Array) -> jax.Array:
    """B x + b: x [..., H], B [N, H], b [N] -> [..., N] in float32 (or wider)."""
    u = x @ b.T.astype(x.dtype) + bias.astype(x.dtype)
    return u.astype(jnp.promote_types(u.dtype, jnp.float32))


def rnn_update(h_prev: jax.Array, u: jax.Array, a: jax.Array, act: Activation) -> jax.Array:
    """φ(A h_{t−1} + u_t): h_prev [..., N], u [..., N], A [N, N] -> [..., N]."""
    return act(h_prev @ a.T + u)


def rnn_output(h: jax.Array, x: jax.Array, c: jax.Array, d: jax.Array) -> jax.Array:
    """C h + D ⊙ x: h [..., N], x [..., H], C [H, N], D [H] -> [..., H] in x's dtype."""
    return h.astype(x.dtype) @ c.T.astype(x.dtype) + d.astype(x.dtype) * x


class DenseRNN(SequentialRNN):
    """Dense RNN time mixer: [batch, length, d_model] -> same; carry [batch, d_state] float32."""

    activation: str = "tanh"
    a_init: str = "fixed"
    radius: float = 0.99
    quantile: float = 0.9

    def setup(self) -> None:
        if self.activation not in RNN_ACTIVATIONS:
            raise ValueError(f"model.dense_rnn.activation={self.activation!r}: expected one of "
                             f"{', '.join(RNN_ACTIVATIONS)}")
        n, h = self.d_state, self.d_model
        rec = "recurrent"
        self.a = self.param("A", with_role(
            lambda key: recurrent_matrix_init(key, n, self.a_init, self.radius, self.quantile),
            rec))
        self.b = self.param("B", with_role(nn.initializers.glorot_normal(), rec), (n, h))
        self.bias = self.param("b", with_role(nn.initializers.zeros_init(), rec), (n,))
        self.c = self.param("C", with_role(normal_init(1 / math.sqrt(n)), "weight"), (h, n))
        self.d = self.param("D", with_role(normal_init(1.0), "weight"), (h,))

    def inputs(self, x: jax.Array) -> jax.Array:
        return rnn_input(x, self.b, self.bias)

    def update(self, h_prev: jax.Array, u: jax.Array) -> jax.Array:
        return rnn_update(h_prev, u, self.a, activation(self.activation))

    def output(self, h: jax.Array, x: jax.Array) -> jax.Array:
        return rnn_output(h, x, self.c, self.d)
