"""The residual block: a time mixer, then a channel mixer, each pre-normed, with dropout.

    x = x + dropout(mixer(norm1(x)))
    x = x + dropout(channel_mixer(norm2(x)))        (skipped for channel_mixer="none")

The block follows the mixer protocol (``__call__`` / ``step`` / ``init_carry``); its carry is the
time mixer's. The channel mixer acts on each position alone, so both modes share it.

Norms: LayerNorm, RMSNorm, or BatchNorm (the LRU and S5 papers' default on the Long Range Arena):
statistics over the batch and the positions of a sequence, padding excluded by ``mask``; while
training (``deterministic=False``) it normalises with the batch's statistics and updates running
averages in the ``batch_stats`` collection (momentum ``glrnn.layers.BATCHNORM_MOMENTUM``),
otherwise (evaluation, ``step``) it uses the running averages, so the parallel and recurrent
modes agree.

Bidirectional blocks (``cfg.bidirectional``, for tasks that are not causal) add a second time mixer
that runs over each sequence reversed within its length (``reverse``: the index map from
:func:`reverse_index`, so right padding stays after the end) and add its output, put back in
order, to the forward mixer's. They have no ``step``: the output at t depends on the future.

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
from glrnn.layers import dense, make_norm, normalize
from glrnn.mixers import make_mixer

Carry = Any  # a pytree of arrays whose shapes do not depend on the length
Mix = Callable[[jax.Array, Carry], tuple[jax.Array, Carry]]


def reverse_index(lengths: jax.Array, length: int) -> jax.Array:
    """int [B, L]: position t of row b reads position lengths[b] − 1 − t while t < lengths[b],
    else t itself (padding stays in place); applying it twice is the identity."""
    t = jnp.arange(length)[None]
    return jnp.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)


def take_positions(x: jax.Array, index: jax.Array) -> jax.Array:
    """x [B, L, ...] reordered along L by index int [B, L]."""
    return jnp.take_along_axis(x, index.reshape(index.shape + (1,) * (x.ndim - 2)), axis=1)


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
    """Pre-norm residual block: [batch, length, d_model] -> same; carry: the time mixer's.
    ``layer`` (counted from 0) picks the mixer in hybrid layouts (glrnn.mixers.make_mixer)."""

    cfg: ModelConfig
    layer: int = 0

    def setup(self) -> None:
        self.norm1 = make_norm(self.cfg.norm, self.cfg.dtype)
        self.mixer = make_mixer(self.cfg, self.layer)
        if self.cfg.bidirectional:
            self.mixer_reverse = make_mixer(self.cfg, self.layer)
        self.channel_mixer = make_channel_mixer(self.cfg)
        if self.channel_mixer is not None:
            self.norm2 = make_norm(self.cfg.norm, self.cfg.dtype)
        self.dropout = nn.Dropout(self.cfg.dropout)

    def init_carry(self, batch_size: int) -> Carry:
        return self.mixer.init_carry(batch_size)

    def __call__(self, x: jax.Array, carry: Carry = None, *, segment_ids: jax.Array | None = None,
                 mask: jax.Array | None = None, reverse: jax.Array | None = None,
                 deterministic: bool = True) -> tuple[jax.Array, Carry]:
        """x [B, L, d_model], carry (the mixer's) or None, segment_ids int [B, L] or None,
        mask bool [B, L, 1] or None (real positions, for BatchNorm's statistics), reverse
        int [B, L] (bidirectional blocks: :func:`reverse_index`) -> (y [B, L, d_model], carry)."""
        mix = partial(self.mixer, segment_ids=segment_ids)
        if self.cfg.bidirectional:
            if reverse is None:
                reverse = reverse_index(jnp.full(x.shape[:1], x.shape[1]), x.shape[1])
            mix = partial(self._both_ways, reverse=reverse, segment_ids=segment_ids)
        return self._residual(mix, x, carry, mask, deterministic)

    def step(self, x_t: jax.Array, carry: Carry, *,
             deterministic: bool = True) -> tuple[jax.Array, Carry]:
        """x_t [B, d_model], carry -> (y_t [B, d_model], carry)."""
        if self.cfg.bidirectional:
            raise ValueError("model.bidirectional=True: a bidirectional block has no step mode "
                             "(its output depends on later positions)")
        return self._residual(self.mixer.step, x_t, carry, None, deterministic)

    def _both_ways(self, x: jax.Array, carry: Carry, *, reverse: jax.Array,
                   segment_ids: jax.Array | None) -> tuple[jax.Array, Carry]:
        y, carry = self.mixer(x, carry, segment_ids=segment_ids)
        back = None if segment_ids is None else take_positions(segment_ids, reverse)
        y_reverse, _ = self.mixer_reverse(take_positions(x, reverse), segment_ids=back)
        return y + take_positions(y_reverse, reverse), carry

    def _residual(self, mix: Mix, x: jax.Array, carry: Carry, mask: jax.Array | None,
                  deterministic: bool) -> tuple[jax.Array, Carry]:
        y, carry = mix(normalize(self.norm1, x, mask, deterministic), carry)
        x = x + self.dropout(y, deterministic=deterministic)
        if self.channel_mixer is not None:
            y = self.channel_mixer(normalize(self.norm2, x, mask, deterministic))
            x = x + self.dropout(y, deterministic=deterministic)
        return x, carry
