"""The optimizer: global-norm clipping, then AdamW on a warmup + cosine schedule.

Steps are counted from 1: step ``n`` is the n-th update and uses ``lr_schedule(...)(n - 1)``
(optax passes the number of updates done so far). The learning rate rises linearly to the peak
``lr`` at step ``warmup_steps`` and follows a cosine down to ``min_lr_ratio * lr``, reached
exactly at the last step.

Weight decay applies to matrices only: ``decay_mask`` leaves out 1-D parameters (norm scales,
biases, the LRU's ν/θ/γ) and embeddings. Later parameter groups (e.g. a smaller lr for the
recurrent parameters) replace the mask with roles; keep them going through ``decay_mask``'s
path-based test.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import optax

from glrnn.config import OptimConfig

EMBEDDING_NAMES = ("embedding",)  # flax.linen.Embed's parameter


def lr_schedule(cfg: OptimConfig, total_steps: int) -> Callable[[jax.Array], jax.Array]:
    """lr as a function of optax's update count (``count = step - 1``)."""
    base = optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=cfg.lr, warmup_steps=cfg.warmup_steps,
        decay_steps=total_steps, end_value=cfg.lr * cfg.min_lr_ratio)
    return lambda count: base(count + 1)


def _is_decayed(path: tuple, leaf: jax.Array) -> bool:
    names = {getattr(key, "key", getattr(key, "name", None)) for key in path}
    return leaf.ndim >= 2 and not names & set(EMBEDDING_NAMES)


def decay_mask(params: optax.Params) -> optax.Params:
    """Same tree as ``params`` with True where weight decay applies (matrices, not embeddings)."""
    return jax.tree_util.tree_map_with_path(_is_decayed, params)


def make_optimizer(cfg: OptimConfig, total_steps: int) -> optax.GradientTransformation:
    """Clip by global norm ``clip_norm``, then AdamW with ``lr_schedule`` and ``decay_mask``."""
    return optax.chain(
        optax.clip_by_global_norm(cfg.clip_norm),
        optax.adamw(lr_schedule(cfg, total_steps), b1=cfg.b1, b2=cfg.b2, eps=cfg.eps,
                    weight_decay=cfg.weight_decay, mask=decay_mask),
    )
