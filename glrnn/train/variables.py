"""A model's variables in two parts: ``params`` (trained by the optimizer, each with a role) and
``model_state`` (the other flax collections, updated by the forward pass while training:
BatchNorm's ``batch_stats``; ``{}`` for most models)."""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
from flax.core import meta

from glrnn.params import split_roles

Params = Any
ModelState = dict[str, Any]


def init_variables(model: nn.Module, key: jax.Array, *args: Any,
                   **kwargs: Any) -> tuple[Params, Any, ModelState]:
    """(params, roles, model_state) of ``model.init(key, *args, **kwargs)``, compiled as one
    program (as :func:`glrnn.params.init_params`; op by op, every initialiser compiles apart,
    and a process other than a job's process 0 finds none of them in JAX's persistent cache)."""
    variables = dict(jax.jit(functools.partial(model.init, **kwargs))(key, *args))
    params, roles = split_roles(variables.pop("params"))
    return params, roles, meta.unbox(variables)


def apply_model(model: nn.Module, params: Params, model_state: ModelState, *args: Any,
                train: bool = False, key: jax.Array | None = None,
                **kwargs: Any) -> tuple[Any, ModelState]:
    """``(model output, model_state)``: ``model.apply`` in training mode (``train``: dropout
    from ``key``, BatchNorm on batch statistics, ``model_state`` updated) or evaluation mode
    (``model_state`` returned unchanged)."""
    variables = {"params": params, **model_state}
    rngs = None if key is None else {"dropout": key}
    if train and model_state:
        return model.apply(variables, *args, deterministic=False, rngs=rngs,
                           mutable=list(model_state), **kwargs)
    return model.apply(variables, *args, deterministic=not train, rngs=rngs,
                       **kwargs), model_state
