"""linear_scan against a plain Python loop: values and gradients, every method and case."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glrnn.scan import METHODS, linear_scan, segment_resets

BATCH, LENGTH, WIDTH = 2, 13, 3


def loop_scan(a, b, h0, reset=None):
    """h_t = a_t h_{t-1} + b_t by a Python loop over time (axis 1); where ``reset[:, t]``,
    h_t = b_t."""
    h = jnp.zeros_like(b[:, 0]) if h0 is None else h0
    out = []
    for t in range(b.shape[1]):
        h = a[:, t if a.shape[1] > 1 else 0] * h
        if reset is not None:
            h = jnp.where(reset[:, t], 0, h)
        h = h + b[:, t]
        out.append(h)
    return jnp.stack(out, axis=1)


def make_inputs(dtype, invariant: bool, with_h0: bool, seed: int = 0):
    real = jnp.finfo(dtype).dtype  # float32 for complex64, float64 for complex128
    ks = jax.random.split(jax.random.PRNGKey(seed), 7)
    a_len = 1 if invariant else LENGTH
    a = jax.random.uniform(ks[0], (BATCH, a_len, WIDTH), real, 0.6, 0.99)
    b = jax.random.normal(ks[1], (BATCH, LENGTH, WIDTH), real)
    h0 = jax.random.normal(ks[2], (BATCH, WIDTH), real) if with_h0 else None
    if jnp.issubdtype(dtype, jnp.complexfloating):
        a = a * jnp.exp(1j * jax.random.uniform(ks[3], a.shape, real, 0, 3.0))
        b = b + 1j * jax.random.normal(ks[4], b.shape, real)
        if with_h0:
            h0 = h0 + 1j * jax.random.normal(ks[5], h0.shape, real)
    weights = jax.random.normal(ks[6], b.shape, real)  # a loss that touches every state
    return a.astype(dtype), b.astype(dtype), h0 if h0 is None else h0.astype(dtype), weights


def loss(scan_fn, a, b, h0, weights):
    h = scan_fn(a, b, h0)
    return jnp.sum(jnp.real(h) * weights) + jnp.sum(jnp.imag(h) * weights**2)


TOL = {jnp.float32: 2e-5, jnp.complex64: 2e-5, jnp.float64: 1e-11, jnp.complex128: 1e-11}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64, jnp.complex64, jnp.complex128])
@pytest.mark.parametrize("invariant", [False, True], ids=["per_step_a", "invariant_a"])
@pytest.mark.parametrize("with_h0", [False, True], ids=["no_h0", "h0"])
def test_values_and_gradients_match_loop(method, dtype, invariant, with_h0):
    with jax.enable_x64(dtype in (jnp.float64, jnp.complex128)):
        a, b, h0, w = make_inputs(dtype, invariant, with_h0)
        assert a.dtype == dtype

        def fast(a, b, h0):
            return linear_scan(a, b, h0, method=method, chunk_size=4)  # 13 = 3 chunks + 1

        h = jax.jit(fast)(a, b, h0)
        ref = loop_scan(a, b, h0)
        assert h.dtype == ref.dtype and h.shape == ref.shape
        tol = TOL[dtype]
        np.testing.assert_allclose(h, ref, rtol=tol, atol=tol)

        argnums = (0, 1, 2) if with_h0 else (0, 1)
        grads = jax.jit(jax.grad(lambda *x: loss(fast, *x, w), argnums))(a, b, h0)
        ref_grads = jax.grad(lambda *x: loss(loop_scan, *x, w), argnums)(a, b, h0)
        for name, g, r in zip(["a", "b", "h0"], grads, ref_grads, strict=False):
            assert g.shape == r.shape, name
            np.testing.assert_allclose(g, r, rtol=tol * 10, atol=tol * 10, err_msg=name)


# resets at t = 0 (h0 ignored), inside a chunk and at a chunk edge (chunk_size 4), per row
RESETS = np.zeros((BATCH, LENGTH, 1), bool)
RESETS[0, [0, 5, 8], 0] = True
RESETS[1, [3, 4, 12], 0] = True


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [jnp.float64, jnp.complex64])
@pytest.mark.parametrize("invariant", [False, True], ids=["per_step_a", "invariant_a"])
def test_resets_match_loop(method, dtype, invariant):
    with jax.enable_x64(dtype == jnp.float64):
        a, b, h0, w = make_inputs(dtype, invariant, with_h0=True, seed=4)
        reset = jnp.asarray(RESETS)

        def fast(a, b, h0):
            return linear_scan(a, b, h0, reset=reset, method=method, chunk_size=4)

        def ref(a, b, h0):
            return loop_scan(a, b, h0, reset)

        tol = TOL[dtype]
        np.testing.assert_allclose(jax.jit(fast)(a, b, h0), ref(a, b, h0), rtol=tol, atol=tol)
        grads = jax.jit(jax.grad(lambda *x: loss(fast, *x, w), (0, 1, 2)))(a, b, h0)
        ref_grads = jax.grad(lambda *x: loss(ref, *x, w), (0, 1, 2))(a, b, h0)
        for name, g, r in zip(["a", "b", "h0"], grads, ref_grads, strict=True):
            np.testing.assert_allclose(g, r, rtol=tol * 10, atol=tol * 10, err_msg=name)
        # a reset at t = 0 in row 0 makes h0 irrelevant there
        assert not np.any(grads[2][0])


def test_segment_resets_mark_changes_not_the_first_position():
    ids = jnp.array([[3, 3, 4, 4, 4, 7], [1, 2, 2, 2, 2, 2]])
    expected = [[0, 0, 1, 0, 0, 1], [0, 1, 0, 0, 0, 0]]
    np.testing.assert_array_equal(segment_resets(ids), np.array(expected, bool))
    np.testing.assert_array_equal(segment_resets(ids[:, :1]), np.zeros((2, 1), bool))


@pytest.mark.parametrize("chunk_size", [1, 5, 13, 64])
def test_chunked_any_chunk_size(chunk_size):
    a, b, h0, _ = make_inputs(jnp.complex64, invariant=False, with_h0=True, seed=1)
    h = linear_scan(a, b, h0, method="chunked", chunk_size=chunk_size)
    np.testing.assert_allclose(h, loop_scan(a, b, h0), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("method", ["associative", "sequential", "chunked"])
def test_time_axis_argument(method):
    a, b, h0, _ = make_inputs(jnp.float32, invariant=False, with_h0=True, seed=2)
    ref = loop_scan(a, b, h0)
    # time first: [L, B, W]
    h = linear_scan(jnp.swapaxes(a, 0, 1), jnp.swapaxes(b, 0, 1), h0, method=method, axis=0,
                    chunk_size=4)
    np.testing.assert_allclose(jnp.swapaxes(h, 0, 1), ref, rtol=2e-5, atol=2e-5)


def test_carry_continues_the_sequence():
    a, b, h0, _ = make_inputs(jnp.float32, invariant=True, with_h0=True, seed=3)
    whole = linear_scan(a, b, h0, method="chunked", chunk_size=4)
    first = linear_scan(a, b[:, :6], h0, method="chunked", chunk_size=4)
    second = linear_scan(a, b[:, 6:], first[:, -1], method="chunked", chunk_size=4)
    np.testing.assert_allclose(jnp.concatenate([first, second], 1), whole, rtol=1e-6, atol=1e-6)


def test_bad_arguments_are_named():
    a, b, _, _ = make_inputs(jnp.float32, invariant=False, with_h0=False)
    with pytest.raises(ValueError, match="scan method 'fast'"):
        linear_scan(a, b, method="fast")
    with pytest.raises(ValueError, match=r"a.shape\[1\]=5"):
        linear_scan(a[:, :5], b)
    with pytest.raises(ValueError, match="same rank"):
        linear_scan(a[:, 0], b)
    with pytest.raises(ValueError, match="chunk_size=0"):
        linear_scan(a, b, method="chunked", chunk_size=0)
    with pytest.raises(ValueError, match=r"reset.shape=\(2, 5, 1\)"):
        linear_scan(a, b, reset=jnp.zeros((2, 5, 1), bool))
