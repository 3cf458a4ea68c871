"""A diagonal complex linear RNN, the diagonalised form of the dense linear RNN (a real matrix
A = V Λ V⁻¹ gives the same map with λ = eig(A), B' = V⁻¹B, C' = C V), width N = ``d_state``:

    h_t = λ ⊙ h_{t−1} + B x_t               λ ∈ C^N, B = B_re + i·B_im ∈ C^{N×H}
    y_t = Re(C h_t) + D ⊙ x_t               C = C_re + i·C_im ∈ C^{H×N}, D ∈ R^H

λ is a free complex parameter ``lam`` [2, N] (rows Re λ, Im λ), unlike the LRU's exponential
parametrisation and without its γ normalisation: the model of the rescaled-Glorot paper. Its
initial values are the eigenvalues of a Glorot, rescaled-Glorot or "fixed" matrix
(glrnn/mixers/rnn_init.py, ``eig_init``); B and C start as the LRU's (N(0, 1/2H) and
N(0, 1/N) per part), D ~ N(0, 1). The recurrence runs through ``glrnn.scan.linear_scan``;
B x and Re(C h) are the LRU's real matmuls (``lru_input`` with γ = 1, ``lru_output``).

Parameter roles: ``lam``, B_re, B_im ``recurrent``; C_re, C_im, D ``weight``. The state is
complex64 whatever the input.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from glrnn.mixers.lru import lru_input, lru_output, normal_init
from glrnn.mixers.rnn_init import eigenvalue_init
from glrnn.params import with_role
from glrnn.scan import channel_resets, linear_scan

# --- the math (pure functions) ---


def diag_lambda(lam: jax.Array) -> jax.Array:
    """λ [N] complex from ``lam`` [2, N] (Re λ, Im λ)."""
    return jax.lax.complex(lam[0], lam[1])


def diag_input(x: jax.Array, b_re: jax.Array, b_im: jax.Array) -> jax.Array:
    """B x: x [..., H] real, B_re/B_im [N, H] -> [..., N] complex (at least complex64)."""
    return lru_input(x, b_re, b_im, jnp.zeros(b_re.shape[:1], b_re.dtype))


class DiagRNN(nn.Module):
    """Diagonal complex linear RNN: [batch, length, d_model] -> same; carry [batch, N] complex."""

    d_model: int
    d_state: int
    eig_init: str = "fixed"
    radius: float = 0.99
    quantile: float = 0.9
    scan_method: str = "auto"
    chunk_size: int = 64

    def setup(self) -> None:
        n, h = self.d_state, self.d_model

        def lam_init(key: jax.Array) -> jax.Array:
            lam = eigenvalue_init(key, n, self.eig_init, self.radius, self.quantile)
            return jnp.stack([lam.real, lam.imag])

        self.lam = self.param("lam", with_role(lam_init, "recurrent"))
        b_init = with_role(normal_init(1 / math.sqrt(2 * h)), "recurrent")
        self.b_re = self.param("B_re", b_init, (n, h))
        self.b_im = self.param("B_im", b_init, (n, h))
        c_init = with_role(normal_init(1 / math.sqrt(n)), "weight")
        self.c_re = self.param("C_re", c_init, (h, n))
        self.c_im = self.param("C_im", c_init, (h, n))
        self.d = self.param("D", with_role(normal_init(1.0), "weight"), (h,))

    def init_carry(self, batch_size: int) -> jax.Array:
        return jnp.zeros((batch_size, self.d_state), jnp.complex64)

    def __call__(self, x: jax.Array, carry: jax.Array | None = None, *,
                 segment_ids: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """x [B, L, H], carry [B, N] complex or None, segment_ids int [B, L] or None (the state
        is cleared where the segment changes) -> (y [B, L, H], carry [B, N])."""
        h = linear_scan(diag_lambda(self.lam)[None, None], diag_input(x, self.b_re, self.b_im),
                        carry, reset=channel_resets(segment_ids), method=self.scan_method,
                        chunk_size=self.chunk_size)
        return lru_output(h, x, self.c_re, self.c_im, self.d), h[:, -1]

    def step(self, x_t: jax.Array, carry: jax.Array) -> tuple[jax.Array, jax.Array]:
        """x_t [B, H], carry [B, N] complex -> (y_t [B, H], carry [B, N])."""
        h = diag_lambda(self.lam) * carry + diag_input(x_t, self.b_re, self.b_im)
        return lru_output(h, x_t, self.c_re, self.c_im, self.d), h
