"""GateLoop as its paper defines it (Katsch 2023, "GateLoop: Fully Data-Controlled Linear
Recurrence for Sequence Modeling", sections 3 and 4): queries, keys and values over a
matrix-valued state per head, with data-controlled complex state transitions.

Per head (``heads`` of them, key width K, value width V), from x_t [D] through one fused matmul:

    q_t = φ(W_q x_t) / √K,   k_t = φ(W_k x_t),   v_t = W_v x_t     R^K, R^K, R^V
    |a_t| = σ(W_m x_t + b_m)                                       magnitude activation: |a| < 1
    arg a_t = W_θ x_t + b_θ                                        phase activation: identity
    H_t = diag(a_t) H_{t−1} + k_t v_tᵀ,   y_t = Re(q_tᵀ H_t)          H_t ∈ C^{K×V}
    o_t = W_o (norm(y_t) ⊙ silu(W_g x_t))                          norm: LayerNorm per head

The recurrence runs in :func:`glrnn.scan.gated_linear_attention` (chunked, associative or
sequential by ``scan_method``; ``step`` is its one-step form), fed log|a_t| = −softplus(−m_t),
which stays finite however small |a_t| gets. ``phase=False`` drops W_θ and b_θ: real decays,
a real state (half the work of the complex one). The feature map φ is the identity in the paper;
``feature_map="elu"`` takes φ(x) = elu(x) + 1 > 0 (Katharopoulos et al. 2020), so that every
stored value enters a read with a positive weight: y_t is then a positive mixture of the values
written so far, which a recall task can use from the first steps (docs/RESULTS.md: MQAR).
The per-head LayerNorm is the paper's GroupNorm with one group per head (mean and variance
over each head's V outputs, a scale and an offset per channel); the output gate is SiLU as in
the paper's code.

Initialisation (our choice, as the vector ``gateloop`` does for its forget gate): b_m puts |a|
at x = 0 on [a_min, a_max] with memory time-scales 1/(1 − |a|) spread log-uniformly over each
head's K channels (the same spread in every head), W_m and W_θ are lecun-normal scaled by
``GATE_KERNEL_SCALE`` so that inputs move the decays only a little at first, b_θ spreads the
phases evenly on [0, max_phase] over the K channels. The other kernels are lecun-normal, the
norm's scale one and offset zero. The measured effect of the long-memory start against
σ(0) = 1/2: docs/RESULTS.md.

Parameters and roles (glrnn/params.py): ``w_qkvg`` [D, heads·(2K + 2V)] (q, k, v, gate;
``weight``), ``w_a`` [D, heads·K·P] and ``b_a`` [heads·K·P] (the transition's magnitude, then
phase when P = 2; ``recurrent``): concatenated into one kernel for one matmul; ``norm_scale``,
``norm_offset`` [heads·V] (``norm``); ``w_out`` [heads·V, D] (``weight``). The projection runs
in the input's dtype; the transition, the state (complex64, or float32 without phase) and the
norm in float32.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from glrnn.mixers.gateloop import GATE_INVERSES, GATE_KERNEL_SCALE, forget_init
from glrnn.params import with_role
from glrnn.scan import gated_linear_attention, gla_step, segment_resets, transition

NORM_EPS = 1e-5
# glrnn.config.FEATURE_MAPS names these
FEATURE_MAPS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "identity": lambda x: x, "elu": lambda x: nn.elu(x) + 1}


def transition_bias_init(heads: int, width_k: int, a_min: float, a_max: float,
                         max_phase: float | None) -> jax.Array:
    """b_a [heads·K·P]: the magnitudes' logits (time-scales spread over each head's K
    channels), then, with a ``max_phase``, the phases evenly on [0, max_phase]."""
    magnitude = jnp.tile(GATE_INVERSES["sigmoid"](forget_init(width_k, a_min, a_max)), heads)
    if max_phase is None:
        return magnitude
    return jnp.concatenate([magnitude, jnp.tile(jnp.linspace(0.0, max_phase, width_k), heads)])


def head_norm(y: jax.Array, scale: jax.Array, offset: jax.Array) -> jax.Array:
    """LayerNorm over each head's outputs: y [..., heads, V], scale and offset [heads·V] ->
    [..., heads·V] in float32."""
    y = y.astype(jnp.promote_types(y.dtype, jnp.float32))
    mean = jnp.mean(y, axis=-1, keepdims=True)
    var = jnp.var(y, axis=-1, keepdims=True)
    y = ((y - mean) * jax.lax.rsqrt(var + NORM_EPS)).reshape(*y.shape[:-2], -1)
    return y * scale + offset


class GateLoopQKV(nn.Module):
    """GateLoop's query/key/value mixer: [batch, length, d_model] -> same; carry [batch, heads,
    K, V] complex64 (float32 with ``phase=False``)."""

    d_model: int
    heads: int = 4
    key_width: int = 0  # K; 0: d_model // heads
    value_width: int = 0  # V; 0: d_model // heads
    phase: bool = True
    a_min: float = 0.9
    a_max: float = 0.999
    max_phase: float = math.pi / 10
    feature_map: str = "identity"
    scan_method: str = "auto"
    chunk_size: int = 64

    @property
    def widths(self) -> tuple[int, int]:
        """(K, V)."""
        share = self.d_model // self.heads
        return self.key_width or share, self.value_width or share

    def setup(self) -> None:
        width_k, width_v = self.widths
        parts = 2 if self.phase else 1
        self.w_qkvg = self.param("w_qkvg", with_role(nn.initializers.lecun_normal(), "weight"),
                                 (self.d_model, self.heads * (2 * width_k + 2 * width_v)))
        self.w_a = self.param(
            "w_a", with_role(lambda key, shape: GATE_KERNEL_SCALE
                             * nn.initializers.lecun_normal()(key, shape), "recurrent"),
            (self.d_model, self.heads * width_k * parts))
        self.b_a = self.param("b_a", with_role(lambda _: transition_bias_init(
            self.heads, width_k, self.a_min, self.a_max,
            self.max_phase if self.phase else None), "recurrent"))
        self.norm_scale = self.param("norm_scale", with_role(nn.initializers.ones_init(), "norm"),
                                     (self.heads * width_v,))
        self.norm_offset = self.param("norm_offset",
                                      with_role(nn.initializers.zeros_init(), "norm"),
                                      (self.heads * width_v,))
        self.w_out = self.param("w_out", with_role(nn.initializers.lecun_normal(), "weight"),
                                (self.heads * width_v, self.d_model))

    def init_carry(self, batch_size: int) -> jax.Array:
        width_k, width_v = self.widths
        dtype = jnp.complex64 if self.phase else jnp.float32
        return jnp.zeros((batch_size, self.heads, width_k, width_v), dtype)

    def _project(self, x: jax.Array) -> tuple[jax.Array, ...]:
        """x [..., D] -> q, k, log|a| [..., heads, K], v [..., heads, V], phase [..., heads, K]
        or None, gate [..., heads·V]."""
        width_k, width_v = self.widths
        kernel = jnp.concatenate([self.w_qkvg, self.w_a], axis=1).astype(x.dtype)
        u = x @ kernel
        sizes = [width_k, width_k, width_v, width_v] + [width_k] * (2 if self.phase else 1)
        cuts = [self.heads * s for s in sizes]
        q, k, v, gate, *transitions = jnp.split(u, list(itertools.accumulate(cuts[:-1])), axis=-1)
        heads = (*x.shape[:-1], self.heads, -1)
        pre = [(t.astype(jnp.float32) + b).reshape(heads) for t, b in
               zip(transitions, jnp.split(self.b_a, len(transitions)), strict=True)]
        log_a = -jax.nn.softplus(-pre[0])
        feature = FEATURE_MAPS[self.feature_map]
        return (feature(q.reshape(heads)) / math.sqrt(width_k), feature(k.reshape(heads)),
                v.reshape(heads), log_a, pre[1] if self.phase else None, gate)

    def _output(self, y: jax.Array, gate: jax.Array) -> jax.Array:
        """y [..., heads, V] (float32), gate [..., heads·V] -> [..., D] in the gate's dtype."""
        dtype = gate.dtype
        z = head_norm(y, self.norm_scale, self.norm_offset).astype(dtype) * nn.silu(gate)
        return z @ self.w_out.astype(dtype)

    def __call__(self, x: jax.Array, carry: jax.Array | None = None, *,
                 segment_ids: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """x [B, L, D], carry [B, heads, K, V] or None, segment_ids int [B, L] or None (the
        state is cleared where the segment changes) -> (y [B, L, D], carry)."""
        q, k, v, log_a, phase, gate = self._project(x)
        if carry is None:
            carry = self.init_carry(x.shape[0])
        y, carry = gated_linear_attention(
            q, k, v, log_a, phase, carry,
            reset=None if segment_ids is None else segment_resets(segment_ids),
            method=self.scan_method, chunk_size=self.chunk_size)
        return self._output(y, gate), carry

    def step(self, x_t: jax.Array, carry: jax.Array) -> tuple[jax.Array, jax.Array]:
        """x_t [B, D], carry [B, heads, K, V] -> (y_t [B, D], carry)."""
        q, k, v, log_a, phase, gate = self._project(x_t)
        q, k, v = (z.astype(jnp.float32) for z in (q, k, v))  # as the scan computes them
        y, carry = gla_step(q, k, v, transition(log_a, phase), carry)
        return self._output(y, gate), carry
