"""How the online rules see each recurrent mixer: its step as pure functions of its parameters.

A :class:`Cell` describes one step of a mixer whose state is h ∈ R^N or C^N:

* ``transition(module, p, h_prev, x_t, spatial) -> h_t``: the state update, from the mixer's
  parameter dict ``p``, h_prev [B, N] and the mixer's input x_t [B, H]. With ``spatial`` the
  term that carries h_prev (λ ⊙ h_prev, A h_prev, the GRU's recurrent matmul) is cut from the
  gradient, so its parameters learn nothing through the recurrence (``online_spatial``).
* ``readout(module, p, h_t, x_t) -> y_t`` [B, H].
* ``diag_jacobian(module, p, h_prev, x_t) -> [B, N]``: the diagonal of ∂h_t/∂h_{t−1}. For the
  diagonal linear recurrences it is the whole Jacobian (λ, the forget gate f_t); for dense RNNs
  and GRUs it is what SnAp-1 keeps.
* ``layout(module) -> {name: (axis, tiles)}``: the parameters that shape the state (the ones
  that carry a sensitivity), and for each the axis of its entries that names the state channel
  it acts on, ``tiles`` blocks of N along that axis (GateLoop's and the GRU's fused
  projections). Each entry of these parameters acts on a single channel within one step —
  the property that makes the immediate Jacobian one gradient (glrnn/online/rtrl.py).
* ``independent``: True when channels never mix (the Jacobian is diagonal): ``online_full`` is
  exact RTRL for a single layer. False for dense RNNs and GRUs: ``online_snap1`` applies.

``module`` gives the static settings (activations, layouts); every array comes from ``p``, so
the rules can differentiate with respect to it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from glrnn.activations import activation
from glrnn.mixers.dense_rnn import DenseRNN, rnn_input, rnn_output
from glrnn.mixers.diag_rnn import DiagRNN, diag_input, diag_lambda
from glrnn.mixers.gateloop import (
    GateLoop,
    Gates,
    gateloop_preactivation,
    gateloop_readout,
    gates_of,
)
from glrnn.mixers.gru import GRU, gru_combine, gru_input, gru_output
from glrnn.mixers.lru import LRU, lru_input, lru_lambda, lru_output

Params = Mapping[str, jax.Array]
Layout = dict[str, tuple[int, int]]


class Cell(NamedTuple):
    """One mixer's step for the online rules (see the module docstring)."""

    transition: Callable[[Any, Params, jax.Array, jax.Array, bool], jax.Array]
    readout: Callable[[Any, Params, jax.Array, jax.Array], jax.Array]
    diag_jacobian: Callable[[Any, Params, jax.Array, jax.Array], jax.Array]
    layout: Callable[[Any], Layout]
    independent: bool


def cut(term: jax.Array, spatial: bool) -> jax.Array:
    """``term`` with its gradient stopped when ``spatial``."""
    return jax.lax.stop_gradient(term) if spatial else term


def per_channel(*names: str) -> Callable[[Any], Layout]:
    """A layout where each of ``names`` has the channel on axis 0, one block."""
    return lambda _: dict.fromkeys(names, (0, 1))


# --- diagonal linear recurrences: h_t = a_t ⊙ h_{t−1} + b_t ---


def _lru_transition(m: LRU, p: Params, h: jax.Array, x: jax.Array, spatial: bool) -> jax.Array:
    lam = lru_lambda(p["nu_log"], p["theta_log"])
    return cut(lam * h, spatial) + lru_input(x, p["B_re"], p["B_im"], p["gamma_log"])


def _lru_readout(m: LRU | DiagRNN, p: Params, h: jax.Array, x: jax.Array) -> jax.Array:
    return lru_output(h, x, p["C_re"], p["C_im"], p["D"])


LRU_CELL = Cell(
    transition=_lru_transition, readout=_lru_readout,
    diag_jacobian=lambda m, p, h, x: jnp.broadcast_to(lru_lambda(p["nu_log"], p["theta_log"]),
                                                      h.shape),
    layout=per_channel("nu_log", "theta_log", "gamma_log", "B_re", "B_im"), independent=True)


def _diag_transition(m: DiagRNN, p: Params, h: jax.Array, x: jax.Array,
                     spatial: bool) -> jax.Array:
    return cut(diag_lambda(p["lam"]) * h, spatial) + diag_input(x, p["B_re"], p["B_im"])


DIAG_RNN_CELL = Cell(
    transition=_diag_transition, readout=_lru_readout,
    diag_jacobian=lambda m, p, h, x: jnp.broadcast_to(diag_lambda(p["lam"]), h.shape),
    layout=lambda _: {"lam": (1, 1), "B_re": (0, 1), "B_im": (0, 1)}, independent=True)


