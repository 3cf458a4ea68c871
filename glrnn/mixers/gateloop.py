"""A GateLoop-style gated linear RNN (Katsch 2023, "GateLoop: Fully Data-Controlled Linear
Recurrence for Sequence Modeling"), real-valued, with a state of width N = ``d_state``:

    f_t = σ_g(W_f x_t + b_f)                       forget gate
    i_t = 1 − f_t   (tied)   or   σ_g(W_i x_t + b_i)   (untied)       input gate
    z_t = σ_in(W_z x_t + b_z)                      candidate
    o_t = σ_g(W_o x_t + b_o)                       output gate (optional)
    h_t = f_t ⊙ h_{t−1} + i_t ⊙ z_t
    y_t = W_y (o_t ⊙ σ_h(h_t))                     N → d_model, no bias

σ_g, σ_in, σ_h are ``gate_activation``, ``input_activation``, ``hidden_activation``. All the
projections of x are one matmul with the fused kernel ``w_in`` [d_model, k·N] and bias
``b_in`` [k·N], whose k blocks of N columns are, in this order: forget, candidate, input
(untied only), output (with ``output_gate`` only). ``w_out`` [N, d_model] is W_y.

Initialisation (our choice; the peer package flax-gated-linear-rnn starts every gate at
σ(0) = 0.5, i.e. a memory of about two steps): the forget gate starts with long memory.
Its bias b_f is set so that at x = 0 the gates f span [f_min, f_max] with time-scales
τ = 1/(1 − f) spread log-uniformly over the channels (τ_n = exp(linspace(log τ(f_min),
log τ(f_max), N)), deterministic, channel 0 the shortest), and its kernel W_f is lecun-normal
scaled by ``GATE_KERNEL_SCALE`` so that unit-scale inputs move the pre-activation by about 0.1 and
the time-scales hold at the start of training. An untied input gate starts where the tied one
is (b_i such that i = 1 − f at x = 0, W_i scaled the same), which keeps h at the scale of z
however long the memory; the other blocks of ``w_in`` and ``w_out`` are lecun-normal, their
biases zero.

Parameter roles (glrnn/params.py): the fused ``w_in`` and ``b_in`` are ``recurrent`` (they set the
decay and the input of the state; the output gate's block rides along in the same matmul rather
than costing a second one), ``w_out`` is ``weight``. Matmuls run in the input's dtype; gates and
the state are float32.

The forget gate must keep |f| < 1 for the recurrence to be stable, so ``gate_activation`` is
``sigmoid`` or ``tanh`` (whose inverses place the bias); tied gates need f ∈ (0, 1): ``sigmoid``.

True-recurrence mode (``recurrent=True``): every pre-activation also sees the previous state,
W x_t + b + W_h h_{t−1}, through ``w_rec`` [N, k·N] (the same column blocks as ``w_in``, role
``recurrent``). It is zero-initialised, so such a model starts as the linear one (parameters of a
linear checkpoint load unchanged, ``train.init_from``) and can be fine-tuned from there. The
recurrence is then nonlinear and runs sequentially (``lax.scan``: the x-part of every
pre-activation is one matmul before the loop, h_{t−1} W_h one small matmul per step), in
float32, whatever ``scan_method``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from glrnn.activations import Activation, activation
from glrnn.params import with_role
from glrnn.scan import channel_resets, linear_scan, segment_resets

# forget-gate activations (bounded, |f| < 1) and their inverses, to place the bias
GATE_INVERSES: dict[str, Activation] = {
    "sigmoid": lambda f: jnp.log(f) - jnp.log1p(-f),
    "tanh": jnp.arctanh,
}
GATE_KERNEL_SCALE = 0.1  # W_f (and an untied W_i) relative to lecun-normal


class Gates(NamedTuple):
    """The per-step quantities computed from x: each [..., N] (``output`` None when absent)."""

    forget: jax.Array
    input: jax.Array
    candidate: jax.Array
    output: jax.Array | None


def projection_layout(tied_gates: bool, output_gate: bool) -> tuple[str, ...]:
    """Names of the column blocks of the fused input projection, in order."""
    return (("forget", "candidate") + (() if tied_gates else ("input",))
            + (("output",) if output_gate else ()))


def forget_init(d_state: int, f_min: float, f_max: float) -> jax.Array:
    """Forget gates [N] in [f_min, f_max] whose time-scales 1/(1 − f) are log-uniformly spaced."""
    log_tau = jnp.linspace(-math.log1p(-f_min), -math.log1p(-f_max), d_state)
    return -jnp.expm1(-log_tau)  # f = 1 − 1/τ


def projection_bias_init(layout: tuple[str, ...], forget: jax.Array,
                         gate_activation: str) -> jax.Array:
    """b_in [k·N]: b_f gives ``forget`` [N] at x = 0, b_i gives 1 − forget, the rest zero."""
    inverse = GATE_INVERSES[gate_activation]
    blocks = {"forget": inverse(forget), "input": inverse(1 - forget)}
    return jnp.concatenate([blocks.get(name, jnp.zeros_like(forget)) for name in layout])


def projection_kernel_init(key: jax.Array, d_model: int, d_state: int,
                           layout: tuple[str, ...]) -> jax.Array:
    """w_in [H, k·N]: lecun-normal, the forget and input blocks scaled by GATE_KERNEL_SCALE."""
    w = nn.initializers.lecun_normal()(key, (d_model, len(layout) * d_state))
    scale = jnp.repeat(jnp.array([GATE_KERNEL_SCALE if name in ("forget", "input") else 1.0
                                  for name in layout]), d_state)
    return w * scale


# --- the math (pure functions) ---


def gateloop_preactivation(x: jax.Array, w_in: jax.Array, b_in: jax.Array) -> jax.Array:
    """x [..., H], w_in [H, k·N], b_in [k·N] -> [..., k·N] in float32 (or wider)."""
    u = x @ w_in.astype(x.dtype) + b_in.astype(x.dtype)
    return u.astype(jnp.promote_types(u.dtype, jnp.float32))  # the state is never bf16


def gates_of(u: jax.Array, layout: tuple[str, ...], input_act: Activation,
             gate_act: Activation) -> Gates:
    """Gates from the pre-activations u [..., k·N] (blocks in ``layout`` order)."""
    parts = dict(zip(layout, jnp.split(u, len(layout), axis=-1), strict=True))
    forget = gate_act(parts["forget"])
    return Gates(
        forget=forget,
        input=gate_act(parts["input"]) if "input" in parts else 1 - forget,
        candidate=input_act(parts["candidate"]),
        output=gate_act(parts["output"]) if "output" in parts else None,
    )


def recurrent_gateloop(u: jax.Array, w_rec: jax.Array, h0: jax.Array, reset: jax.Array | None,
                       layout: tuple[str, ...], input_act: Activation, gate_act: Activation,
                       hidden_act: Activation) -> tuple[jax.Array, jax.Array]:
    """The true recurrence, sequentially: u [B, L, k·N] (the x-part of the pre-activations),
    w_rec [N, k·N], h0 [B, N], reset bool [B, L] or None (the state is cleared before the step)
    -> (o ⊙ σ_h(h) [B, L, N], the read-out's input; the last state [B, N])."""

    def step(h: jax.Array, inputs: tuple[jax.Array, jax.Array | None]):
        u_t, reset_t = inputs
        if reset_t is not None:
            h = jnp.where(reset_t[:, None], 0.0, h)
        g = gates_of(u_t + h @ w_rec.astype(h.dtype), layout, input_act, gate_act)
        h = g.forget * h + g.input * g.candidate
        return h, gated_hidden(h, g.output, hidden_act)

    resets = None if reset is None else reset.T
    h, r = jax.lax.scan(step, h0.astype(u.dtype), (jnp.swapaxes(u, 0, 1), resets))
    return jnp.swapaxes(r, 0, 1), h


def gated_hidden(h: jax.Array, output: jax.Array | None, hidden_act: Activation) -> jax.Array:
    """o ⊙ σ_h(h) (σ_h(h) without an output gate): each [..., N]."""
    r = hidden_act(h)
    return r if output is None else output * r


def gateloop_readout(h: jax.Array, output: jax.Array | None, w_out: jax.Array,
                     hidden_act: Activation, dtype: jnp.dtype) -> jax.Array:
    """W_y (o ⊙ σ_h(h)): h [..., N], o [..., N] or None, w_out [N, H] -> [..., H] in ``dtype``."""
    return gated_hidden(h, output, hidden_act).astype(dtype) @ w_out.astype(dtype)


class GateLoop(nn.Module):
    """GateLoop time mixer: [batch, length, d_model] -> [batch, length, d_model];
    carry [batch, d_state] float32."""

    d_model: int
    d_state: int
    tied_gates: bool = True
    input_activation: str = "tanh"
    hidden_activation: str = "tanh"
    gate_activation: str = "sigmoid"
    output_gate: bool = True
    f_min: float = 0.9
    f_max: float = 0.999
    scan_method: str = "auto"
    chunk_size: int = 64
    recurrent: bool = False

    def setup(self) -> None:
        if self.gate_activation not in GATE_INVERSES:
            raise ValueError(f"model.gateloop.gate_activation={self.gate_activation!r}: expected "
                             f"one of {', '.join(sorted(GATE_INVERSES))} (|forget gate| < 1)")
        if self.tied_gates and self.gate_activation != "sigmoid":
            raise ValueError(f"model.gateloop.gate_activation={self.gate_activation!r}: tied "
                             "gates (i = 1 - f) need f in (0, 1): expected 'sigmoid'")
        self.layout = projection_layout(self.tied_gates, self.output_gate)
        self.w_in = self.param("w_in", with_role(projection_kernel_init, "recurrent"),
                               self.d_model, self.d_state, self.layout)
        self.b_in = self.param(
            "b_in", with_role(lambda _: projection_bias_init(
                self.layout, forget_init(self.d_state, self.f_min, self.f_max),
                self.gate_activation), "recurrent"))
        self.w_out = self.param("w_out", with_role(nn.initializers.lecun_normal(), "weight"),
                                (self.d_state, self.d_model))
        if self.recurrent:
            self.w_rec = self.param("w_rec", with_role(nn.initializers.zeros_init(), "recurrent"),
                                    (self.d_state, len(self.layout) * self.d_state))

    def gates(self, x: jax.Array, h: jax.Array | None = None) -> Gates:
        """x [..., H] (and, in true-recurrence mode, the previous state h [..., N]) -> Gates,
        each [..., N]."""
        u = gateloop_preactivation(x, self.w_in, self.b_in)
        if self.recurrent:
            u = u + h @ self.w_rec
        return gates_of(u, self.layout, *self._activations())

    def _activations(self) -> tuple[Activation, Activation]:
        return activation(self.input_activation), activation(self.gate_activation)

    def init_carry(self, batch_size: int) -> jax.Array:
        return jnp.zeros((batch_size, self.d_state), jnp.float32)

    def __call__(self, x: jax.Array, carry: jax.Array | None = None, *,
                 segment_ids: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """x [B, L, H], carry [B, N] or None, segment_ids int [B, L] or None (the state is
        cleared where the segment changes) -> (y [B, L, H], carry [B, N])."""
        if self.recurrent:
            if carry is None:
                carry = self.init_carry(x.shape[0])
            r, h = recurrent_gateloop(
                gateloop_preactivation(x, self.w_in, self.b_in), self.w_rec, carry,
                None if segment_ids is None else segment_resets(segment_ids), self.layout,
                *self._activations(), activation(self.hidden_activation))
            return r.astype(x.dtype) @ self.w_out.astype(x.dtype), h
        g = self.gates(x)
        h = linear_scan(g.forget, g.input * g.candidate, carry,
                        reset=channel_resets(segment_ids), method=self.scan_method,
                        chunk_size=self.chunk_size)
        return self._readout(h, g.output, x.dtype), h[:, -1]

    def step(self, x_t: jax.Array, carry: jax.Array) -> tuple[jax.Array, jax.Array]:
        """x_t [B, H], carry [B, N] -> (y_t [B, H], carry [B, N])."""
        g = self.gates(x_t, carry)
        h = g.forget * carry + g.input * g.candidate
        return self._readout(h, g.output, x_t.dtype), h

    def _readout(self, h: jax.Array, output: jax.Array | None, dtype: jnp.dtype) -> jax.Array:
        return gateloop_readout(h, output, self.w_out, activation(self.hidden_activation), dtype)
