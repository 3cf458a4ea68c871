"""A gated recurrent unit (Cho et al. 2014) in the form of cuDNN and PyTorch, the reset gate
applied after the recurrent matmul, with a state of width N = ``d_state``:

    r_t = σ(W_r x_t + b_r + U_r h_{t−1})
    z_t = σ(W_z x_t + b_z + U_z h_{t−1})
    n_t = tanh(W_n x_t + b_n + r_t ⊙ (U_n h_{t−1} + b_hn))
    h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}
    y_t = W_y h_t                                              N → d_model, no bias

With the reset gate outside the matmul every parameter acts on a single unit within one step,
which is what SnAp-1 (glrnn/online) keeps exactly.

Parameters: ``w_x`` [H, 3N] and ``b_x`` [3N] (the three input projections, blocks r, z, n),
``w_h`` [N, 3N] (U_r, U_z, U_n as ``h @ w_h``) and ``b_hn`` [N], all ``recurrent``; ``w_out``
[N, H] ``weight``. Initialisation: w_x and w_out lecun-normal, each N×N block of w_h orthogonal,
biases zero. The time loop is a ``lax.scan`` (glrnn/mixers/sequential.py) after the input
projections of the whole sequence.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from glrnn.mixers.sequential import SequentialRNN
from glrnn.params import with_role

# --- the math (pure functions) ---


def gru_input(x: jax.Array, w_x: jax.Array, b_x: jax.Array) -> jax.Array:
    """W x + b for the three blocks: x [..., H], w_x [H, 3N], b_x [3N] -> [..., 3N] float32."""
    u = x @ w_x.astype(x.dtype) + b_x.astype(x.dtype)
    return u.astype(jnp.promote_types(u.dtype, jnp.float32))


def gru_combine(u: jax.Array, rec: jax.Array, h_prev: jax.Array, b_hn: jax.Array) -> jax.Array:
    """h_t from the input projections u [..., 3N], the recurrent ones rec = h_{t−1} @ w_h
    [..., 3N], h_prev [..., N] and b_hn [N] -> [..., N]."""
    u_r, u_z, u_n = jnp.split(u, 3, axis=-1)
    rec_r, rec_z, rec_n = jnp.split(rec, 3, axis=-1)
    r = jax.nn.sigmoid(u_r + rec_r)
    z = jax.nn.sigmoid(u_z + rec_z)
    n = jnp.tanh(u_n + r * (rec_n + b_hn))
    return (1 - z) * n + z * h_prev


def gru_update(h_prev: jax.Array, u: jax.Array, w_h: jax.Array, b_hn: jax.Array) -> jax.Array:
    """One step: h_prev [..., N], u [..., 3N], w_h [N, 3N], b_hn [N] -> h [..., N]."""
    return gru_combine(u, h_prev @ w_h, h_prev, b_hn)


def gru_output(h: jax.Array, w_out: jax.Array, dtype: jnp.dtype) -> jax.Array:
    """W_y h: h [..., N], w_out [N, H] -> [..., H] in ``dtype``."""
    return h.astype(dtype) @ w_out.astype(dtype)


def recurrent_kernel_init(key: jax.Array, n: int) -> jax.Array:
    """w_h [N, 3N]: three orthogonal N×N blocks."""
    blocks = jax.nn.initializers.orthogonal()(key, (3, n, n), jnp.float32)
    return jnp.concatenate(list(blocks), axis=1)


class GRU(SequentialRNN):
    """GRU time mixer: [batch, length, d_model] -> same; carry [batch, d_state] float32."""

    def setup(self) -> None:
        n, h = self.d_state, self.d_model
        rec = "recurrent"
        self.w_x = self.param("w_x", with_role(nn.initializers.lecun_normal(), rec), (h, 3 * n))
        self.b_x = self.param("b_x", with_role(nn.initializers.zeros_init(), rec), (3 * n,))
        self.w_h = self.param("w_h", with_role(lambda key: recurrent_kernel_init(key, n), rec))
        self.b_hn = self.param("b_hn", with_role(nn.initializers.zeros_init(), rec), (n,))
        self.w_out = self.param("w_out", with_role(nn.initializers.lecun_normal(), "weight"),
                                (n, h))

    def inputs(self, x: jax.Array) -> jax.Array:
        return gru_input(x, self.w_x, self.b_x)

    def update(self, h_prev: jax.Array, u: jax.Array) -> jax.Array:
        return gru_update(h_prev, u, self.w_h, self.b_hn)

    def output(self, h: jax.Array, x: jax.Array) -> jax.Array:
        return gru_output(h, self.w_out, x.dtype)
