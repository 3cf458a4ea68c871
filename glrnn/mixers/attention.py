"""Causal multi-head attention with rotary positions and a fixed-shape KV cache.

    q, k, v = RoPE(W_q x), RoPE(W_k x), W_v x            one fused matmul, no biases
    o_t = Σ_{p ∈ P(t)} softmax_p(q_t · k_p / √d_head) v_p
    y_t = W_o o_t (+ b_o with ``out_bias``)

RoPE turns the first ``rope_fraction`` of each head's channels (1: all; recurrentgemma 0.5).

P(t), the positions query t sees: p ≤ t, t − p < S (the ``slots``: the sliding window, or
``max_len`` for global attention), and p at or after the start of t's segment (packed documents
never see each other). Positions are absolute stream positions, so RoPE (relative by
construction, Su et al. 2021) needs no table and no length limit; a language model may add a
learned or sinusoidal encoding to its input as well (glrnn/positions.py).

Heads: ``heads`` query heads share ``kv_heads`` key/value heads (grouped-query attention; 1 is
Griffin's multi-query attention, ``heads`` plain multi-head).

Carry (``KVCache``, fixed shape whatever the length): the keys (RoPE applied) and values of the
last S positions, oldest first, float32 [B, S, kv_heads, d_head]; ``count`` int32 [B], the
positions seen (slot j holds position count − S + j; negative means empty); ``start`` int32 [B],
where the current segment began. The zero carry is the empty cache. A parallel call attends
over [cache, its own keys] and keeps the last S; ``step`` is the same call on one position.

Long inputs are processed in blocks of ``block_size`` queries (``lax.map``, each block
rematerialised in the backward pass, so memory is O(block · keys) rather than O(L²)); with a
sliding window a block reads only the window − 1 + block keys it can see, so the cost is
O(L · window) rather than O(L²).

Parameter roles: both projections' kernels are ``weight``, the output's bias ``bias``.
"""

from __future__ import annotations

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from glrnn.layers import dense
from glrnn.scan import segment_starts

MASKED = -1e30  # score of a key a query may not see (finite: no NaN in an all-masked pad row)


class KVCache(NamedTuple):
    keys: jax.Array  # [B, S, kv_heads, d_head] float32, oldest first, RoPE applied
    values: jax.Array  # [B, S, kv_heads, d_head] float32
    count: jax.Array  # int32 [B]: positions seen (the next position's index)
    start: jax.Array  # int32 [B]: the position where the current segment started


# --- the math (pure functions) ---


def rope(x: jax.Array, positions: jax.Array, base: float, dims: int = 0) -> jax.Array:
    """Rotary embedding: x [B, L, heads, D], positions int [B, L] -> x with its first R = ``dims``
    channels (0: all D; R even) rotated by position · base^(−2i/R) in the planes
    (x_i, x_{i + R/2}); the channels after R pass unchanged (recurrentgemma turns half)."""
    if dims and dims < x.shape[-1]:
        return jnp.concatenate([rope(x[..., :dims], positions, base), x[..., dims:]], axis=-1)
    half, wide = x.shape[-1] // 2, jnp.promote_types(x.dtype, jnp.float32)
    freq = base ** (-jnp.arange(half, dtype=wide) / half)
    angle = positions[..., None, None].astype(wide) * freq  # [B, L, 1, D/2]
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    x1, x2 = jnp.split(x.astype(wide), 2, axis=-1)
    return jnp.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1).astype(x.dtype)


def visible(q_pos: jax.Array, q_start: jax.Array, k_pos: jax.Array, slots: int) -> jax.Array:
    """bool [B, Lq, Lk]: key position p is visible to query position t (q_pos, q_start int
    [B, Lq]; k_pos int [B, Lk]) iff start(t) ≤ p ≤ t and t − p < slots."""
    t, start, p = q_pos[:, :, None], q_start[:, :, None], k_pos[:, None, :]
    return (p <= t) & (t - p < slots) & (p >= start)


def _attend(q: jax.Array, k: jax.Array, v: jax.Array, q_pos: jax.Array, q_start: jax.Array,
            k_pos: jax.Array, slots: int) -> jax.Array:
    """Softmax attention over every given key: q [B, Lq, Hkv, G, D] (scaled), k, v [B, Lk, Hkv,
    D] -> [B, Lq, Hkv, G, D]; scores and softmax in float32."""
    scores = jnp.einsum("bqhgd,bkhd->bhgqk", q, k,
                        preferred_element_type=jnp.promote_types(q.dtype, jnp.float32))
    mask = visible(q_pos, q_start, k_pos, slots)[:, None, None]
    weights = jax.nn.softmax(jnp.where(mask, scores, MASKED), axis=-1)
    return jnp.einsum("bhgqk,bkhd->bqhgd", weights.astype(v.dtype), v)


