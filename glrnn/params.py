"""Parameter roles: every parameter says at creation what it is, and the optimizer groups by it.

A module declares a parameter as ``self.param(name, with_role(init, "recurrent"), ...)``; the
initialiser then returns the array inside a :class:`Role` box (flax ``AxisMetadata``), so
``model.init`` yields a tree whose leaves carry their role. :func:`split_roles` turns that tree
into the plain parameters (what ``apply`` takes and checkpoints store) and a same-shaped tree of
role names (what ``glrnn.train.optim`` builds its groups from). No role is guessed from a name or
a shape: an untagged parameter is an error.

Roles:

* ``recurrent``: what sets the state: the LRU's ν, θ, γ and B, GateLoop's gate and state-input
  projections. A learning-rate factor of their own, no weight decay by default.
* ``weight``: the other matrices (channel mixers, read-outs, an untied head). Weight decay.
* ``bias``, ``norm`` (norm scales and offsets), ``embedding``: no weight decay by default.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
from flax import traverse_util
from flax.core import meta

from glrnn.config import ROLES

Initializer = Callable[..., jax.Array]


class Role(meta.AxisMetadata):
    """A parameter value boxed with its role (a flax ``AxisMetadata``; ``unbox`` strips it)."""

    # registered as a pytree below: the value is the child, the role static data
    def __init__(self, value: Any, role: str) -> None:
        if role not in ROLES:
            raise ValueError(f"parameter role {role!r}: expected one of {', '.join(ROLES)}")
        self.value, self.role = value, role

    def unbox(self) -> Any:
        return self.value

    def replace_boxed(self, val: Any) -> Role:
        return Role(val, self.role)

    def add_axis(self, index: int, params: dict[Any, Any]) -> Role:
        return self

    def remove_axis(self, index: int, params: dict[Any, Any]) -> Role:
        return self

    def __repr__(self) -> str:
        return f"Role({self.role}, {self.value!r})"


jax.tree_util.register_pytree_node(
    Role, lambda box: ((box.value,), box.role), lambda role, children: Role(children[0], role))


def with_role(init: Initializer, role: str) -> Initializer:
    """``init`` whose result is boxed with ``role`` (use as a flax parameter initialiser)."""
    if role not in ROLES:
        raise ValueError(f"parameter role {role!r}: expected one of {', '.join(ROLES)}")

    def boxed(*args: Any, **kwargs: Any) -> Role:
        return Role(init(*args, **kwargs), role)

    return boxed


def _is_role(x: Any) -> bool:
    return isinstance(x, Role)


def split_roles(boxed: Any) -> tuple[Any, Any]:
    """``(params, roles)`` from an initialised (boxed) parameter tree; ``ValueError`` naming the
    first parameter that has no role."""

    def role_of(path: tuple, leaf: Any) -> str:
        if not _is_role(leaf):
            raise ValueError(f"parameter {jax.tree_util.keystr(path)} has no role: create it "
                             "with glrnn.params.with_role(init, role)")
        return leaf.role

    roles = jax.tree_util.tree_map_with_path(role_of, boxed, is_leaf=_is_role)
    params = jax.tree.map(lambda box: box.value, boxed, is_leaf=_is_role)
    return params, roles



def init_params(module: Any, key: jax.Array, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """``(params, roles)`` of a freshly initialised flax module (``module.init``'s arguments;
    keyword arguments are static). The initialisation is compiled as one program: run op by op
    it compiles every initialiser for every shape (about 10 s for a small Griffin model)."""
    return split_roles(jax.jit(functools.partial(module.init, **kwargs))(key, *args)["params"])


def abstract_params(module: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """``(params, roles)`` with ``jax.ShapeDtypeStruct`` leaves: the structure, no computation."""
    return split_roles(jax.eval_shape(module.init, jax.random.key(0), *args, **kwargs)["params"])


def overlay_params(params: Any, source: Any) -> Any:
    """``params`` (a nested dict) with every leaf that ``source`` has at the same path replaced by
    source's; parameters only ``params`` has keep their values (a model that adds parameters to
    a trained one, e.g. a true-recurrence GateLoop's zero ``w_rec``). ``ValueError`` naming the
    path of a source parameter this model has no place for, or has with another shape."""
    flat, given = traverse_util.flatten_dict(params), traverse_util.flatten_dict(source)
    for path, value in given.items():
        name = "/".join(map(str, path))
        if path not in flat:
            raise ValueError(f"parameter {name} of the checkpoint has no place in this model")
        if flat[path].shape != value.shape:
            raise ValueError(f"parameter {name}: the checkpoint's shape {value.shape}, this "
                             f"model's {flat[path].shape}")
        flat[path] = value
    return traverse_util.unflatten_dict(flat)
