"""Models: the block stack (``Backbone``) and what sits around it (``LanguageModel``).

Each follows the mixer protocol, so a whole model is a recurrent cell: ``__call__`` runs a
sequence in parallel, ``step`` one position, and ``init_carry`` gives the zero state; the carry of
a stack is the tuple of its blocks' carries.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from glrnn.blocks import Block, Carry, dense, make_norm
from glrnn.config import ModelConfig
from glrnn.params import with_role


class Backbone(nn.Module):
    """``cfg.n_layers`` blocks: [batch, length, d_model] -> same; carry: tuple of block carries."""

    cfg: ModelConfig

    def setup(self) -> None:
        self.blocks = [Block(self.cfg) for _ in range(self.cfg.n_layers)]

    def init_carry(self, batch_size: int) -> tuple[Carry, ...]:
        return tuple(block.init_carry(batch_size) for block in self.blocks)

    def __call__(self, x: jax.Array, carry: tuple[Carry, ...] | None = None, *,
                 segment_ids: jax.Array | None = None,
                 deterministic: bool = True) -> tuple[jax.Array, tuple[Carry, ...]]:
        """x [B, L, d_model], carry or None, segment_ids int [B, L] or None
        -> (y [B, L, d_model], carry)."""
        carries = (None,) * len(self.blocks) if carry is None else carry
        out = []
        for block, c in zip(self.blocks, carries, strict=True):
            x, c = block(x, c, segment_ids=segment_ids, deterministic=deterministic)
            out.append(c)
        return x, tuple(out)

    def step(self, x_t: jax.Array, carry: tuple[Carry, ...], *,
             deterministic: bool = True) -> tuple[jax.Array, tuple[Carry, ...]]:
        """x_t [B, d_model], carry -> (y_t [B, d_model], carry)."""
        out = []
        for block, c in zip(self.blocks, carry, strict=True):
            x_t, c = block.step(x_t, c, deterministic=deterministic)
            out.append(c)
        return x_t, tuple(out)


class LanguageModel(nn.Module):
    """Token embedding -> Backbone -> norm -> head (the embedding's transpose when
    ``cfg.tie_embeddings``, else a bias-free Dense). Logits are float32."""

    cfg: ModelConfig

    def setup(self) -> None:
        cfg = self.cfg
        # std 1/√d: with the tied head, unit-RMS features give logits of unit scale
        self.embed = nn.Embed(cfg.vocab_size, cfg.d_model, dtype=jnp.dtype(cfg.dtype),
                              embedding_init=with_role(
                                  nn.initializers.normal(1 / math.sqrt(cfg.d_model)),
                                  "embedding"))
        self.backbone = Backbone(cfg)
        self.norm = make_norm(cfg.norm, cfg.dtype)
        if not cfg.tie_embeddings:
            self.head = dense(cfg.vocab_size, cfg.dtype, use_bias=False)

    def init_carry(self, batch_size: int) -> tuple[Carry, ...]:
        return self.backbone.init_carry(batch_size)

    def __call__(self, tokens: jax.Array, carry: tuple[Carry, ...] | None = None, *,
                 segment_ids: jax.Array | None = None,
                 deterministic: bool = True) -> tuple[jax.Array, tuple[Carry, ...]]:
        """tokens int32 [B, L], carry or None, segment_ids int [B, L] or None (packed documents:
        every recurrent state is cleared where the id changes)
        -> (logits float32 [B, L, vocab], carry)."""
        x, carry = self.backbone(self._embed(tokens), carry, segment_ids=segment_ids,
                                 deterministic=deterministic)
        return self._logits(x), carry

    def step(self, token: jax.Array, carry: tuple[Carry, ...], *,
             deterministic: bool = True) -> tuple[jax.Array, tuple[Carry, ...]]:
        """token int32 [B], carry -> (logits float32 [B, vocab], carry)."""
        x, carry = self.backbone.step(self._embed(token), carry, deterministic=deterministic)
        return self._logits(x), carry

    def _embed(self, tokens: jax.Array) -> jax.Array:
        return self.embed(tokens).astype(jnp.float32)  # the residual stream stays float32

    def _logits(self, x: jax.Array) -> jax.Array:
        x = self.norm(x)
        logits = self.embed.attend(x) if self.cfg.tie_embeddings else self.head(x)
        return logits.astype(jnp.float32)
