"""The residual block: a time mixer, then a channel mixer, each pre-normed, with dropout.

    x = x + dropout(mixer(norm1(x)))
    x = x + dropout(channel_mixer(norm2(x)))        (skipped for channel_mixer="none")

The block follows the mixer protocol (``__call__`` / ``step`` / ``init_carry``); its carry is the
time mixer's. The channel mixer acts on each position alone, so both modes share it.

Mixed precision: ``dtype`` is the compute dtype. Norms compute their statistics in float32 and
return ``dtype``; the mixers and channel mixers then run in ``dtype``; the residual stream ``x``
stays float32 (a bf16 update added to it is promoted). Parameter roles: Dense kernels ``weight``,
Dense biases ``bias``, norm scales and offsets ``norm``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from glrnn.config import ModelConfig
from glrnn.mixers import make_mixer
from glrnn.params import with_role

Carry = Any  # a pytree of arrays whose shapes do not depend on the length
Mix = Callable[[jax.Array, Carry], tuple[jax.Array, Carry]]


def dense(features: int, dtype: str, use_bias: bool = True) -> nn.Dense:
    """A Dense layer computing in ``dtype`` with float32 parameters tagged with their roles."""
    return nn.Dense(features, use_bias=use_bias, dtype=jnp.dtype(dtype), param_dtype=jnp.float32,
                    kernel_init=with_role(nn.initializers.lecun_normal(), "weight"),
                    bias_init=with_role(nn.initializers.zeros_init(), "bias"))


def make_norm(name: str, dtype: str) -> nn.Module:
    """LayerNorm or RMSNorm returning ``dtype``; scale (and LayerNorm's offset) role ``norm``."""
    scale = with_role(nn.initializers.ones_init(), "norm")
    if name == "layernorm":
        return nn.LayerNorm(dtype=jnp.dtype(dtype), scale_init=scale,
                            bias_init=with_role(nn.initializers.zeros_init(), "norm"))
    return nn.RMSNorm(dtype=jnp.dtype(dtype), scale_init=scale)


class MLP(nn.Module):
    """Dense(d_model → hidden), GeLU, Dense(hidden → d_model): [..., d_model] -> [..., d_model]."""

    d_model: int
    hidden: int
    dtype: str = "float32"

    def setup(self) -> None:
        self.up = dense(self.hidden, self.dtype)
        self.down = dense(self.d_model, self.dtype)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.down(nn.gelu(self.up(x)))


class GLU(nn.Module):
    """GeLU-gated linear unit: down(gelu(W_g x) ⊙ W_v x); W_g and W_v are one fused matmul.
    [..., d_model] -> [..., d_model]."""

    d_model: int
    hidden: int
    dtype: str = "float32"

    def setup(self) -> None:
        self.up = dense(2 * self.hidden, self.dtype)
        self.down = dense(self.d_model, self.dtype)

    def __call__(self, x: jax.Array) -> jax.Array:
        gate, value = jnp.split(self.up(x), 2, axis=-1)
        return self.down(nn.gelu(gate) * value)


CHANNEL_MIXERS: dict[str, type[nn.Module]] = {"mlp": MLP, "glu": GLU}


def make_channel_mixer(cfg: ModelConfig) -> nn.Module | None:
    """The channel mixer named by ``cfg.channel_mixer`` (None for "none");
    hidden width int(mlp_ratio · d_model)."""
    if cfg.channel_mixer == "none":
        return None
    hidden = max(1, int(cfg.mlp_ratio * cfg.d_model))
    return CHANNEL_MIXERS[cfg.channel_mixer](d_model=cfg.d_model, hidden=hidden,
                                             dtype=cfg.dtype)


class Block(nn.Module):
    """Pre-norm residual block: [batch, length, d_model] -> same; carry: the time mixer's."""

    cfg: ModelConfig

    def setup(self) -> None:
        self.norm1 = make_norm(self.cfg.norm, self.cfg.dtype)
        self.mixer = make_mixer(self.cfg)
        self.channel_mixer = make_channel_mixer(self.cfg)
        if self.channel_mixer is not None:
            self.norm2 = make_norm(self.cfg.norm, self.cfg.dtype)
        self.dropout = nn.Dropout(self.cfg.dropout)

    def init_carry(self, batch_size: int) -> Carry:
        return self.mixer.init_carry(batch_size)

    def __call__(self, x: jax.Array, carry: Carry = None, *, segment_ids: jax.Array | None = None,
                 deterministic: bool = True) -> tuple[jax.Array, Carry]:
        """x [B, L, d_model], carry (the mixer's) or None, segment_ids int [B, L] or None
        -> (y [B, L, d_model], carry)."""
        return self._residual(partial(self.mixer, segment_ids=segment_ids), x, carry,
                              deterministic)

    def step(self, x_t: jax.Array, carry: Carry, *,
             deterministic: bool = True) -> tuple[jax.Array, Carry]:
        """x_t [B, d_model], carry -> (y_t [B, d_model], carry)."""
        return self._residual(self.mixer.step, x_t, carry, deterministic)

    def _residual(self, mix: Mix, x: jax.Array, carry: Carry,
                  deterministic: bool) -> tuple[jax.Array, Carry]:
        y, carry = mix(self.norm1(x), carry)
        x = x + self.dropout(y, deterministic=deterministic)
        if self.channel_mixer is not None:
            y = self.channel_mixer(self.norm2(x))
            x = x + self.dropout(y, deterministic=deterministic)
        return x, carry