def causal_attention(q: jax.Array, k: jax.Array, v: jax.Array, q_pos: jax.Array,
                     q_start: jax.Array, k_pos: jax.Array, slots: int,
                     block: int = 256) -> jax.Array:
    """Masked attention (see :func:`visible`) in blocks of ``block`` queries. The last Lq keys
    are the queries' own positions (k = [cached keys, new keys]). q [B, Lq, Hkv, G, D], k, v
    [B, Lk, Hkv, D], q_pos, q_start int [B, Lq], k_pos int [B, Lk] -> [B, Lq, Hkv, G, D]."""
    length, n_keys = q.shape[1], k.shape[1]
    if length <= block:
        return _attend(q, k, v, q_pos, q_start, k_pos, slots)
    n_blocks = -(-length // block)
    pad = n_blocks * block - length

    def blocks(a: jax.Array) -> jax.Array:  # [B, Lq, ...] -> [n_blocks, B, block, ...]
        a = jnp.pad(a, [(0, 0), (0, pad)] + [(0, 0)] * (a.ndim - 2), mode="edge")
        return jnp.moveaxis(a.reshape(a.shape[0], n_blocks, block, *a.shape[2:]), 1, 0)

    span = min(n_keys, slots - 1 + block)  # the keys a block of queries can see
    # index of the first key the block's first query can see (dynamic_slice clamps it at the
    # end; a negative index would count from the end)
    first = jnp.maximum((n_keys - length) + jnp.arange(n_blocks) * block - (slots - 1), 0)

    @jax.checkpoint
    def one_block(args: tuple[jax.Array, ...]) -> jax.Array:
        qb, pos_b, start_b, f = args
        kb, vb, kpos_b = (jax.lax.dynamic_slice_in_dim(a, f, span, axis=1) for a in (k, v, k_pos))
        return _attend(qb, kb, vb, pos_b, start_b, kpos_b, slots)

    out = jax.lax.map(one_block, (blocks(q), blocks(q_pos), blocks(q_start), first))
    out = jnp.moveaxis(out, 0, 1).reshape(q.shape[0], n_blocks * block, *q.shape[2:])
    return out[:, :length]


def keep_last(a: jax.Array, slots: int) -> jax.Array:
    """The last ``slots`` entries of a [B, n, ...] along axis 1, zero-padded in front."""
    if a.shape[1] < slots:
        a = jnp.pad(a, [(0, 0), (slots - a.shape[1], 0)] + [(0, 0)] * (a.ndim - 2))
    return a[:, a.shape[1] - slots:]


class Attention(nn.Module):
    """Causal attention time mixer: [batch, length, d_model] -> same; carry ``KVCache``."""

    d_model: int
    heads: int = 4
    kv_heads: int = 0  # 0: heads
    slots: int = 1024  # the window, or max_len for global attention
    rope_base: float = 10000.0
    dtype: str = "float32"
    block_size: int = 256
    rope_fraction: float = 1.0  # RoPE turns this fraction of each head's channels
    out_bias: bool = False

    @property
    def n_kv(self) -> int:
        return self.kv_heads or self.heads

    @property
    def head_dim(self) -> int:
        return self.d_model // self.heads

    def setup(self) -> None:
        if self.d_model % self.heads or self.head_dim % 2 or self.heads % self.n_kv:
            raise ValueError(f"model.attention.heads={self.heads}, kv_heads={self.kv_heads}: "
                             f"expected heads dividing d_model={self.d_model} into even widths "
                             "and kv_heads dividing heads")
        self.qkv = dense((self.heads + 2 * self.n_kv) * self.head_dim, self.dtype, False)
        self.out = dense(self.d_model, self.dtype, self.out_bias)

    def init_carry(self, batch_size: int) -> KVCache:
        cache = jnp.zeros((batch_size, self.slots, self.n_kv, self.head_dim), jnp.float32)
        count = jnp.zeros((batch_size,), jnp.int32)
        return KVCache(cache, cache, count, count)

    def __call__(self, x: jax.Array, carry: KVCache | None = None, *,
                 segment_ids: jax.Array | None = None) -> tuple[jax.Array, KVCache]:
        """x [B, L, d_model], carry or None (the empty cache), segment_ids int [B, L] or None
        -> (y [B, L, d_model], carry)."""
        batch, length, _ = x.shape
        heads, n_kv, d = self.heads, self.n_kv, self.head_dim
        q, k, v = jnp.split(self.qkv(x), [heads * d, (heads + n_kv) * d], axis=-1)
        count = jnp.zeros((batch,), jnp.int32) if carry is None else carry.count
        start = jnp.zeros((batch,), jnp.int32) if carry is None else carry.start
        pos = count[:, None] + jnp.arange(length, dtype=jnp.int32)
        q_start = segment_starts(pos, start, segment_ids)
        turned = int(d * self.rope_fraction)
        q = rope(q.reshape(batch, length, heads, d), pos, self.rope_base, turned) * d**-0.5
        k = rope(k.reshape(batch, length, n_kv, d), pos, self.rope_base, turned)
        v = v.reshape(batch, length, n_kv, d)
        k_pos = pos
        if carry is not None:
            cached = count[:, None] - self.slots + jnp.arange(self.slots, dtype=jnp.int32)
            k = jnp.concatenate([carry.keys.astype(k.dtype), k], axis=1)
            v = jnp.concatenate([carry.values.astype(v.dtype), v], axis=1)
            k_pos = jnp.concatenate([cached, pos], axis=1)
        o = causal_attention(q.reshape(batch, length, n_kv, heads // n_kv, d), k, v, pos,
                             q_start, k_pos, self.slots, self.block_size)
        y = self.out(o.reshape(batch, length, heads * d))
        new = KVCache(keep_last(k, self.slots).astype(jnp.float32),
                      keep_last(v, self.slots).astype(jnp.float32), count + length,
                      q_start[:, -1])
        return y, new

    def step(self, x_t: jax.Array, carry: KVCache) -> tuple[jax.Array, KVCache]:
        """x_t [B, d_model], carry -> (y_t [B, d_model], carry)."""
        y, carry = self(x_t[:, None], carry)
        return y[:, 0], carry
