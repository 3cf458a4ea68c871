"""Cross-entropy losses on arrays: per token, per label, and per position for the online rules.

Pure functions of logits and integer targets, computed in float32 whatever the logits' dtype;
a label of -1 means "no target here" and contributes nothing.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def cross_entropy(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Nats per position: logits [..., V], targets [...] int -> [...] float32."""
    return optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), targets)


def label_nats(logits: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(nats [labels' shape], 0 where the label is -1; valid bool [same]): logits
    [..., n_classes], labels int [...]."""
    valid = labels >= 0
    nats = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32),
                                                           jnp.maximum(labels, 0))
    return jnp.where(valid, nats, 0.0), valid


def token_cross_entropy(logits: jax.Array, target: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(Σ nats, count) of one position: logits [B, V], target int [B]."""
    return cross_entropy(logits, target).sum(), jnp.asarray(target.shape[0], jnp.float32)


def label_cross_entropy(logits: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(Σ nats, count) of the labels >= 0 of one position: logits [B, (K,) C], labels
    [B, (K)]."""
    nats, valid = label_nats(logits, labels)
    return nats.sum(), valid.sum().astype(jnp.float32)
