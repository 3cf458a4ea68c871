"""The Real-Gated Linear Recurrent Unit of Hawk and Griffin (De et al. 2024, "Griffin: Mixing
Gated Linear Recurrences with Local Attention for Efficient Language Models"), width D:

    r_t = σ(W_a x_t + b_a)                      recurrence gate
    i_t = σ(W_x x_t + b_x)                      input gate
    a_t = σ(Λ)^(c·r_t)                          log a_t = −c · r_t · softplus(−Λ)
    h_t = a_t ⊙ h_{t−1} + √(1 − a_t²) ⊙ (i_t ⊙ x_t)
    y_t = h_t

Stability: a_t is formed in log space, and √(1 − a_t²) = √(−expm1(2 log a_t)) keeps its
precision as a_t → 1 (where 1 − a_t² would cancel). The derivative of the square root is capped
at ``SQRT_MAX_GRADIENT`` (1/(2√u) grows without bound as u → 0 when r_t → 0), as in the
reference implementation (recurrentgemma's ``sqrt_bound_derivative``).

Gates: W_a and W_x are block-diagonal with ``gate_blocks`` blocks (Griffin uses one per
attention head; 1 is a dense projection), stored fused as one kernel [blocks, D/blocks,
2·D/blocks] (per block: the recurrence gate's columns, then the input gate's) and one bias
[blocks, 2·D/blocks], so both gates are one batched matmul. The kernel is lecun-normal (fan-in
D/blocks), the bias zero, so both gates start near σ(0) = 1/2.

Initialisation of Λ (the paper's text): a^c uniform in area on the ring [r_min, r_max]
(Griffin: [0.9, 0.999]), i.e. (a^c)² uniform on [r_min², r_max²]. recurrentgemma's released
code puts σ(Λ) itself on that ring instead (a^c ≈ [0.43, 0.992] at r = 1).

Resets (packed documents) clear the state before the step, h_t = √(1 − a_t²) ⊙ i_t ⊙ x_t, as for
every glrnn mixer; recurrentgemma drops the √(1 − a_t²) factor at a document's first token.

Parameter roles (glrnn/params.py): Λ, the gates' kernel and bias are ``recurrent``. The gates run
in the input's dtype; a_t, the state and y are float32 (y is cast back to the input's dtype).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from glrnn.params import with_role
from glrnn.scan import channel_resets, linear_scan

SQRT_MAX_GRADIENT = 1000.0


def init_lambda(key: jax.Array, shape: tuple[int, ...], r_min: float, r_max: float,
                c: float) -> jax.Array:
    """Λ such that a^c = σ(Λ)^c is uniform in area on the ring [r_min, r_max]."""
    u = jax.random.uniform(key, shape)
    log_a = 0.5 * jnp.log(u * (r_max**2 - r_min**2) + r_min**2) / c
    return log_a - jnp.log(-jnp.expm1(log_a))  # the logit of a = exp(log_a)


def init_gate_kernel(key: jax.Array, d: int, blocks: int) -> jax.Array:
    """The fused gate kernel [blocks, D/blocks, 2·D/blocks], lecun-normal in each block."""
    size = d // blocks
    return nn.initializers.lecun_normal()(key, (blocks, size, 2 * size))


@jax.custom_jvp
def sqrt_bounded(u: jax.Array) -> jax.Array:
    """√u whose derivative is capped at ``SQRT_MAX_GRADIENT``."""
    return jnp.sqrt(u)


@sqrt_bounded.defjvp
def _sqrt_bounded_jvp(primals: tuple[jax.Array], tangents: tuple[jax.Array]):
    (u,), (du,) = primals, tangents
    root = jnp.sqrt(u)
    return root, du * 0.5 / jnp.maximum(root, 0.5 / SQRT_MAX_GRADIENT)


# --- the math (pure functions) ---


def rglru_gates(x: jax.Array, kernel: jax.Array, bias: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Gate pre-activations of the recurrence and the input: x [..., D], kernel
    [blocks, D/blocks, 2·D/blocks], bias [blocks, 2·D/blocks] -> two [..., D]."""
    blocks, size = kernel.shape[0], kernel.shape[1]
    xb = x.reshape(*x.shape[:-1], blocks, size)
    u = jnp.einsum("...hi,hij->...hj", xb, kernel.astype(x.dtype)) + bias.astype(x.dtype)
    r, i = jnp.split(u, 2, axis=-1)
    return r.reshape(x.shape), i.reshape(x.shape)


def rglru_coefficients(x: jax.Array, kernel: jax.Array, bias: jax.Array, lam: jax.Array,
                       c: float) -> tuple[jax.Array, jax.Array]:
    """(a_t, √(1 − a_t²) ⊙ i_t ⊙ x_t), the decay and the input of the recurrence, float32:
    x [..., D], Λ [D] -> two [..., D]."""
    r, i = rglru_gates(x, kernel, bias)
    f32 = jnp.promote_types(x.dtype, jnp.float32)  # the state is never bf16
    log_a = -c * jax.nn.sigmoid(r.astype(f32)) * jax.nn.softplus(-lam.astype(f32))
    scale = sqrt_bounded(-jnp.expm1(2 * log_a))
    return jnp.exp(log_a), scale * jax.nn.sigmoid(i.astype(f32)) * x.astype(f32)


class RGLRU(nn.Module):
    """RG-LRU time mixer: [batch, length, d_model] -> same; carry [batch, d_model] float32."""

    d_model: int
    c: float = 8.0
    r_min: float = 0.9
    r_max: float = 0.999
    gate_blocks: int = 1
    scan_method: str = "auto"
    chunk_size: int = 64

    def setup(self) -> None:
        if self.d_model % self.gate_blocks:
            raise ValueError(f"model.rglru.gate_blocks={self.gate_blocks}: expected a divisor "
                             f"of the RG-LRU width {self.d_model}")
        rec = "recurrent"
        self.lam = self.param("lam", with_role(init_lambda, rec), (self.d_model,), self.r_min,
                              self.r_max, self.c)
        self.gate_kernel = self.param("gate_kernel", with_role(init_gate_kernel, rec),
                                      self.d_model, self.gate_blocks)
        size = self.d_model // self.gate_blocks
        self.gate_bias = self.param("gate_bias", with_role(nn.initializers.zeros_init(), rec),
                                    (self.gate_blocks, 2 * size))

    def init_carry(self, batch_size: int) -> jax.Array:
        return jnp.zeros((batch_size, self.d_model), jnp.float32)

    def __call__(self, x: jax.Array, carry: jax.Array | None = None, *,
                 segment_ids: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """x [B, L, D], carry [B, D] or None, segment_ids int [B, L] or None (the state is
        cleared where the segment changes) -> (y [B, L, D], carry [B, D])."""
        a, b = rglru_coefficients(x, self.gate_kernel, self.gate_bias, self.lam, self.c)
        h = linear_scan(a, b, carry, reset=channel_resets(segment_ids), method=self.scan_method,
                        chunk_size=self.chunk_size)
        return h.astype(x.dtype), h[:, -1]

    def step(self, x_t: jax.Array, carry: jax.Array) -> tuple[jax.Array, jax.Array]:
        """x_t [B, D], carry [B, D] -> (y_t [B, D], carry [B, D])."""
        a, b = rglru_coefficients(x_t, self.gate_kernel, self.gate_bias, self.lam, self.c)
        h = a * carry + b
        return h.astype(x_t.dtype), h
