"""The LRU against the paper: initial distributions, and outputs of a straightforward
implementation of its equations written here (complex matmuls, a Python loop over time)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.core.meta import unbox

from glrnn.config import ConfigError, LRUConfig
from glrnn.mixers.lru import LRU
from glrnn.params import abstract_params


def init_params(layer: LRU, length: int = 4) -> dict:
    return unbox(layer.init(jax.random.PRNGKey(0), jnp.zeros((1, length, layer.d_model))))[
        "params"]


def test_initial_eigenvalues_follow_the_ring_and_phase_distributions():
    r_min, r_max, max_phase, n = 0.4, 0.95, 1.3, 20000
    p = init_params(LRU(d_model=4, d_state=n, r_min=r_min, r_max=r_max, max_phase=max_phase))
    lam = np.exp(-np.exp(p["nu_log"]) + 1j * np.exp(p["theta_log"]))
    radius, phase = np.abs(lam), np.angle(lam) % (2 * np.pi)
    assert radius.min() >= r_min - 1e-6 and radius.max() <= r_max + 1e-6
    assert phase.min() >= 0 and phase.max() <= max_phase + 1e-6
    # uniform in area: |λ|² is uniform on [r_min², r_max²]; the phase is uniform on [0, max_phase]
    grid = np.linspace(0, 1, 11)[1:-1]
    area = (radius**2 - r_min**2) / (r_max**2 - r_min**2)
    np.testing.assert_allclose(np.quantile(area, grid), grid, atol=0.02)
    np.testing.assert_allclose(np.quantile(phase / max_phase, grid), grid, atol=0.02)
    # not uniform in radius: the mean radius is the area-weighted one
    expected_mean = 2 / 3 * (r_max**3 - r_min**3) / (r_max**2 - r_min**2)
    assert abs(radius.mean() - expected_mean) < 0.005
    # γ normalises: γ = √(1 − |λ|²)
    np.testing.assert_allclose(np.exp(p["gamma_log"]), np.sqrt(1 - radius**2), rtol=1e-4)


def test_initial_matrices_have_the_paper_scales():
    h, n = 64, 128
    p = init_params(LRU(d_model=h, d_state=n))
    assert p["B_re"].shape == (n, h) and p["C_re"].shape == (h, n) and p["D"].shape == (h,)
    for name, std in [("B_re", 1 / math.sqrt(2 * h)), ("B_im", 1 / math.sqrt(2 * h)),
                      ("C_re", 1 / math.sqrt(n)), ("C_im", 1 / math.sqrt(n)), ("D", 1.0)]:
        assert abs(float(np.std(p[name])) / std - 1) < (0.25 if name == "D" else 0.05), name


def paper_lru(p: dict, x: np.ndarray, h0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The paper's equations, literally: x [B, L, H] -> y [B, L, H], last state [B, N]."""
    lam = np.exp(-np.exp(p["nu_log"]) + 1j * np.exp(p["theta_log"]))
    b = (p["B_re"] + 1j * p["B_im"]) * np.exp(p["gamma_log"])[:, None]
    c = p["C_re"] + 1j * p["C_im"]
    h = h0
    ys = []
    for t in range(x.shape[1]):
        h = lam * h + x[:, t] @ b.T
        ys.append((h @ c.T).real + p["D"] * x[:, t])
    return np.stack(ys, axis=1), h


@pytest.mark.parametrize("method", ["sequential", "associative", "chunked"])
def test_matches_the_papers_equations(method):
    with jax.enable_x64(True):
        layer = LRU(d_model=6, d_state=10, r_min=0.5, r_max=0.99, max_phase=2.0,
                    scan_method=method, chunk_size=4)
        params = jax.tree.map(lambda v: v.astype(jnp.float64),
                              init_params(layer))
        x = jax.random.normal(jax.random.PRNGKey(1), (2, 11, 6), jnp.float64)
        h0 = (jax.random.normal(jax.random.PRNGKey(2), (2, 10), jnp.float64)
              + 1j * jax.random.normal(jax.random.PRNGKey(3), (2, 10), jnp.float64))
        y, carry = layer.apply({"params": params}, x, h0)
        ref_y, ref_h = paper_lru(jax.tree.map(np.asarray, params), np.asarray(x), np.asarray(h0))
        np.testing.assert_allclose(y, ref_y, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(carry, ref_h, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"r_min": 0.9, "r_max": 0.9}, "model.lru.r_min"),
     ({"r_min": 0.5, "r_max": 1.0}, "model.lru.r_max"),
     ({"max_phase": 0.0}, "model.lru.max_phase"),
     ({"max_phase": 7.0}, "model.lru.max_phase")])
def test_out_of_range_ring_is_refused(kwargs, field):
    with pytest.raises(ConfigError, match=rf"^{field}="):
        LRUConfig(**kwargs)


def test_parameter_roles():
    _, roles = abstract_params(LRU(d_model=4, d_state=3), jnp.zeros((1, 2, 4)))
    assert roles == {"nu_log": "recurrent", "theta_log": "recurrent", "gamma_log": "recurrent",
                     "B_re": "recurrent", "B_im": "recurrent", "C_re": "weight",
                     "C_im": "weight", "D": "weight"}
