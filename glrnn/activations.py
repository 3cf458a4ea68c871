"""Activation functions by the names that configs use (``glrnn.config.ACTIVATIONS``)."""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

Activation = Callable[[jax.Array], jax.Array]


def identity(x: jax.Array) -> jax.Array:
    return x


ACTIVATIONS: dict[str, Activation] = {
    "identity": identity,
    "tanh": jnp.tanh,
    "gelu": nn.gelu,
    "silu": nn.silu,
    "relu": nn.relu,
    "sigmoid": nn.sigmoid,
}


def activation(name: str) -> Activation:
    """The elementwise function called ``name``; ``ValueError`` naming the choices otherwise."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation {name!r}: expected one of {', '.join(sorted(ACTIVATIONS))}")
    return ACTIVATIONS[name]
