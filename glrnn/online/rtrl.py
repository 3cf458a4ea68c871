"""The forward-sensitivity math of the online rules, as pure functions of arrays.

For one layer with state h_t ∈ R^N or C^N and a parameter p whose entries each act on a single
channel n(i) within one step (glrnn/online/cells.py), the sensitivity E_t[i] = ∂h_t[n(i)]/∂p[i]
obeys

    E_t = J_t[n(·)] ⊙ E_{t−1} + I_t,        I_t[i] = ∂h_t[n(i)]/∂p[i] with h_{t−1} held fixed,

where J_t is the diagonal of ∂h_t/∂h_{t−1} (the whole Jacobian for diagonal recurrences: exact
RTRL; its diagonal only for dense ones: SnAp-1). The loss of step t then reaches p through
dl_t/dp[i] = Re(δ_t[n(i)] · E_t[i]), δ_t = ∂l_t/∂h_t from spatial backpropagation, in JAX's
convention for complex cotangents (the transpose of the linear map: no conjugate). Since the
spatial gradient at step t already holds Re(δ_t · I_t), a rule adds only Re(δ_t · J_t ⊙ E_{t−1}).

Shapes: B examples, N channels; every sensitivity is [B, *p.shape] in the state's dtype.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp

Tree = dict[str, jax.Array]
Layout = Mapping[str, tuple[int, int]]


def expand(v: jax.Array, shape: tuple[int, ...], axis: int, tiles: int) -> jax.Array:
    """v [B, N] placed on ``axis`` of a parameter of ``shape`` whose entries along it are
    ``tiles`` blocks of N channels -> [B, 1, .., N·tiles, .., 1] (broadcasts to [B, *shape])."""
    v = jnp.tile(v, (1, tiles))
    return v.reshape(v.shape[:1] + tuple(v.shape[1] if k == axis else 1
                                         for k in range(len(shape))))


def propagate(traces: Tree, jac: jax.Array, layout: Layout) -> Tree:
    """J_t ⊙ E_{t−1}: traces {name: [B, *shape]}, jac [B, N] -> same as traces."""
    return {name: expand(jac, e.shape[1:], *layout[name]) * e for name, e in traces.items()}


def credit(delta: jax.Array, traces: Tree, layout: Layout) -> Tree:
    """Σ_b Re(δ[b, n(i)] · E[b, i]): delta [B, N], traces {name: [B, *shape]} -> {name: shape}
    (real)."""
    return {name: jnp.real(expand(delta, e.shape[1:], *layout[name]) * e).sum(axis=0)
            for name, e in traces.items()}


def immediate_jacobian(transition: Callable[[Tree, jax.Array, jax.Array], jax.Array],
                       theta: Tree, h_prev: jax.Array, x: jax.Array) -> Tree:
    """I_t: ∂h_t[n(i)]/∂θ[i] with h_{t−1} fixed, for each example: ``transition(θ, h_prev
    [B, N], x [B, H]) -> h [B, N]``, θ {name: shape} -> {name: [B, *shape]}.

    Each entry of θ acts on one channel, so the gradient of Σ_n h_t[n] with respect to θ[i] is
    ∂h_t[n(i)]/∂θ[i]: one reverse pass per example. For a complex state its pullback is read
    twice: with cotangent 1 it gives Re ∂h/∂θ, with i it gives −Im ∂h/∂θ (JAX's convention)."""

    def one(h: jax.Array, xb: jax.Array) -> Tree:
        out, pullback = jax.vjp(lambda th: transition(th, h[None], xb[None]).sum(), theta)
        unit = jnp.ones_like(out)
        if not jnp.iscomplexobj(out):
            return pullback(unit)[0]
        re, minus_im = pullback(unit)[0], pullback(1j * unit)[0]
        return {name: jax.lax.complex(re[name], -minus_im[name]) for name in re}

    return jax.vmap(one)(h_prev, x)
