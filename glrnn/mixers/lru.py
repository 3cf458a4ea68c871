"""The Linear Recurrent Unit (Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks for
Long Sequences"), exactly as in the paper's appendix A:

    λ = exp(−exp(ν_log) + i·exp(θ_log))                 diagonal, complex, |λ| < 1
    h_t = λ ⊙ h_{t−1} + exp(γ_log) ⊙ (B x_t)           B = B_re + i·B_im ∈ C^{N×H}
    y_t = Re(C h_t) + D ⊙ x_t                           C = C_re + i·C_im ∈ C^{H×N}, D ∈ R^H

Initialisation: |λ| uniform *in area* on the ring r_min ≤ |λ| ≤ r_max (so |λ|² is uniform),
arg λ uniform in [0, max_phase]; γ_log = log √(1 − |λ|²) (the normalisation that keeps the state's
variance at the input's); B ~ N(0, 1)/√(2H) (real and imaginary parts), C ~ N(0, 1)/√N (both
parts), D ~ N(0, 1).

Speed: no FLOP is spent on complex matmuls of real data. B x is one real matmul with the
stacked [γ·B_re; γ·B_im] (H → 2N), and Re(C h) = C_re Re(h) − C_im Im(h) is one real matmul of
the stacked [Re h, Im h] (2N → H). Only the recurrence itself is complex.

Parameter roles (glrnn/params.py): ν_log, θ_log, γ_log, B_re, B_im are ``recurrent``; C_re, C_im
and D are ``weight``. Matmuls run in the input's dtype (bfloat16 under mixed precision); the
state is complex64 whatever the input.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from glrnn.config import LRUConfig
from glrnn.params import with_role
from glrnn.scan import channel_resets, linear_scan

# --- the paper's initialisers (pure: key, shape -> array) ---


def init_nu_log(key: jax.Array, shape: tuple[int, ...], r_min: float, r_max: float) -> jax.Array:
    """ν_log such that |λ| = exp(−exp(ν_log)) is uniform in area on [r_min, r_max]."""
    u = jax.random.uniform(key, shape)
    return jnp.log(-0.5 * jnp.log(u * (r_max**2 - r_min**2) + r_min**2))


def init_theta_log(key: jax.Array, shape: tuple[int, ...], max_phase: float) -> jax.Array:
    """θ_log such that arg λ = exp(θ_log) is uniform in [0, max_phase]."""
    u = jax.random.uniform(key, shape, minval=1e-12)  # log(0) would be −inf
    return jnp.log(max_phase * u)


def gamma_log_of(nu_log: jax.Array, theta_log: jax.Array) -> jax.Array:
    """γ_log = log √(1 − |λ|²) for the λ given by (ν_log, θ_log)."""
    return 0.5 * jnp.log1p(-jnp.abs(lru_lambda(nu_log, theta_log)) ** 2)


def normal_init(std: float):
    def init(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
        return std * jax.random.normal(key, shape)

    return init


# --- the math (pure functions) ---


def lru_lambda(nu_log: jax.Array, theta_log: jax.Array) -> jax.Array:
    """λ [N] complex from ν_log [N] and θ_log [N]."""
    return jnp.exp(jax.lax.complex(-jnp.exp(nu_log), jnp.exp(theta_log)))


def lru_input(x: jax.Array, b_re: jax.Array, b_im: jax.Array, gamma_log: jax.Array) -> jax.Array:
    """exp(γ_log) ⊙ (B x): x [..., H] real, B_re/B_im [N, H], γ_log [N] -> [..., N] complex."""
    gamma = jnp.exp(gamma_log)[:, None]
    w = jnp.concatenate([b_re * gamma, b_im * gamma], axis=0)  # [2N, H]
    bx = x @ w.T.astype(x.dtype)
    n = b_re.shape[0]
    real = bx.astype(jnp.promote_types(bx.dtype, jnp.float32))  # the state is never bf16
    return jax.lax.complex(real[..., :n], real[..., n:])


def lru_output(h: jax.Array, x: jax.Array, c_re: jax.Array, c_im: jax.Array,
               d: jax.Array) -> jax.Array:
    """Re(C h) + D ⊙ x: h [..., N] complex, x [..., H], C_re/C_im [H, N], D [H] -> [..., H]."""
    w = jnp.concatenate([c_re, -c_im], axis=1)  # [H, 2N]
    hh = jnp.concatenate([h.real, h.imag], axis=-1).astype(x.dtype)
    return hh @ w.T.astype(x.dtype) + d.astype(x.dtype) * x


class LRU(nn.Module):
    """LRU time mixer: [batch, length, d_model] -> [batch, length, d_model]; carry [batch, N]."""

    d_model: int
    d_state: int
    r_min: float = LRUConfig.r_min  # the defaults are the config's (glrnn/config.py)
    r_max: float = LRUConfig.r_max
    max_phase: float = LRUConfig.max_phase
    scan_method: str = "auto"
    chunk_size: int = 64

    def setup(self) -> None:
        n, h = self.d_state, self.d_model
        rec, weight = "recurrent", "weight"
        self.nu_log = self.param("nu_log", with_role(init_nu_log, rec), (n,), self.r_min,
                                 self.r_max)
        self.theta_log = self.param("theta_log", with_role(init_theta_log, rec), (n,),
                                    self.max_phase)
        self.gamma_log = self.param(
            "gamma_log", with_role(lambda _: gamma_log_of(self.nu_log, self.theta_log), rec))
        b_init = with_role(normal_init(1 / math.sqrt(2 * h)), rec)
        self.b_re = self.param("B_re", b_init, (n, h))
        self.b_im = self.param("B_im", b_init, (n, h))
        c_init = with_role(normal_init(1 / math.sqrt(n)), weight)
        self.c_re = self.param("C_re", c_init, (h, n))
        self.c_im = self.param("C_im", c_init, (h, n))
        self.d = self.param("D", with_role(normal_init(1.0), weight), (h,))

    def init_carry(self, batch_size: int) -> jax.Array:
        return jnp.zeros((batch_size, self.d_state), jnp.complex64)

    def __call__(self, x: jax.Array, carry: jax.Array | None = None, *,
                 segment_ids: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """x [B, L, H], carry [B, N] complex or None, segment_ids int [B, L] or None (the state
        is cleared where the segment changes) -> (y [B, L, H], carry [B, N])."""
        lam = lru_lambda(self.nu_log, self.theta_log)
        bx = lru_input(x, self.b_re, self.b_im, self.gamma_log)
        h = linear_scan(lam[None, None], bx, carry, reset=channel_resets(segment_ids),
                        method=self.scan_method, chunk_size=self.chunk_size)
        return lru_output(h, x, self.c_re, self.c_im, self.d), h[:, -1]

    def step(self, x_t: jax.Array, carry: jax.Array) -> tuple[jax.Array, jax.Array]:
        """x_t [B, H], carry [B, N] complex -> (y_t [B, H], carry [B, N])."""
        lam = lru_lambda(self.nu_log, self.theta_log)
        h = lam * carry + lru_input(x_t, self.b_re, self.b_im, self.gamma_log)
        return lru_output(h, x_t, self.c_re, self.c_im, self.d), h
