"""The residual block: a time mixer, then a channel mixer, each pre-normed, with dropout.

    x = x + dropout(mixer(norm1(x)))
    x = x + dropout(channel_mixer(norm2(x)))        (skipped for channel_mixer="none")

The block follows the mixer protocol (``__call__`` / ``step`` / ``init_carry``); its carry is the
time mixer's. The channel mixer acts on each position alone, so both modes share it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from glrnn.config import ModelConfig
from glrnn.mixers import make_mixer

NORMS: dict[str, Callable[[], nn.Module]] = {"layernorm": nn.LayerNorm, "rmsnorm": nn.RMSNorm}

Carry = Any  # a pytree of arrays whose shapes do not depend on the length
Mix = Callable[[jax.Array, Carry], tuple[jax.Array, Carry]]


class MLP(nn.Module):
    """Dense(d_model → hidden), GeLU, Dense(hidden → d_model): [..., d_model] -> [..., d_model]."""

    d_model: int
    hidden: int

    def setup(self) -> None:
        self.up = nn.Dense(self.hidden)
        self.down = nn.Dense(self.d_model)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.down(nn.gelu(self.up(x)))


class GLU(nn.Module):
    """GeLU-gated linear unit: down(gelu(W_g x) ⊙ W_v x); W_g and W_v are one fused matmul.
    [..., d_model] -> [..., d_model]."""

    d_model: int
    hidden: int

    def setup(self) -> None:
        self.up = nn.Dense(2 * self.hidden)
        self.down = nn.Dense(self.d_model)

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
    return CHANNEL_MIXERS[cfg.channel_mixer](d_model=cfg.d_model, hidden=hidden)


class Block(nn.Module):
    """Pre-norm residual block: [batch, length, d_model] -> same; carry: the time mixer's."""

    cfg: ModelConfig

    def setup(self) -> None:
        norm = NORMS[self.cfg.norm]
        self.norm1 = norm()
        self.mixer = make_mixer(self.cfg)
        self.channel_mixer = make_channel_mixer(self.cfg)
        if self.channel_mixer is not None:
            self.norm2 = norm()
        self.dropout = nn.Dropout(self.cfg.dropout)

    def init_carry(self, batch_size: int) -> Carry:
        return self.mixer.init_carry(batch_size)

    def __call__(self, x: jax.Array, carry: Carry = None, *,
                 deterministic: bool = True) -> tuple[jax.Array, Carry]:
        """x [B, L, d_model], carry (the mixer's) or None -> (y [B, L, d_model], carry)."""
        return self._residual(self.mixer, x, carry, deterministic)

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
