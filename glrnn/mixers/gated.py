"""Griffin's recurrent (temporal-mixing) block around any recurrent mixer (De et al. 2024, fig. 2):

    g = gelu(W_g x + b_g)                     gate branch       d_model -> width
    u = mixer(conv(W_x x + b_x))              recurrent branch  d_model -> width
    y = W_o (g ⊙ u) + b_o                                       width -> d_model

W_g and W_x are one fused matmul (d_model -> 2·width, gate columns first). Hawk is a stack of
pre-norm residual blocks with this as the time mixer (the RG-LRU as ``mixer``) and a gated MLP;
Griffin interleaves local-attention blocks (glrnn/mixers/__init__.py builds both). The carry is
the inner mixer's (with the convolution: (conv carry, mixer carry)).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from glrnn.layers import dense


class GatedRecurrence(nn.Module):
    """[batch, length, d_model] -> same; ``mixer`` runs at ``width`` (conv included)."""

    mixer: nn.Module
    d_model: int
    width: int
    dtype: str = "float32"

    def setup(self) -> None:
        self.proj_in = dense(2 * self.width, self.dtype)
        self.proj_out = dense(self.d_model, self.dtype)

    def init_carry(self, batch_size: int) -> Any:
        return self.mixer.init_carry(batch_size)

    def __call__(self, x: jax.Array, carry: Any = None, *,
                 segment_ids: jax.Array | None = None) -> tuple[jax.Array, Any]:
        """x [B, L, d_model], carry or None, segment_ids int [B, L] or None."""
        gate, branch = jnp.split(self.proj_in(x), 2, axis=-1)
        u, carry = self.mixer(branch, carry, segment_ids=segment_ids)
        return self._out(gate, u), carry

    def step(self, x_t: jax.Array, carry: Any) -> tuple[jax.Array, Any]:
        """x_t [B, d_model], carry -> (y_t [B, d_model], carry)."""
        gate, branch = jnp.split(self.proj_in(x_t), 2, axis=-1)
        u, carry = self.mixer.step(branch, carry)
        return self._out(gate, u), carry

    def _out(self, gate: jax.Array, u: jax.Array) -> jax.Array:
        return self.proj_out(nn.gelu(gate) * u.astype(gate.dtype))
