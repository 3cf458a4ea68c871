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
every glrnn mixer. recurrentgemma instead drops the √(1 − a_t²) factor at a document's first
token, h_t = i_t ⊙ x_t, and counts the first token of every sequence it is given as one
(``segment_pos == 0``). ``unscaled_start`` does the same: a document starts at a reset and
wherever the carry was cleared, so the carry (``RGLRUCarry``) also holds a per-row flag
``started`` (0 in the zero carry, which ``generate.clear_rows`` also gives; 1 after any token):
a call without a carry, a prompt prefilled from the zero state and a decode step after a cleared
row all start a document, as recurrentgemma's prompt processing and sampler do.

Parameter roles (glrnn/params.py): Λ, the gates' kernel and bias are ``recurrent``. The gates run
in the input's dtype; a_t, the state and y are float32 (y is cast back to the input's dtype).
"""

from __future__ import annotations

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from glrnn.params import with_role
from glrnn.scan import channel_resets, linear_scan, segment_resets

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
                       c: float, unscaled: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """(a_t, √(1 − a_t²) ⊙ i_t ⊙ x_t), the decay and the input of the recurrence, float32:
    x [..., D], Λ [D] -> two [..., D]; where ``unscaled`` (bool, broadcastable to x) is True the
    input is i_t ⊙ x_t (recurrentgemma's document start)."""
    r, i = rglru_gates(x, kernel, bias)
    f32 = jnp.promote_types(x.dtype, jnp.float32)  # the state is never bf16
    log_a = -c * jax.nn.sigmoid(r.astype(f32)) * jax.nn.softplus(-lam.astype(f32))
    scale = sqrt_bounded(-jnp.expm1(2 * log_a))
    if unscaled is not None:
        scale = jnp.where(unscaled, 1.0, scale)
    return jnp.exp(log_a), scale * jax.nn.sigmoid(i.astype(f32)) * x.astype(f32)


class RGLRUCarry(NamedTuple):
    """The carry with ``unscaled_start``: the state and whether the current document has
    begun."""

    state: jax.Array  # [B, D] float32
    started: jax.Array  # [B] float32: 0 (a cleared carry) until the next token, then 1


def document_starts(segment_ids: jax.Array | None, started: jax.Array | None,
                    shape: tuple[int, int]) -> jax.Array:
    """bool [B, L]: where a document starts: a change of segment id, or position 0 when the
    carry is absent (``started`` None) or cleared (``started`` 0)."""
    resets = jnp.zeros(shape, bool) if segment_ids is None else segment_resets(segment_ids)
    first = True if started is None else started == 0
    return resets.at[:, 0].set(resets[:, 0] | first)


class RGLRU(nn.Module):
    """RG-LRU time mixer: [batch, length, d_model] -> same; carry [batch, d_model] float32
    (``RGLRUCarry`` with ``unscaled_start``)."""

    d_model: int
    c: float = 8.0
    r_min: float = 0.9
    r_max: float = 0.999
    gate_blocks: int = 1
    scan_method: str = "auto"
    chunk_size: int = 64
    unscaled_start: bool = False

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

    def init_carry(self, batch_size: int) -> jax.Array | RGLRUCarry:
        state = jnp.zeros((batch_size, self.d_model), jnp.float32)
        if self.unscaled_start:
            return RGLRUCarry(state, jnp.zeros((batch_size,), jnp.float32))
        return state

    def __call__(self, x: jax.Array, carry: jax.Array | RGLRUCarry | None = None, *,
                 segment_ids: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """x [B, L, D], carry [B, D] (``RGLRUCarry``) or None, segment_ids int [B, L] or None
        (the state is cleared where the segment changes) -> (y [B, L, D], carry)."""
        h0, started = self._split(carry)
        if self.unscaled_start:
            reset = unscaled = document_starts(segment_ids, started, x.shape[:2])[..., None]
        else:
            reset, unscaled = channel_resets(segment_ids), None
        a, b = rglru_coefficients(x, self.gate_kernel, self.gate_bias, self.lam, self.c,
                                  unscaled)
        h = linear_scan(a, b, h0, reset=reset, method=self.scan_method,
                        chunk_size=self.chunk_size)
        return h.astype(x.dtype), self._carry(h[:, -1])

    def step(self, x_t: jax.Array, carry: jax.Array | RGLRUCarry) -> tuple[jax.Array, jax.Array]:
        """x_t [B, D], carry [B, D] (``RGLRUCarry``) -> (y_t [B, D], carry)."""
        h0, started = self._split(carry)
        start = None if started is None else (started == 0)[:, None]
        a, b = rglru_coefficients(x_t, self.gate_kernel, self.gate_bias, self.lam, self.c, start)
        h = (a * h0 if start is None else jnp.where(start, 0.0, a * h0)) + b
        return h.astype(x_t.dtype), self._carry(h)

    def _split(self, carry: jax.Array | RGLRUCarry | None
               ) -> tuple[jax.Array | None, jax.Array | None]:
        """(state, started flag or None) of a carry (None: no state, no flag)."""
        if carry is None or not self.unscaled_start:
            return carry, None
        return carry.state, carry.started

    def _carry(self, h: jax.Array) -> jax.Array | RGLRUCarry:
        """The carry after a token: the state (and, with ``unscaled_start``, started = 1)."""
        if self.unscaled_start:
            return RGLRUCarry(h, jnp.ones(h.shape[:1], jnp.float32))
        return h
