"""The time loop of recurrences that are not linear in the state (dense RNNs, GRUs): ``lax.scan``
over the time axis, with the segment resets that ``linear_scan`` applies to linear ones.

These mixers compute everything that does not depend on the state in parallel over the whole
sequence first (input projections), and loop only over ``update(h_{t−1}, u_t) -> h_t``.
:class:`SequentialRNN` is the mixer protocol for them, given ``inputs``, ``update`` and
``output``.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from glrnn.scan import segment_resets

Update = Callable[[jax.Array, jax.Array], jax.Array]


def run_states(update: Update, u: jax.Array, h0: jax.Array,
               segment_ids: jax.Array | None = None) -> jax.Array:
    """Every state of h_t = update(h_{t−1}, u_t): u [B, L, K], h0 [B, N], segment_ids int [B, L]
    or None (where the id changes the state is cleared before the step: h_t = update(0, u_t))
    -> h [B, L, N] in the wider of h0's and u's dtypes."""
    h0 = h0.astype(jnp.result_type(h0, u))
    u_t = jnp.swapaxes(u, 0, 1)
    if segment_ids is None:
        keep = jnp.ones((*u_t.shape[:2], 1), bool)
    else:
        keep = jnp.logical_not(segment_resets(segment_ids)).T[..., None]  # [L, B, 1]

    def step(h, inputs):
        u_step, keep_step = inputs
        h = update(jnp.where(keep_step, h, 0), u_step)
        return h, h

    return jnp.swapaxes(jax.lax.scan(step, h0, (u_t, keep))[1], 0, 1)


class SequentialRNN(nn.Module):
    """The mixer protocol for h_t = update(h_{t−1}, inputs(x_t)), y_t = output(h_t, x_t), with a
    float32 state [batch, d_state]; subclasses define the three methods."""

    d_model: int
    d_state: int

    def inputs(self, x: jax.Array) -> jax.Array:
        """x [..., H] -> u [..., K]: everything of a step that does not need the state."""
        raise NotImplementedError

    def update(self, h_prev: jax.Array, u: jax.Array) -> jax.Array:
        """h_prev [..., N], u [..., K] -> h [..., N]."""
        raise NotImplementedError

    def output(self, h: jax.Array, x: jax.Array) -> jax.Array:
        """h [..., N], x [..., H] -> y [..., H] in x's dtype."""
        raise NotImplementedError

    def init_carry(self, batch_size: int) -> jax.Array:
        return jnp.zeros((batch_size, self.d_state), jnp.float32)

    def __call__(self, x: jax.Array, carry: jax.Array | None = None, *,
                 segment_ids: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """x [B, L, H], carry [B, N] or None, segment_ids int [B, L] or None (the state is
        cleared where the segment changes) -> (y [B, L, H], carry [B, N])."""
        h0 = self.init_carry(x.shape[0]) if carry is None else carry
        h = run_states(self.update, self.inputs(x), h0, segment_ids)
        return self.output(h, x), h[:, -1]

    def step(self, x_t: jax.Array, carry: jax.Array) -> tuple[jax.Array, jax.Array]:
        """x_t [B, H], carry [B, N] -> (y_t [B, H], carry [B, N])."""
        h = self.update(carry, self.inputs(x_t))
        return self.output(h, x_t), h
