"""Position encodings of a language model: a vector per position, added to the input's encoding.

A token's position is its offset in its document: 0 at the document's first token (BOS), and
packed documents restart at 0 where their segment id changes, the very resets that clear the
recurrent state (:func:`glrnn.scan.segment_starts`, the bookkeeping attention's masks use). A
model with positions carries :class:`PositionCarry`: its blocks' carry and the position of each
row's next token, so chunked prefill, step-by-step decoding, saved states and interactive turns
go on counting where they stopped; the zero carry (and a row cleared for a new prompt) starts at
0. A training window that starts inside a document counts from the window's start, as its
recurrent state starts from zero there.

* ``learned``: a table of ``model.max_positions`` rows of d_model (role ``embedding``), drawn
  like the token embedding (normal, std 1/√d_model: BERT draws both tables alike). A position
  past the table is refused before any work (:func:`check_room`), never clamped.
* ``sinusoidal``: the Transformer's (Vaswani et al. 2017), channel 2i = sin(p / 10000^(2i/d)),
  channel 2i + 1 = cos(p / 10000^(2i/d)), times 1/√d_model. The Transformer adds it to the
  embedding scaled by √d_model; glrnn's embedding (std 1/√d_model, tied to the head) is not
  scaled, so the encoding is scaled down instead: the same ratio of encoding to embedding.

Attention blocks rotate their queries and keys by RoPE whatever this says.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from glrnn.config import ModelConfig
from glrnn.errors import check
from glrnn.params import with_role
from glrnn.scan import segment_starts

SINUSOID_BASE = 10000.0


class PositionCarry(NamedTuple):
    """The carry of a model with positions."""

    blocks: Any  # the backbone's carry
    position: jax.Array  # int32 [B]: the next token's offset in its document


# --- the math (pure functions) ---


def document_offsets(position: jax.Array, length: int,
                     segment_ids: jax.Array | None = None) -> jax.Array:
    """int32 [B, L]: the offset of each of ``length`` positions in its document, the first at
    ``position`` int32 [B] (the carry's), restarting at 0 where ``segment_ids`` (int [B, L] or
    None) change."""
    pos = position[:, None] + jnp.arange(length, dtype=jnp.int32)
    return pos - segment_starts(pos, jnp.zeros_like(position), segment_ids)


def sinusoidal(offsets: jax.Array, width: int, base: float = SINUSOID_BASE) -> jax.Array:
    """offsets int [...] -> float32 [..., width]: channel 2i is sin(p / base^(2i/width)),
    channel 2i + 1 cos of the same angle (an odd width ends with a sine)."""
    channel = jnp.arange(width)
    inverse_wavelength = base ** (-(channel - channel % 2) / width).astype(jnp.float32)
    angle = offsets[..., None].astype(jnp.float32) * inverse_wavelength
    return jnp.where(channel % 2 == 0, jnp.sin(angle), jnp.cos(angle))


# --- checks made before any work ---


def check_room(cfg: ModelConfig, needed: int, what: str) -> None:
    """ConfigError unless the positions 0 .. ``needed`` − 1 have an encoding (only a learned
    table ends); ``what`` says where they come from."""
    if cfg.positions == "learned":
        check(needed <= cfg.max_positions, "model.max_positions", cfg.max_positions,
              f">= {needed} for {what} (the learned position table has one row per position "
              "in a document)")


def next_position(carry: Any) -> int:
    """The largest next-token position among a carry's rows (0 for None or a model without
    positions); reads the device."""
    if isinstance(carry, PositionCarry):
        return int(jnp.max(carry.position))
    return 0


# --- the module ---


class PositionEncoding(nn.Module):
    """offsets int [B, L] -> float32 [B, L, d_model], by ``cfg.positions`` (not "none")."""

    cfg: ModelConfig

    def setup(self) -> None:
        cfg = self.cfg
        if cfg.positions == "learned":
            check(cfg.max_positions > 0, "model.max_positions", cfg.max_positions,
                  "> 0 with model.positions='learned' (a Config sets it to data.seq_len)")
            self.table = nn.Embed(cfg.max_positions, cfg.d_model, embedding_init=with_role(
                nn.initializers.normal(1 / math.sqrt(cfg.d_model)), "embedding"))

    def __call__(self, offsets: jax.Array) -> jax.Array:
        if self.cfg.positions == "learned":
            return self.table(offsets)
        return sinusoidal(offsets, self.cfg.d_model) / math.sqrt(self.cfg.d_model)
