"""The optimizer: global-norm clipping, then AdamW on a warmup + cosine schedule, grouped by role.

Steps are counted from 1: step ``n`` is the n-th update and uses ``lr_schedule(...)(n - 1)``
(optax passes the number of updates done so far). The learning rate rises linearly to the peak
``lr`` at step ``warmup_steps`` and follows a cosine down to ``min_lr_ratio * lr``, reached
exactly at the last step: optax's ``warmup_cosine_decay_schedule``, written out so that the
run's length may be a traced value. The optimizer's ``update`` takes it as the extra argument
``total_steps`` (default: the length it was made with), so a run whose length is measured at
start-up (``train.minutes``, glrnn/train/budget.py) compiles its step once, before it knows it.

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
import jax.numpy as jnp
import optax

from glrnn.config import OptimConfig


def lr_schedule(cfg: OptimConfig,
                total_steps: int | jax.Array) -> Callable[[jax.Array], jax.Array]:
    """lr as a function of optax's update count (``count = step - 1``): ``lr * step / warmup``
    before step ``warmup_steps``, then ``end + (lr - end) (1 + cos(pi t)) / 2`` with ``t`` going
    from 0 at step ``warmup_steps`` to 1 at step ``total_steps`` (end = ``min_lr_ratio * lr``).
    ``total_steps`` may be traced."""
    peak, end, warmup = cfg.lr, cfg.lr * cfg.min_lr_ratio, cfg.warmup_steps

    def schedule(count: jax.Array) -> jax.Array:
        step = jnp.asarray(count, jnp.float32) + 1
        decay_steps = jnp.maximum(jnp.asarray(total_steps, jnp.float32) - warmup, 1.0)
        t = jnp.clip((step - warmup) / decay_steps, 0.0, 1.0)
        cosine = end + (peak - end) * 0.5 * (1 + jnp.cos(jnp.pi * t))
        return jnp.where(step < warmup, peak * step / max(warmup, 1), cosine)

    return schedule


def scale_by_schedule(cfg: OptimConfig,
                      total_steps: int) -> optax.GradientTransformationExtraArgs:
    """optax's ``scale_by_learning_rate(lr_schedule(cfg, total_steps))`` (the same state, so
    checkpoints of either restore into the other) whose ``update`` also takes ``total_steps``
    as an extra argument, a traced integer."""

    def init(params: Any) -> optax.ScaleByScheduleState:
        del params
        return optax.ScaleByScheduleState(count=jnp.zeros([], jnp.int32))

    def update(updates: Any, state: optax.ScaleByScheduleState, params: Any = None, *,
               total_steps: int | jax.Array = total_steps,
               **extra: Any) -> tuple[Any, optax.ScaleByScheduleState]:
        del params, extra
        lr = lr_schedule(cfg, total_steps)(state.count)
        updates = jax.tree.map(lambda g: jnp.asarray(-lr, g.dtype) * g, updates)
        return updates, optax.ScaleByScheduleState(count=optax.safe_increment(state.count))

    return optax.GradientTransformationExtraArgs(init, update)


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
    the per-role learning-rate factors. ``roles``: the tree from ``glrnn.params.split_roles``.
    ``update(grads, state, params, total_steps=n)`` schedules for a run of ``n`` steps instead
    of ``total_steps``."""
    return optax.chain(
        optax.clip_by_global_norm(cfg.clip_norm),
        optax.scale_by_adam(b1=cfg.b1, b2=cfg.b2, eps=cfg.eps),
        optax.add_decayed_weights(cfg.weight_decay, mask=decay_mask(cfg, roles)),
        scale_by_schedule(cfg, total_steps),
        scale_by_tree(lr_factors(cfg, roles)),
    )
