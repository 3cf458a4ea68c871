"""The optimizer: global-norm clipping, then AdamW on a warmup + cosine schedule, grouped by role.

Steps are counted from 1: step ``n`` is the n-th update and uses ``lr_schedule(...)(n - 1)``
(optax passes the number of updates done so far). The learning rate rises linearly to the peak
``lr`` at step ``warmup_steps`` and follows a cosine down to ``min_lr_ratio * lr``, reached
exactly at the last step.

Groups come from the parameters' roles (glrnn/params.py), never from their names:

* weight decay applies to the roles in ``optim.decay_roles`` (default: ``weight`` only; the
  recurrent parameters, biases, norms and embeddings are not decayed);
* the ``recurrent`` role's updates are scaled by ``optim.recurrent_lr_factor`` (the LRU paper
  trains ν, θ, γ and B at half the learning rate: ``--optim.recurrent-lr-factor 0.5``).

Clipping sees all gradients together, and Adam's moments are those of the ungrouped optimizer:
the groups only change the decay term and the final scale of each update.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import optax

from glrnn.config import OptimConfig


def lr_schedule(cfg: OptimConfig, total_steps: int) -> Callable[[jax.Array], jax.Array]:
    """lr as a function of optax's update count (``count = step - 1``)."""
    base = optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=cfg.lr, warmup_steps=cfg.warmup_steps,
        decay_steps=total_steps, end_value=cfg.lr * cfg.min_lr_ratio)
    return lambda count: base(count + 1)


def decay_mask(cfg: OptimConfig, roles: Any) -> Any:
    """Same tree as ``roles`` with True where weight decay applies."""
    return jax.tree.map(lambda role: role in cfg.decay_roles, roles)


def lr_factors(cfg: OptimConfig, roles: Any) -> Any:
    """Same tree as ``roles``: each parameter's learning-rate factor."""
    return jax.tree.map(lambda role: cfg.recurrent_lr_factor if role == "recurrent" else 1.0,
                        roles)


def scale_by_tree(factors: Any) -> optax.GradientTransformation:
    """Multiply each update by its (static) factor."""

    def update(updates: Any, state: optax.EmptyState, params: Any = None) -> tuple[Any, Any]:
        del params
        return jax.tree.map(lambda u, f: u if f == 1.0 else u * f, updates, factors), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def make_optimizer(cfg: OptimConfig, total_steps: int,
                   roles: Any) -> optax.GradientTransformation:
    """Clip by global norm, Adam, decoupled weight decay on ``decay_mask``, the schedule, then
    the per-role learning-rate factors. ``roles``: the tree from ``glrnn.params.split_roles``."""
    return optax.chain(
        optax.clip_by_global_norm(cfg.clip_norm),
        optax.scale_by_adam(b1=cfg.b1, b2=cfg.b2, eps=cfg.eps),
        optax.add_decayed_weights(cfg.weight_decay, mask=decay_mask(cfg, roles)),
        optax.scale_by_learning_rate(lr_schedule(cfg, total_steps)),
        scale_by_tree(lr_factors(cfg, roles)),
    )