def _gates(m: GateLoop, p: Params, x: jax.Array) -> Gates:
    return gates_of(gateloop_preactivation(x, p["w_in"], p["b_in"]), m.layout,
                    activation(m.input_activation), activation(m.gate_activation))


def _gateloop_transition(m: GateLoop, p: Params, h: jax.Array, x: jax.Array,
                         spatial: bool) -> jax.Array:
    g = _gates(m, p, x)
    return cut(g.forget * h, spatial) + g.input * g.candidate


def _gateloop_readout(m: GateLoop, p: Params, h: jax.Array, x: jax.Array) -> jax.Array:
    return gateloop_readout(h, _gates(m, p, x).output, p["w_out"],
                            activation(m.hidden_activation), x.dtype)


GATELOOP_CELL = Cell(
    transition=_gateloop_transition, readout=_gateloop_readout,
    diag_jacobian=lambda m, p, h, x: _gates(m, p, x).forget,
    layout=lambda m: {"w_in": (1, len(m.layout)), "b_in": (0, len(m.layout))}, independent=True)


# --- dense recurrences: SnAp-1 keeps the diagonal of their Jacobian ---


def _dense_preactivation(p: Params, h: jax.Array, x: jax.Array, spatial: bool) -> jax.Array:
    return cut(h @ p["A"].T, spatial) + rnn_input(x, p["B"], p["b"])


def _dense_diag_jacobian(m: DenseRNN, p: Params, h: jax.Array, x: jax.Array) -> jax.Array:
    """φ'(z) ⊙ diag(A), z = A h + B x + b (φ' by a JVP of the elementwise activation)."""
    z = _dense_preactivation(p, h, x, False)
    slope = jax.jvp(activation(m.activation), (z,), (jnp.ones_like(z),))[1]
    return slope * jnp.diagonal(p["A"])


DENSE_RNN_CELL = Cell(
    transition=lambda m, p, h, x, spatial: activation(m.activation)(
        _dense_preactivation(p, h, x, spatial)),
    readout=lambda m, p, h, x: rnn_output(h, x, p["C"], p["D"]),
    diag_jacobian=_dense_diag_jacobian, layout=per_channel("A", "B", "b"), independent=False)


def _gru_diag_jacobian(m: GRU, p: Params, h: jax.Array, x: jax.Array) -> jax.Array:
    """∂h_t,i/∂h_{t−1},i = z_i + (h_i − n_i) z_i' + (1 − z_i) n_i', with the gates' own
    diagonal terms (U[i, i] of each recurrent block)."""
    n_state = h.shape[-1]
    u_r, u_z, u_n = jnp.split(gru_input(x, p["w_x"], p["b_x"]), 3, axis=-1)
    rec_r, rec_z, rec_n = jnp.split(h @ p["w_h"], 3, axis=-1)
    d_r, d_z, d_n = (jnp.diagonal(p["w_h"][:, k * n_state:(k + 1) * n_state]) for k in range(3))
    r, z = jax.nn.sigmoid(u_r + rec_r), jax.nn.sigmoid(u_z + rec_z)
    n = jnp.tanh(u_n + r * (rec_n + p["b_hn"]))
    dr, dz = r * (1 - r) * d_r, z * (1 - z) * d_z
    dn = (1 - n**2) * (dr * (rec_n + p["b_hn"]) + r * d_n)
    return z + (h - n) * dz + (1 - z) * dn


GRU_CELL = Cell(
    transition=lambda m, p, h, x, spatial: gru_combine(
        gru_input(x, p["w_x"], p["b_x"]), cut(h @ p["w_h"], spatial), h, p["b_hn"]),
    readout=lambda m, p, h, x: gru_output(h, p["w_out"], x.dtype),
    diag_jacobian=_gru_diag_jacobian,
    layout=lambda _: {"w_x": (1, 3), "b_x": (0, 3), "w_h": (1, 3), "b_hn": (0, 1)},
    independent=False)


# mixer name (glrnn.mixers.MIXERS) -> (module class, cell)
CELLS: dict[str, tuple[type, Cell]] = {
    "lru": (LRU, LRU_CELL), "diag_rnn": (DiagRNN, DIAG_RNN_CELL),
    "gateloop": (GateLoop, GATELOOP_CELL), "dense_rnn": (DenseRNN, DENSE_RNN_CELL),
    "gru": (GRU, GRU_CELL)}


def cell_of(module: Any) -> Cell | None:
    """The cell of a mixer module (None for any other module)."""
    for cls, cell in CELLS.values():
        if type(module) is cls:
            return cell
    return None
