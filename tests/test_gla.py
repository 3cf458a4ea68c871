"""gated_linear_attention against a plain Python loop: every method, values and gradients, with
h0, resets, complex and real decays, decays near 0 and near 1; padding; bad arguments."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glrnn.scan import gated_linear_attention, transition
from glrnn.scan.matrix import CUSTOM_FROM_CHUNKS, GRADS

BATCH, LENGTH, HEADS, WIDTH_K, WIDTH_V = 2, 9, 2, 3, 2
GLA = jax.jit(gated_linear_attention, static_argnames=("method", "chunk_size", "grad"))


def loop_gla(q, k, v, log_a, phase, h0, reset):
    """H_t = diag(a_t) H_{t−1} + k_t v_tᵀ, y_t = Re(q_tᵀ H_t), one step at a time; where
    ``reset[:, t]`` the state is cleared first."""
    a = transition(log_a, phase)
    h = h0
    ys = []
    for t in range(q.shape[1]):
        a_t = a[:, t] if reset is None else jnp.where(reset[:, t, None, None], 0, a[:, t])
        h = a_t[..., None] * h + k[:, t, :, :, None] * v[:, t, :, None, :]
        ys.append(jnp.einsum("bhk,bhkv->bhv", q[:, t], jnp.real(h)))
    return jnp.stack(ys, axis=1), h


def make_inputs(seed: int, *, complex_: bool, decays: str = "mixed", length: int = LENGTH):
    """q, k, v, log_a, phase (None for real decays), h0, reset, float64. ``decays``: "mixed"
    puts |a| in [0.3, 0.99]; "extreme" half the channels within 1e-7 of 1, the others below
    1e-26 (products that underflow)."""
    ks = jax.random.split(jax.random.PRNGKey(seed), 9)
    shape_k = (BATCH, length, HEADS, WIDTH_K)
    q, k = jax.random.normal(ks[0], shape_k), jax.random.normal(ks[1], shape_k)
    v = jax.random.normal(ks[2], (BATCH, length, HEADS, WIDTH_V))
    u = jax.random.uniform(ks[3], shape_k)
    if decays == "mixed":
        log_a = jnp.log(0.3 + 0.69 * u)
    else:
        log_a = jnp.where(jax.random.uniform(ks[8], shape_k) < 0.5, -1e-7 * u, -60.0 - 40.0 * u)
    phase = jax.random.uniform(ks[4], shape_k, minval=-3.0, maxval=3.0) if complex_ else None
    h0 = jax.random.normal(ks[5], (BATCH, HEADS, WIDTH_K, WIDTH_V))
    if complex_:
        h0 = h0 + 1j * jax.random.normal(ks[6], h0.shape)
    reset = jax.random.uniform(ks[7], (BATCH, length)) < 0.2
    return q, k, v, log_a, phase, h0, reset


def loss(fn, q, k, v, log_a, phase, h0, weights):
    """A loss that touches every output and the final state (both parts)."""
    y, h = fn(q, k, v, log_a, phase, h0)
    return jnp.sum(y * weights) + jnp.sum(jnp.real(h) ** 2) + jnp.sum(jnp.imag(h) * 0.5)


# name -> (complex decays, h0 and resets, decays)
CASES = {"complex-extreme-h0-resets": (True, True, "extreme"),
         "real-h0-resets": (False, True, "mixed"), "complex-plain": (True, False, "mixed")}


def evaluate(fn, inputs, weights):
    """(y, h, gradients with respect to every input that has one)."""
    argnums = (0, 1, 2, 3, 5) if inputs[4] is None else (0, 1, 2, 3, 4, 5)
    y, h = jax.jit(fn)(*inputs)
    grads = jax.jit(jax.grad(functools.partial(loss, fn), argnums=argnums))(*inputs, weights)
    return y, h, grads


@functools.cache
def reference(case: str):
    """The case's inputs, reset, loss weights and the loop's (y, h, gradients), float64."""
    complex_, with_state, decays = CASES[case]
    with jax.enable_x64(True):
        q, k, v, log_a, phase, h0, reset = make_inputs(0, complex_=complex_, decays=decays)
        if not with_state:
            h0, reset = jnp.zeros_like(h0), None
        inputs = (q, k, v, log_a, phase, h0)
        weights = jax.random.normal(jax.random.PRNGKey(9), (*q.shape[:3], WIDTH_V))
        return inputs, reset, weights, evaluate(functools.partial(loop_gla, reset=reset),
                                                inputs, weights)


# (method, grad); auto: chunked
METHOD_GRADS = [("sequential", "autodiff"), ("associative", "autodiff"), ("chunked", "autodiff"),
                ("chunked", "custom")]


@pytest.mark.parametrize(("method", "grad"), METHOD_GRADS)
@pytest.mark.parametrize("case", CASES)
def test_values_and_gradients_match_the_loop(method, grad, case):
    """LENGTH 9 with chunks of 4: the last chunk is padded. "extreme": decays within 1e-7 of
    1 and products that underflow, exact in float64 (no division by a vanishing product).
    Gradients with respect to q, k, v, log_a, the phase and h0, by autodiff and by the chunked
    adjoint (grad="custom")."""
    inputs, reset, weights, expected = reference(case)
    with jax.enable_x64(True):
        fast = functools.partial(gated_linear_attention, reset=reset, method=method,
                                 chunk_size=4, grad=grad)
        got = evaluate(fast, inputs, weights)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("chunk_size", [1, 8, 256])
def test_every_chunk_size_gives_the_same_values(chunk_size):
    """Chunks of 1 (no split inside), of 8 (which 13 does not divide), and longer than the
    length (cut to the power of two above it); chunks of 4: the test above."""
    with jax.enable_x64(True):
        q, k, v, log_a, phase, h0, reset = make_inputs(2, complex_=True, length=13)
        y, h = GLA(q, k, v, log_a, phase, h0, reset=reset, method="chunked",
                   chunk_size=chunk_size)
        y_ref, h_ref = loop_gla(q, k, v, log_a, phase, h0, reset)
        np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(h, h_ref, rtol=1e-10, atol=1e-10)


def test_float32_stays_finite_and_close_when_decays_vanish():
    """float32, 64 steps with |a| ≈ e^{-50}..e^{-100}: e^{-R} alone would overflow. The chunked
    form by both gradients against the sequential one."""
    q, k, v, log_a, phase, h0, reset = make_inputs(3, complex_=True, length=64)
    log_a = log_a * 0 - 50.0 - 50.0 * jnp.abs(jnp.sin(q))
    inputs = (q, k, v, log_a, phase, h0.astype(jnp.complex64))

    def total(log_a, method, grad="autodiff"):
        y, h = GLA(*inputs[:3], log_a, *inputs[4:], reset=reset, method=method, chunk_size=32,
                   grad=grad)
        return jnp.sum(y) + jnp.sum(jnp.abs(h))

    for fn in (total, jax.grad(total)):
        want = fn(log_a, "sequential")
        for grad in GRADS:
            got = fn(log_a, "chunked", grad)
            assert np.all(np.isfinite(got))
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"method": "fft"}, "scan method 'fft': expected one of"),
    ({"chunk_size": 48}, "chunk_size=48: expected a power of two"),
    ({"chunk_size": 0}, "chunk_size=0: expected a power of two"),
    ({"grad": "numeric"}, "grad 'numeric': expected one of auto, autodiff, custom"),
    ({"method": "sequential", "grad": "custom"}, "grad 'custom' with method 'sequential'"),
])
def test_bad_arguments_are_refused(kwargs, match):
    q, k, v, log_a, phase, _, _ = make_inputs(5, complex_=True)
    with pytest.raises(ValueError, match=match):
        gated_linear_attention(q, k, v, log_a, phase, **kwargs)
    with pytest.raises(ValueError, match=r"k.shape=\(2, 5, 2, 3\): expected q's shape"):
        gated_linear_attention(q, k[:, :5], v, log_a, phase)


def test_auto_grad_takes_the_adjoint_from_its_chunk_count_on():
    """grad="auto" traces the gradient grad="custom" traces from CUSTOM_FROM_CHUNKS chunks on
    and grad="autodiff"'s below (chunks of 2; tracing only, nothing is compiled)."""
    x = jnp.ones((1, 2 * CUSTOM_FROM_CHUNKS, 1, 2))

    def program(length: int, grad: str) -> str:
        def total(q):
            return gated_linear_attention(q, x[:, :length], x[:, :length], -0.1 * x[:, :length],
                                          chunk_size=2, grad=grad)[0].sum()
        return str(jax.make_jaxpr(jax.grad(total))(x[:, :length]))

    for length, picked, other in ((2 * CUSTOM_FROM_CHUNKS, "custom", "autodiff"),
                                  (2 * CUSTOM_FROM_CHUNKS - 2, "autodiff", "custom")):
        assert program(length, "auto") == program(length, picked) != program(length, other)
