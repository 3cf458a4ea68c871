"""Initialisations of the recurrence of linear RNNs (Bar, Seleznova, Alexander, Kutyniok, Giryes
2025, "Revisiting Glorot Initialization for Long-Range Linear Recurrences").

A Glorot matrix A ∈ R^{n×n} (entries N(0, 1/n)) has its bulk spectrum in the unit disk, but its
spectral radius ρ(A) sits *above* one with high probability at finite n: by Rider's theorem on
Ginibre matrices (Rider 2003; Rider & Sinclair 2014 for real entries)

    ρ(A) ≈ 1 + √(γ_n / 4n) + G / √(4 n γ_n),     γ_n = log(n / 2π) − 2 log log n,

with G a standard Gumbel variable. A linear recurrence h_t = A h_{t−1} + B x_t then grows like
ρ(A)^t and explodes after t = O(√n) steps. The paper's remedy divides A by a dimension-aware
constant that puts the spectral edge just below one:

    rescaled Glorot:  A = W / s_n,   s_n = 1 + √(γ_n / 4n) + g_p / √(4 n γ_n),   W ~ Glorot,

where g_p = −log(−log p) is the Gumbel quantile at probability ``quantile`` = p, so that
P(ρ(A) ≤ 1) → p. This constant is our reading of the paper's calibration through Rider's limit
law (the paper's own text was not reachable from here; see docs/ARCHITECTURE.md).

**Small widths**: γ_n ≤ 0 for n ≤ 163 (n / 2π ≤ (log n)²), where √γ_n is undefined and the limit
law says nothing. :func:`rescaled_glorot_scale` refuses such widths with a ``ValueError``
naming the width and the alternatives (``fixed`` works at every width); the configuration
refuses them at start-up (``ConfigError`` on ``model.d_state``).

**Fixed**: A = r · W / ρ(W): the same Glorot matrix divided by its *own* spectral radius, so that
ρ(A) = r exactly (``radius``, default 0.99) at any width: the deterministic counterpart of the
rescaling (computing ρ(W) costs one eigen-decomposition at initialisation).

Diagonal (complex) RNNs take the *eigenvalues* of such a matrix as their λ: a complex Ginibre
matrix (entries CN(0, 1/n), whose spectral radius follows the same law) rescaled the same way.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from glrnn.config import DENSE_INITS, DIAGONAL_INITS, MIN_RESCALED_WIDTH


def rider_gamma(n: int) -> float:
    """γ_n = log(n / 2π) − 2 log log n (positive only for n >= 164)."""
    return math.log(n / (2 * math.pi)) - 2 * math.log(math.log(n))


def gumbel_quantile(p: float) -> float:
    """g with P(G <= g) = p for a standard Gumbel G: −log(−log p)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"quantile={p!r}: expected 0 < quantile < 1")
    return -math.log(-math.log(p))


def rescaled_glorot_scale(n: int, quantile: float) -> float:
    """s_n = 1 + √(γ_n / 4n) + g_p / √(4 n γ_n): the divisor of the rescaled Glorot matrix."""
    if n < MIN_RESCALED_WIDTH:
        raise ValueError(
            f"rescaled_glorot is undefined for width {n}: gamma_n = log(n/2pi) - 2 log log n "
            f"= {rider_gamma(n) if n > 1 else float('nan'):.3f} <= 0 below "
            f"{MIN_RESCALED_WIDTH}; use 'fixed' (spectral radius set exactly) or 'glorot'")
    gamma = rider_gamma(n)
    return 1 + math.sqrt(gamma / (4 * n)) + gumbel_quantile(quantile) / math.sqrt(4 * n * gamma)


def spectral_radius(a: jax.Array) -> jax.Array:
    """max |eig(a)| of a square matrix [n, n] (an eigen-decomposition: CPU in JAX)."""
    return jnp.abs(jnp.linalg.eigvals(a)).max()


def recurrent_matrix_init(key: jax.Array, n: int, kind: str, radius: float = 0.99,
                          quantile: float = 0.9) -> jax.Array:
    """A [n, n] float32 by ``kind``: glorot (N(0, 1/n)), orthogonal, rescaled_glorot or fixed
    (see the module docstring)."""
    if kind == "orthogonal":
        return jax.nn.initializers.orthogonal()(key, (n, n), jnp.float32)
    w = jax.random.normal(key, (n, n), jnp.float32) / math.sqrt(n)
    if kind == "glorot":
        return w
    if kind == "rescaled_glorot":
        return w / rescaled_glorot_scale(n, quantile)
    if kind == "fixed":
        return radius * w / spectral_radius(w)
    raise ValueError(f"recurrent init {kind!r}: expected one of {', '.join(DENSE_INITS)}")


def eigenvalue_init(key: jax.Array, n: int, kind: str, radius: float = 0.99,
                    quantile: float = 0.9) -> jax.Array:
    """λ [n] complex64: the eigenvalues of a complex Ginibre matrix (entries CN(0, 1/n)), as they
    are (glorot), divided by s_n (rescaled_glorot), or scaled to the spectral radius ``radius``
    (fixed)."""
    if kind not in DIAGONAL_INITS:
        raise ValueError(f"eigenvalue init {kind!r}: expected one of {', '.join(DIAGONAL_INITS)}")
    re, im = jax.random.normal(key, (2, n, n), jnp.float32) / math.sqrt(2 * n)
    lam = jnp.linalg.eigvals(jax.lax.complex(re, im)).astype(jnp.complex64)
    if kind == "rescaled_glorot":
        return lam / rescaled_glorot_scale(n, quantile)
    if kind == "fixed":
        return radius * lam / jnp.abs(lam).max()
    return lam
