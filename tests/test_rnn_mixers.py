"""The dense RNN, the GRU and the diagonal RNN against straightforward implementations of their
equations written here (separate matrices, a Python loop over time, packed documents cleared by
hand), and the rescaled-Glorot / fixed initialisations against what they promise."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.core.meta import unbox

from glrnn.config import ConfigError, DenseRNNConfig, DiagRNNConfig, ModelConfig
from glrnn.mixers.dense_rnn import DenseRNN
from glrnn.mixers.diag_rnn import DiagRNN
from glrnn.mixers.gru import GRU
from glrnn.mixers.rnn_init import (
    eigenvalue_init,
    recurrent_matrix_init,
    rescaled_glorot_scale,
    spectral_radius,
)
from glrnn.params import abstract_params

H, N, BATCH, LENGTH = 5, 7, 2, 9
ACT = {"identity": lambda v: v, "tanh": np.tanh, "relu": lambda v: np.maximum(v, 0)}
# two documents in row 0 (cut after 4), one continuing document in row 1
SEGMENTS = np.array([[0] * 4 + [1] * 5, [3] * 9])


def sigmoid(v: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-v))


def run_f64(layer, with_segments: bool = True):
    """(params as numpy, x, h0, segment ids, y, carry) of ``layer`` in float64."""
    x = jax.random.normal(jax.random.key(1), (BATCH, LENGTH, H), jnp.float64)
    params = unbox(layer.init(jax.random.key(0), x[:, :2]))["params"]
    params = jax.tree.map(lambda v: v.astype(jnp.float64), params)
    h0 = layer.apply({"params": params}, BATCH, method="init_carry")
    h0 = h0 + jax.random.normal(jax.random.key(2), h0.shape, jnp.float64)
    ids = jnp.asarray(SEGMENTS) if with_segments else None
    y, carry = layer.apply({"params": params}, x, h0, segment_ids=ids)
    return jax.tree.map(np.asarray, params), np.asarray(x), np.asarray(h0), y, carry


def reference_loop(update, readout, x: np.ndarray, h0: np.ndarray):
    """Plain loop over time: h = update(h, x_t) after clearing h where SEGMENTS changes."""
    h, ys = h0, []
    for t in range(x.shape[1]):
        if t > 0:
            h = np.where((SEGMENTS[:, t] != SEGMENTS[:, t - 1])[:, None], 0, h)
        h = update(h, x[:, t])
        ys.append(readout(h, x[:, t]))
    return np.stack(ys, axis=1), h


@pytest.mark.parametrize("act", ["identity", "tanh", "relu"])
def test_dense_rnn_matches_its_equations(act):
    with jax.enable_x64(True):
        layer = DenseRNN(d_model=H, d_state=N, activation=act, a_init="orthogonal")
        p, x, h0, _, _ = run_f64(layer)
        # b starts at zero: a random one, so that a wrong sign or a missing bias shows
        p["b"] = np.asarray(jax.random.normal(jax.random.key(5), (N,), jnp.float64))
        y, carry = layer.apply({"params": p}, x, h0, segment_ids=jnp.asarray(SEGMENTS))
        ref_y, ref_h = reference_loop(
            lambda h, x_t: ACT[act](h @ p["A"].T + x_t @ p["B"].T + p["b"]),
            lambda h, x_t: h @ p["C"].T + p["D"] * x_t, x, h0)
    np.testing.assert_allclose(y, ref_y, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(carry, ref_h, rtol=1e-10, atol=1e-10)


def test_gru_matches_its_equations():
    with jax.enable_x64(True):
        layer = GRU(d_model=H, d_state=N)
        p, x, h0, y, carry = run_f64(layer)
        # random biases, so that every term of the equations is exercised
        keys = jax.random.split(jax.random.key(5), 2)
        p["b_x"] = np.asarray(jax.random.normal(keys[0], (3 * N,), jnp.float64))
        p["b_hn"] = np.asarray(jax.random.normal(keys[1], (N,), jnp.float64))
        y, carry = layer.apply({"params": p}, x, h0, segment_ids=jnp.asarray(SEGMENTS))
    w_r, w_z, w_n = np.split(p["w_x"], 3, axis=1)
    u_r, u_z, u_n = np.split(p["w_h"], 3, axis=1)
    b_r, b_z, b_n = np.split(p["b_x"], 3)

    def update(h, x_t):
        r = sigmoid(x_t @ w_r + b_r + h @ u_r)
        z = sigmoid(x_t @ w_z + b_z + h @ u_z)
        n = np.tanh(x_t @ w_n + b_n + r * (h @ u_n + p["b_hn"]))
        return (1 - z) * n + z * h

    ref_y, ref_h = reference_loop(update, lambda h, _: h @ p["w_out"], x, h0)
    np.testing.assert_allclose(y, ref_y, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(carry, ref_h, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("method", ["sequential", "chunked"])
def test_diag_rnn_matches_its_equations(method):
    with jax.enable_x64(True):
        p, x, h0, y, carry = run_f64(DiagRNN(d_model=H, d_state=N, scan_method=method,
                                             chunk_size=4))
    lam = p["lam"][0] + 1j * p["lam"][1]
    b, c = p["B_re"] + 1j * p["B_im"], p["C_re"] + 1j * p["C_im"]
    ref_y, ref_h = reference_loop(lambda h, x_t: lam * h + x_t @ b.T,
                                  lambda h, x_t: (h @ c.T).real + p["D"] * x_t, x, h0)
    np.testing.assert_allclose(y, ref_y, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(carry, ref_h, rtol=1e-10, atol=1e-10)


def test_rescaled_glorot_puts_the_spectral_edge_below_one_where_glorot_is_above():
    n, keys = 170, jax.random.split(jax.random.key(7), 8)
    init = jax.jit(jax.vmap(recurrent_matrix_init, in_axes=(0, None, None)), static_argnums=(1, 2))
    glorot, rescaled = np.asarray(init(keys, n, "glorot")), np.asarray(init(keys, n,
                                                                           "rescaled_glorot"))
    # the same matrices (same keys), divided by s_n
    np.testing.assert_allclose(rescaled, glorot / rescaled_glorot_scale(n, 0.9), rtol=1e-6)
    radii = np.abs(np.linalg.eigvals(glorot)).max(axis=1)
    # Glorot's edge sits above one at this width (Rider: 1 + sqrt(gamma_n / 4n) + Gumbel)
    assert radii.mean() > 1.0 and (radii > 1).mean() >= 0.5
    rescaled_radii = radii / rescaled_glorot_scale(n, 0.9)
    assert (rescaled_radii <= 1).mean() >= 0.9 and rescaled_radii.max() < 1.05


def test_fixed_sets_the_spectral_radius_at_any_width_and_keys_seed_everything():
    key = jax.random.key(3)
    for n in (4, 37):
        a = recurrent_matrix_init(key, n, "fixed", radius=0.9)
        assert abs(float(spectral_radius(a)) - 0.9) < 1e-4
        lam = eigenvalue_init(key, n, "fixed", radius=0.8)
        assert lam.shape == (n,) and abs(float(jnp.abs(lam).max()) - 0.8) < 1e-5
    np.testing.assert_array_equal(recurrent_matrix_init(key, 9, "glorot"),
                                  recurrent_matrix_init(key, 9, "glorot"))
    assert not np.allclose(recurrent_matrix_init(key, 9, "glorot"),
                           recurrent_matrix_init(jax.random.key(4), 9, "glorot"))
    q = recurrent_matrix_init(key, 9, "orthogonal")
    np.testing.assert_allclose(q @ q.T, np.eye(9), atol=1e-5)


def test_rescaled_eigenvalues_are_the_glorot_ones_divided_by_the_constant():
    key, n = jax.random.key(9), 180
    np.testing.assert_allclose(eigenvalue_init(key, n, "rescaled_glorot"),
                               eigenvalue_init(key, n, "glorot") / rescaled_glorot_scale(n, 0.9),
                               rtol=1e-5)


@pytest.mark.parametrize("n", [2, 100, 163])
def test_rescaled_glorot_is_refused_below_width_164(n):
    with pytest.raises(ValueError, match=rf"undefined for width {n}.*'fixed'"):
        rescaled_glorot_scale(n, 0.9)
    for mixer, sub in [("dense_rnn", DenseRNNConfig(a_init="rescaled_glorot")),
                       ("diag_rnn", DiagRNNConfig(eig_init="rescaled_glorot"))]:
        with pytest.raises(ConfigError, match=rf"^model.d_state={n}: expected >= 164 with "
                                              rf"model.{mixer}"):
            ModelConfig(mixer=mixer, d_state=n, **{mixer: sub})
    ModelConfig(mixer="dense_rnn", d_state=164, dense_rnn=DenseRNNConfig(a_init="rescaled_glorot"))
    assert math.isfinite(rescaled_glorot_scale(164, 0.9))


@pytest.mark.parametrize(("make", "field"), [
    (lambda: DenseRNNConfig(activation="gelu"), "model.dense_rnn.activation"),
    (lambda: DenseRNNConfig(a_init="he"), "model.dense_rnn.a_init"),
    (lambda: DenseRNNConfig(radius=0.0), "model.dense_rnn.radius"),
    (lambda: DiagRNNConfig(eig_init="orthogonal"), "model.diag_rnn.eig_init"),
    (lambda: DiagRNNConfig(quantile=1.0), "model.diag_rnn.quantile")])
def test_bad_rnn_config_names_the_field(make, field):
    with pytest.raises(ConfigError, match=rf"^{field}="):
        make()


def test_parameter_roles():
    x = jnp.zeros((1, 2, H))
    roles = {name: abstract_params(layer, x)[1] for name, layer in [
        ("dense", DenseRNN(d_model=H, d_state=N)), ("gru", GRU(d_model=H, d_state=N)),
        ("diag", DiagRNN(d_model=H, d_state=N))]}
    assert roles["dense"] == {"A": "recurrent", "B": "recurrent", "b": "recurrent",
                              "C": "weight", "D": "weight"}
    assert roles["gru"] == {"w_x": "recurrent", "b_x": "recurrent", "w_h": "recurrent",
                            "b_hn": "recurrent", "w_out": "weight"}
    assert roles["diag"] == {"lam": "recurrent", "B_re": "recurrent", "B_im": "recurrent",
                             "C_re": "weight", "C_im": "weight", "D": "weight"}
