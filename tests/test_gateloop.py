"""GateLoop: its initial gates, tied and untied layouts, and its outputs against a straightforward
implementation of the equations written here (separate matrices, a Python loop over time)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.core.meta import unbox

from glrnn.activations import ACTIVATIONS
from glrnn.config import ACTIVATIONS as CONFIG_ACTIVATIONS
from glrnn.mixers.gateloop import GateLoop
from glrnn.params import abstract_params

H, N = 6, 10


def init_params(layer: GateLoop) -> dict:
    return unbox(jax.jit(layer.init)(jax.random.PRNGKey(0), jnp.zeros((1, 4, layer.d_model))))[
        "params"]


def logit(v: np.ndarray) -> np.ndarray:
    return np.log(v) - np.log1p(-v)


def gates_at(layer: GateLoop, params: dict, x: jax.Array):
    return jax.jit(layer.apply, static_argnames="method")({"params": params}, x, method="gates")


def test_activation_names_match_the_config():
    assert set(ACTIVATIONS) == set(CONFIG_ACTIVATIONS)


@pytest.mark.parametrize("tied", [True, False])
def test_initial_forget_gates_span_the_range_with_log_spread_time_scales(tied):
    f_min, f_max = 0.8, 0.999
    layer = GateLoop(d_model=H, d_state=N, tied_gates=tied, f_min=f_min, f_max=f_max)
    params = init_params(layer)
    g = gates_at(layer, params, jnp.zeros((1, H)))
    f = np.asarray(g.forget[0], np.float64)
    np.testing.assert_allclose([f.min(), f.max()], [f_min, f_max], rtol=1e-5)
    log_tau = -np.log1p(-f)  # log of the time-scale 1/(1 - f)
    np.testing.assert_allclose(np.diff(log_tau), np.diff(log_tau).mean(), rtol=1e-3)
    assert np.all(np.diff(log_tau) > 0)
    # the input gate starts at 1 - f in both modes
    np.testing.assert_allclose(g.input[0], 1 - g.forget[0], rtol=1e-5, atol=1e-6)
    # W_f is small: unit-scale inputs hardly move the forget gates' pre-activations
    x = jax.random.normal(jax.random.PRNGKey(1), (256, H))
    g_x = gates_at(layer, params, x)
    shift = logit(np.asarray(g_x.forget, np.float64)) - logit(f)
    assert 0.03 < shift.std() < 0.2
    # ... while the candidate's pre-activation is unit-scale
    z = np.asarray(g_x.candidate)
    assert np.arctanh(np.clip(z, -0.999, 0.999)).std() > 0.5


def test_tied_input_gate_is_one_minus_forget_for_any_input():
    layer = GateLoop(d_model=H, d_state=N, tied_gates=True)
    params = init_params(layer)
    params = jax.tree.map(lambda v: v + jax.random.normal(jax.random.PRNGKey(3), v.shape), params)
    g = gates_at(layer, params, jax.random.normal(jax.random.PRNGKey(2), (3, 5, H)))
    np.testing.assert_allclose(g.input, 1 - g.forget, atol=1e-6)
    assert float(jnp.std(g.forget)) > 0.1  # the gates do depend on the input


@pytest.mark.parametrize(("tied", "output_gate", "k"),
                         [(True, True, 3), (True, False, 2), (False, True, 4), (False, False, 3)])
def test_parameter_shapes(tied, output_gate, k):
    layer = GateLoop(d_model=H, d_state=N, tied_gates=tied, output_gate=output_gate)
    params, roles = abstract_params(layer, jnp.zeros((1, 4, H)))
    assert roles == {"w_in": "recurrent", "b_in": "recurrent", "w_out": "weight"}
    assert jax.tree.map(jnp.shape, params) == {"w_in": (H, k * N), "b_in": (k * N,),
                                               "w_out": (N, H)}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"gate_activation": "relu", "tied_gates": False}, "one of sigmoid, tanh"),
     ({"gate_activation": "tanh", "tied_gates": True}, "tied gates")])
def test_unstable_gate_activations_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        init_params(GateLoop(d_model=H, d_state=N, **kwargs))


NP_ACT = {"tanh": np.tanh, "sigmoid": lambda v: 1 / (1 + np.exp(-v)), "identity": lambda v: v,
          "relu": lambda v: np.maximum(v, 0)}


def reference_gateloop(p: dict, x: np.ndarray, h0: np.ndarray, tied: bool, output_gate: bool,
                       act_in: str, act_h: str, act_g: str,
                       reset: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The equations, literally: x [B, L, H] -> y [B, L, H], last state [B, N]; with ``w_rec``
    in p (true recurrence) every pre-activation also gets h_{t-1} @ W_h; ``reset`` bool [B, L]
    clears h_{t-1} before step t."""
    # the column blocks of the fused projections: forget, candidate, [input], [output]
    w = np.split(p["w_in"], p["w_in"].shape[1] // N, axis=1)
    b = np.split(p["b_in"], p["b_in"].shape[0] // N)
    r = np.split(p["w_rec"], len(w), axis=1) if "w_rec" in p else [np.zeros((N, N))] * len(w)
    s_g, s_in, s_h = NP_ACT[act_g], NP_ACT[act_in], NP_ACT[act_h]
    h, ys = h0, []
    for t in range(x.shape[1]):
        x_t = x[:, t]
        if reset is not None:
            h = np.where(reset[:, t, None], 0.0, h)
        pre = [x_t @ w[k] + b[k] + h @ r[k] for k in range(len(w))]
        f = s_g(pre[0])
        z = s_in(pre[1])
        i = 1 - f if tied else s_g(pre[2])
        h = f * h + i * z
        out = s_h(h) * (s_g(pre[-1]) if output_gate else 1.0)
        ys.append(out @ p["w_out"])
    return np.stack(ys, axis=1), h


@pytest.mark.parametrize(
    ("tied", "output_gate", "act_in", "act_h", "act_g", "method", "recurrent"),
    [(True, True, "tanh", "tanh", "sigmoid", "sequential", False),
     (False, True, "identity", "relu", "tanh", "chunked", False),
     (False, False, "tanh", "identity", "sigmoid", "associative", False),
     (True, False, "relu", "tanh", "sigmoid", "chunked", False),
     (False, True, "tanh", "tanh", "sigmoid", "sequential", True)])
def test_matches_the_equations(tied, output_gate, act_in, act_h, act_g, method, recurrent):
    with jax.enable_x64(True):
        layer = GateLoop(d_model=H, d_state=N, tied_gates=tied, output_gate=output_gate,
                         input_activation=act_in, hidden_activation=act_h, gate_activation=act_g,
                         scan_method=method, chunk_size=4, recurrent=recurrent)
        params = init_params(layer)
        # random biases (and recurrent weights) too, so that no block is trivially zero
        params = jax.tree.map(lambda v: v.astype(jnp.float64), params)
        params["b_in"] = params["b_in"] + jax.random.normal(jax.random.PRNGKey(4),
                                                            params["b_in"].shape, jnp.float64)
        if recurrent:
            assert not np.any(params["w_rec"])  # zero-initialised: starts as the linear model
            params["w_rec"] = 0.3 * jax.random.normal(jax.random.PRNGKey(5),
                                                      params["w_rec"].shape, jnp.float64)
        x = jax.random.normal(jax.random.PRNGKey(1), (2, 11, H), jnp.float64)
        h0 = jax.random.normal(jax.random.PRNGKey(2), (2, N), jnp.float64)
        # the second row starts a new document at position 4
        segments = np.array([[0] * 11, [0] * 4 + [1] * 7])
        y, carry = jax.jit(layer.apply)({"params": params}, x, h0,
                                        segment_ids=jnp.asarray(segments))
        reset = np.zeros((2, 11), bool)
        reset[1, 4] = True
        ref_y, ref_h = reference_gateloop(jax.tree.map(np.asarray, params), np.asarray(x),
                                          np.asarray(h0), tied, output_gate, act_in, act_h, act_g,
                                          reset)
        np.testing.assert_allclose(y, ref_y, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(carry, ref_h, rtol=1e-10, atol=1e-10)
