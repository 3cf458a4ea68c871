"""A short causal depthwise convolution in front of a mixer (Mamba, Griffin: width 4).

    u_t = bias + Σ_{j=0}^{w−1} kernel_j ⊙ x_{t−j}               kernel [w, D], bias [D]

Its carry is the last w − 1 inputs [B, w − 1, D] (oldest first; float32), so a sequence cut
anywhere and continued with the carry gives what the whole gives. Packed documents stay apart:
a tap that would reach before the position where the segment changed reads zero, and the carry
keeps zeros in place of the inputs of an earlier segment, so the next call (which continues the
last segment) sees none of them.

``Convolved`` wraps any mixer: y = mixer(conv(x)); its carry is (conv carry, mixer carry).
Parameter roles: kernel ``weight`` (normal with std 1/√w, so that u keeps x's scale), bias
``bias``.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from glrnn.params import with_role
from glrnn.scan import segment_resets


def segment_starts(reset: jax.Array, before: int) -> jax.Array:
    """int [B, L]: the index of the last reset at or before each position, or −``before`` where
    there is none (the carried inputs, at −before .. −1, belong to the same segment)."""
    index = jnp.arange(reset.shape[1])
    return jax.lax.cummax(jnp.where(reset, index, -before), axis=1)


def causal_conv(x: jax.Array, kernel: jax.Array, bias: jax.Array, previous: jax.Array,
                reset: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """x [B, L, D], kernel [w, D], bias [D], previous [B, w − 1, D] (the inputs before x),
    reset bool [B, L] or None -> (u [B, L, D] in x's dtype, the new previous [B, w − 1, D])."""
    width, length = kernel.shape[0], x.shape[1]
    xs = jnp.concatenate([previous.astype(x.dtype), x], axis=1)  # positions −(w−1) .. L−1
    kernel = kernel.astype(x.dtype)
    start = None if reset is None else segment_starts(reset, width - 1)
    u = jnp.broadcast_to(bias.astype(x.dtype), x.shape)
    for j in range(width):  # tap j reads x_{t−j}
        tap = xs[:, width - 1 - j:width - 1 - j + length]
        if start is not None:
            tap = jnp.where((jnp.arange(length) - j >= start)[..., None], tap, 0)
        u = u + kernel[j] * tap
    kept = xs[:, xs.shape[1] - (width - 1):]
    if start is not None:  # inputs before the last segment's start are not carried
        position = jnp.arange(length - (width - 1), length)
        kept = jnp.where((position[None] >= start[:, -1:])[..., None], kept, 0)
    return u, kept.astype(jnp.float32)


class ShortConv(nn.Module):
    """Depthwise causal convolution: [batch, length, d_model] -> same; carry [batch, w − 1,
    d_model] float32."""

    d_model: int
    width: int = 4

    def setup(self) -> None:
        if self.width < 1:
            raise ValueError(f"model.conv_width={self.width}: expected a positive integer")
        std = 1 / math.sqrt(self.width)
        self.kernel = self.param(
            "kernel", with_role(lambda key, shape: std * jax.random.normal(key, shape), "weight"),
            (self.width, self.d_model))
        self.bias = self.param("bias", with_role(nn.initializers.zeros_init(), "bias"),
                               (self.d_model,))

    def init_carry(self, batch_size: int) -> jax.Array:
        return jnp.zeros((batch_size, self.width - 1, self.d_model), jnp.float32)

    def __call__(self, x: jax.Array, carry: jax.Array | None = None, *,
                 segment_ids: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """x [B, L, D], carry [B, w − 1, D] or None, segment_ids int [B, L] or None."""
        if carry is None:
            carry = self.init_carry(x.shape[0])
        reset = None if segment_ids is None else segment_resets(segment_ids)
        return causal_conv(x, self.kernel, self.bias, carry, reset)

    def step(self, x_t: jax.Array, carry: jax.Array) -> tuple[jax.Array, jax.Array]:
        """x_t [B, D], carry [B, w − 1, D] -> (u_t [B, D], carry)."""
        u, carry = causal_conv(x_t[:, None], self.kernel, self.bias, carry)
        return u[:, 0], carry


class Convolved(nn.Module):
    """``mixer`` behind a short convolution: y = mixer(conv(x)); carry (conv's, mixer's)."""

    mixer: nn.Module
    d_model: int
    width: int = 4

    def setup(self) -> None:
        self.conv = ShortConv(self.d_model, self.width)

    def init_carry(self, batch_size: int) -> tuple[jax.Array, Any]:
        return self.conv.init_carry(batch_size), self.mixer.init_carry(batch_size)

    def __call__(self, x: jax.Array, carry: tuple[jax.Array, Any] | None = None, *,
                 segment_ids: jax.Array | None = None) -> tuple[jax.Array, tuple[jax.Array, Any]]:
        conv_carry, mixer_carry = (None, None) if carry is None else carry
        u, conv_carry = self.conv(x, conv_carry, segment_ids=segment_ids)
        y, mixer_carry = self.mixer(u, mixer_carry, segment_ids=segment_ids)
        return y, (conv_carry, mixer_carry)

    def step(self, x_t: jax.Array, carry: tuple[jax.Array, Any]) -> tuple[jax.Array, Any]:
        u, conv_carry = self.conv.step(x_t, carry[0])
        y, mixer_carry = self.mixer.step(u, carry[1])
        return y, (conv_carry, mixer_carry)
