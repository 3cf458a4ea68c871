"""Sampling the next token: pure functions of (logits, key, settings), jit- and vmap-friendly.

The filters apply in this order (each one a function of [B, V] float32 logits):

1. repetition penalty ρ (CTRL, Keskar et al. 2019): for every token already in the sequence, a
   positive logit is divided by ρ and a negative one multiplied by it;
2. temperature T: logits / T (T = 0 means greedy: the argmax after step 1, nothing else applies);
3. top-k: keep the k largest logits (0: all);
4. top-p (nucleus): keep the smallest set of most likely tokens whose probability reaches p
   (the most likely token is always kept; 1: all);
5. min-p: keep tokens whose probability is at least min_p times the most likely one's (0: all).

Filtered-out tokens get −inf; the sample is ``jax.random.categorical`` of what is left.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from glrnn.config import check, float32_ok


@dataclass(frozen=True)
class Sampling:
    """Sampling settings (hashable: the decode loop compiles once per setting)."""

    temperature: float = 1.0  # 0: greedy
    top_k: int = 0  # 0: off
    top_p: float = 1.0  # 1: off
    min_p: float = 0.0  # 0: off
    repetition_penalty: float = 1.0  # 1: off

    def __post_init__(self) -> None:
        check(float32_ok(self.temperature) and self.temperature >= 0, "--temperature",
              self.temperature, "0 (greedy) or a float32 value in [1.2e-38, 3.4e38]")
        check(isinstance(self.top_k, int) and self.top_k >= 0, "--top-k", self.top_k,
              "an integer >= 0 (0: off)")
        check(0.0 < self.top_p <= 1.0, "--top-p", self.top_p, "in (0, 1]")
        check(0.0 <= self.min_p < 1.0, "--min-p", self.min_p, "in [0, 1)")
        check(float32_ok(self.repetition_penalty) and self.repetition_penalty >= 1.0,
              "--repetition-penalty", self.repetition_penalty,
              "a float32 value in [1, 3.4e38] (1: off)")


def penalise_repeats(logits: jax.Array, seen: jax.Array, penalty: float) -> jax.Array:
    """logits [B, V], seen bool [B, V] -> logits with seen tokens made less likely."""
    if penalty == 1.0:
        return logits
    return jnp.where(seen, jnp.where(logits > 0, logits / penalty, logits * penalty), logits)


def top_k_filter(logits: jax.Array, k: int) -> jax.Array:
    if not 0 < k < logits.shape[-1]:
        return logits
    kth = jax.lax.top_k(logits, k)[0][..., -1:]
    return jnp.where(logits < kth, -jnp.inf, logits)


def top_p_filter(logits: jax.Array, p: float) -> jax.Array:
    """Keep the most likely tokens until their probability reaches ``p``."""
    if p >= 1.0:
        return logits
    order = jnp.argsort(-logits, axis=-1)
    sorted_logits = jnp.take_along_axis(logits, order, axis=-1)
    probs = jax.nn.softmax(sorted_logits, axis=-1)
    before = jnp.cumsum(probs, axis=-1) - probs  # mass of the tokens ranked above
    drop_sorted = before >= p  # the first token (before = 0) always stays
    drop = jnp.zeros_like(drop_sorted).at[
        jnp.arange(logits.shape[0])[:, None], order].set(drop_sorted)
    return jnp.where(drop, -jnp.inf, logits)


def min_p_filter(logits: jax.Array, min_p: float) -> jax.Array:
    if min_p <= 0.0:
        return logits
    probs = jax.nn.softmax(logits, axis=-1)
    keep = probs >= min_p * probs.max(axis=-1, keepdims=True)
    return jnp.where(keep, logits, -jnp.inf)


def filter_logits(logits: jax.Array, settings: Sampling,
                  seen: jax.Array | None = None) -> jax.Array:
    """Steps 1 and 3-5 with the temperature applied: [B, V] -> [B, V] float32 (−inf = out)."""
    logits = logits.astype(jnp.float32)
    if seen is not None:
        logits = penalise_repeats(logits, seen, settings.repetition_penalty)
    logits = logits / max(settings.temperature, 1e-6)
    logits = top_k_filter(logits, settings.top_k)
    logits = top_p_filter(logits, settings.top_p)
    return min_p_filter(logits, settings.min_p)


def sample(logits: jax.Array, key: jax.Array, settings: Sampling,
           seen: jax.Array | None = None) -> jax.Array:
    """Next tokens [B] int32 from logits [B, V] (``seen``: bool [B, V] for the penalty)."""
    if settings.temperature == 0:
        if seen is not None:
            logits = penalise_repeats(logits.astype(jnp.float32), seen,
                                      settings.repetition_penalty)
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    return jax.random.categorical(key, filter_logits(logits, settings, seen),
                                  axis=-1).astype(jnp.int32)
