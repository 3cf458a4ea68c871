"""Optimizer groups by role: each group gets the learning rate and weight decay the config says;
gradient accumulation gives the update of the whole batch."""

from __future__ import annotations

from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glrnn.config import GateLoopConfig, ModelConfig, OptimConfig
from glrnn.models import LanguageModel
from glrnn.params import ROLES, init_params
from glrnn.train.lm_task import lm_loss
from glrnn.train.loop import make_train_step
from glrnn.train.optim import make_optimizer

LR, DECAY, FACTOR = 0.1, 0.5, 0.25
# constant lr (no warmup, min_lr_ratio 1), no clipping in the way
OPTIM = OptimConfig(lr=LR, warmup_steps=0, min_lr_ratio=1.0, weight_decay=DECAY, clip_norm=1e9,
                    recurrent_lr_factor=FACTOR)


@pytest.fixture(scope="module", params=["lru", "gateloop"])
def model_params(request):
    cfg = ModelConfig(vocab_size=11, d_model=8, d_state=6, n_layers=1, mixer=request.param,
                      tie_embeddings=False, norm="layernorm", channel_mixer="mlp")
    params, roles = init_params(LanguageModel(cfg), jax.random.key(0), jnp.zeros((1, 4), int))
    assert set(jax.tree.leaves(roles)) == set(ROLES)  # every role is present
    return params, roles


def first_update(optim: OptimConfig, params, roles, grad_value: float):
    optimizer = make_optimizer(optim, 10, roles)
    grads = jax.tree.map(lambda p: jnp.full_like(p, grad_value), params)
    updates, _ = optimizer.update(grads, optimizer.init(params), params)
    return updates


def test_weight_decay_only_where_the_config_says(model_params):
    params, roles = model_params
    for decay_roles in [("weight",), ("weight", "recurrent", "embedding")]:
        optim = replace(OPTIM, decay_roles=decay_roles)
        # zero gradient: Adam's step is 0, what is left is the decay term -lr * factor * wd * p
        updates = first_update(optim, params, roles, 0.0)
        for u, p, role in zip(jax.tree.leaves(updates), jax.tree.leaves(params),
                              jax.tree.leaves(roles), strict=True):
            factor = FACTOR if role == "recurrent" else 1.0
            expected = -LR * factor * DECAY * p if role in decay_roles else jnp.zeros_like(p)
            np.testing.assert_allclose(u, expected, rtol=1e-5, atol=1e-7, err_msg=role)


def test_learning_rate_factor_per_role(model_params):
    params, roles = model_params
    optim = replace(OPTIM, weight_decay=0.0)
    # first Adam step with a constant gradient: the update is -lr * factor in every element
    updates = first_update(optim, params, roles, 0.3)
    for u, role in zip(jax.tree.leaves(updates), jax.tree.leaves(roles), strict=True):
        factor = FACTOR if role == "recurrent" else 1.0
        np.testing.assert_allclose(u, -LR * factor, rtol=1e-4, err_msg=role)


def test_gradient_accumulation_equals_the_whole_batch():
    cfg = ModelConfig(vocab_size=11, d_model=8, d_state=6, n_layers=2, mixer="gateloop",
                      gateloop=GateLoopConfig(tied_gates=False))
    model = LanguageModel(cfg)
    params, roles = init_params(model, jax.random.key(0), jnp.zeros((1, 4), int))
    optimizer = make_optimizer(OPTIM, 10, roles)
    batch = jax.random.randint(jax.random.key(1), (4, 9), 0, 11).at[:, 3].set(10)  # BOS inside
    results = [make_train_step(lm_loss(model, 10), optimizer, grad_accum=k)(
        params, optimizer.init(params), {}, batch, jax.random.key(2)) for k in (1, 2, 4)]
    for other in results[1:]:
        for a, b in zip(jax.tree.leaves(results[0]), jax.tree.leaves(other), strict=True):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
