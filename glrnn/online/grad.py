"""Gradients by each learning rule, behind one signature:

    grad_fn = gradient_function(rule, model, step_loss)
    loss, grads = grad_fn(params, inputs, targets, resets=None)

the signature of ``jax.value_and_grad`` of a loss (so a training loop swaps one for the other).
``model`` is any module with the mixer protocol's ``__call__`` / ``step`` / ``init_carry``
(a mixer, a block, a LanguageModel); ``inputs`` [B, L, ...] are what ``model.step`` takes one
position of (tokens [B, L], features [B, L, H]); ``targets`` [B, L, ...]; ``resets`` bool [B, L]
or None clears the state before a position (packed documents). ``step_loss(out_t, target_t)
-> (loss sum, count)`` scores one position of the batch; the loss is Σ sums / Σ counts.

``bptt`` differentiates the parallel pass. The online rules run ``model.step`` position by
position in a ``lax.fori_loop`` whose carry holds the model's state, the sensitivities and the
gradient sum (memory constant in L). At each step, inside ``model.step``, a flax method
interceptor replaces every registered mixer's step by its cell's (glrnn/online/cells.py) with
the state before the step held fixed, adds a zero perturbation ε to the new state (the
gradient with respect to ε is the spatially backpropagated error δ_t = ∂l_t/∂h_t), and records
the diagonal Jacobian J_t and the immediate Jacobian I_t; glrnn/online/rtrl.py does the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from glrnn.online.cells import Cell, Layout, cell_of
from glrnn.online.rtrl import Tree, credit, immediate_jacobian, propagate
from glrnn.online.rules import RULES

Params = Any
StepLoss = Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]
GradFn = Callable[..., tuple[jax.Array, Params]]
TRACING_RULES = ("online_full", "online_snap1")  # the rules that carry sensitivities


class OnlineState(NamedTuple):
    """What the online rules carry from one position to the next: the model's carry and, per
    instrumented layer, its sensitivities {param name: [B, *shape]}."""

    carry: Any
    traces: dict[str, Tree]


@dataclass(frozen=True)
class Layer:
    """A mixer that the rules instrument: where its parameters are, its layout, its state."""

    path: tuple[str, ...]
    layout: Layout
    state: jax.ShapeDtypeStruct


class _Instrument:
    """flax interceptor: each registered mixer's ``step`` through its cell."""

    def __init__(self, rule: str, eps: dict[str, jax.Array] | None = None) -> None:
        self.rule, self.eps = rule, eps
        self.layers: dict[str, Layer] = {}
        self.records: dict[str, tuple[jax.Array, Tree]] = {}

    def __call__(self, next_fun, args, kwargs, context):
        module = context.module
        cell = cell_of(module)
        if cell is None or context.method_name != "step" or module.scope is None:
            return next_fun(*args, **kwargs)
        x_t, h_prev = args
        p = module.variables["params"]
        h = cell.transition(module, p, h_prev, x_t, self.rule == "online_spatial")
        key = "/".join(module.scope.path)
        self.layers[key] = Layer(tuple(module.scope.path), cell.layout(module),
                                 jax.ShapeDtypeStruct(h.shape, h.dtype))
        if self.eps is not None:
            h = h + self.eps[key]
            self.records[key] = _trace_terms(cell, module, p, h_prev, x_t)
        return cell.readout(module, p, h, x_t), h


def _trace_terms(cell: Cell, module: Any, p: Any, h_prev: jax.Array,
                 x_t: jax.Array) -> tuple[jax.Array, Tree]:
    """(J_t [B, N], I_t {name: [B, *shape]}) of one mixer at one step (no gradient flows)."""
    p, h_prev, x_t = jax.lax.stop_gradient((dict(p), h_prev, x_t))
    theta = {name: p[name] for name in cell.layout(module)}

    def transition(th: Tree, h: jax.Array, x: jax.Array) -> jax.Array:
        return cell.transition(module, {**p, **th}, h, x, False)

    return (cell.diag_jacobian(module, p, h_prev, x_t),
            immediate_jacobian(transition, theta, h_prev, x_t))


def dropout(key: jax.Array | None) -> dict[str, Any]:
    """The keyword arguments of a model's ``apply`` for dropout from ``key`` (None: off)."""
    return {} if key is None else {"deterministic": False, "rngs": {"dropout": key}}


def _apply_step(rule: str, model: nn.Module, params: Params, x_t: jax.Array, carry: Any,
                eps: dict[str, jax.Array] | None = None,
                key: jax.Array | None = None) -> tuple[Any, Any, _Instrument]:
    instrument = _Instrument(rule, eps)
    with nn.intercept_methods(instrument):
        out, carry = model.apply({"params": params}, x_t, carry, method="step", **dropout(key))
    return out, carry, instrument


def init_state(rule: str, model: nn.Module, params: Params, x_t: jax.Array
               ) -> tuple[OnlineState, dict[str, Layer]]:
    """The zero state for a batch like ``x_t`` [B, ...] and the instrumented layers (found by
    abstract evaluation of one step: nothing is computed)."""
    batch = x_t.shape[0]
    carry = model.apply({"params": params}, batch, method="init_carry")
    layers, step_carry = _discover(rule, model, params, x_t, carry)
    # the state in the dtypes a step returns (wider than init_carry's under float64)
    carry = jax.tree.map(lambda c, s: c.astype(s.dtype), carry, step_carry)
    traces = {}
    if rule in TRACING_RULES:
        for key, layer in layers.items():
            p = _at(params, layer.path)
            traces[key] = {name: jnp.zeros((batch, *p[name].shape), layer.state.dtype)
                           for name in layer.layout}
    return OnlineState(carry, traces), layers


def _discover(rule: str, model: nn.Module, params: Params, x_t: jax.Array,
              carry: Any) -> tuple[dict[str, Layer], Any]:
    """The instrumented layers and the abstract carry that one step returns."""
    found: dict[str, Layer] = {}

    def run(p, x, c):
        _, carry, instrument = _apply_step(rule, model, p, x, c)
        found.update(instrument.layers)
        return carry

    return found, jax.eval_shape(run, params, x_t, carry)


def online_step(rule: str, model: nn.Module, step_loss: StepLoss, layers: dict[str, Layer],
                params: Params, state: OnlineState, x_t: jax.Array, target_t: jax.Array,
                reset_t: jax.Array | None = None, key: jax.Array | None = None
                ) -> tuple[jax.Array, jax.Array, Params, OnlineState]:
    """One position: x_t [B, ...], target_t [B, ...], reset_t bool [B] or None, dropout key or
    None -> (loss sum, count, gradient of the loss sum by ``rule``, next state)."""
    carry, traces = state
    if reset_t is not None:
        carry, traces = _clear_rows(jnp.logical_not(reset_t), (carry, traces))
    tracing = rule in TRACING_RULES
    eps = {key: jnp.zeros(layer.state.shape, layer.state.dtype)
           for key, layer in layers.items()} if tracing else {}

    def loss_at(params: Params, eps: dict[str, jax.Array]):
        out, new_carry, instrument = _apply_step(rule, model, params, x_t,
                                                 jax.lax.stop_gradient(carry),
                                                 eps if tracing else None, key)
        loss, count = step_loss(out, target_t)
        return loss, (count, new_carry, instrument.records)

    (loss, (count, carry, records)), (grads, delta) = jax.value_and_grad(
        loss_at, argnums=(0, 1), has_aux=True)(params, eps)
    new_traces = {}
    for key in traces:
        layer, (jac, immediate) = layers[key], records[key]
        carried = propagate(traces[key], jac, layer.layout)
        grads = _add_at(grads, layer.path, credit(delta[key], carried, layer.layout))
        new_traces[key] = {name: carried[name] + immediate[name] for name in carried}
    return loss, count, grads, OnlineState(carry, new_traces)


def sequence_loss(model: nn.Module, step_loss: StepLoss, params: Params, inputs: jax.Array,
                  targets: jax.Array, resets: jax.Array | None = None,
                  carry: Any = None, key: jax.Array | None = None
                  ) -> tuple[jax.Array, tuple[jax.Array, Any]]:
    """The parallel pass: (Σ loss sums, (Σ counts, final carry)); ``carry`` None starts from
    zero; ``resets`` also clear a given carry at position 0; ``key`` None: no dropout."""
    ids = None
    if resets is not None:
        ids = jnp.cumsum(resets, axis=1)
        if carry is not None:
            carry = _clear_rows(jnp.logical_not(resets[:, 0]), carry)
    out, carry = model.apply({"params": params}, inputs, carry, segment_ids=ids, **dropout(key))
    sums, counts = jax.vmap(step_loss, in_axes=(1, 1))(out, targets)
    return sums.sum(), (counts.sum(), carry)


def gradient_function(rule: str, model: nn.Module, step_loss: StepLoss) -> GradFn:
    """``(params, inputs [B, L, ...], targets [B, L, ...], resets bool [B, L] | None,
    key | None) -> (mean loss, gradient)`` by ``rule`` (one of glrnn.online.rules.RULES); a
    dropout ``key`` turns dropout on (position t of the online rules: ``fold_in(key, t)``)."""
    if rule not in RULES:
        raise ValueError(f"learning rule {rule!r}: expected one of {', '.join(RULES)}")
    if rule == "bptt":
        def mean_loss(params, inputs, targets, resets=None, key=None):
            total, (count, _) = sequence_loss(model, step_loss, params, inputs, targets, resets,
                                              key=key)
            return total / count

        return jax.value_and_grad(mean_loss)

    def grad_fn(params: Params, inputs: jax.Array, targets: jax.Array,
                resets: jax.Array | None = None,
                key: jax.Array | None = None) -> tuple[jax.Array, Params]:
        state, layers = init_state(rule, model, params, inputs[:, 0])

        def body(t, acc):
            total, count, grads, state = acc
            reset_t = None if resets is None else resets[:, t]
            key_t = None if key is None else jax.random.fold_in(key, t)
            loss, n, g, state = online_step(rule, model, step_loss, layers, params, state,
                                            inputs[:, t], targets[:, t], reset_t, key_t)
            return total + loss, count + n, jax.tree.map(jnp.add, grads, g), state

        loss, count = jax.eval_shape(lambda: step_loss(
            _apply_step(rule, model, params, inputs[:, 0], state.carry)[0], targets[:, 0]))
        zeros = (jnp.zeros((), loss.dtype), jnp.zeros((), count.dtype))
        # positions are read in place (no time-major copy of the inputs)
        total, count, grads, _ = jax.lax.fori_loop(
            0, inputs.shape[1], body, (*zeros, jax.tree.map(jnp.zeros_like, params), state))
        return total / count, jax.tree.map(lambda g: g / count, grads)

    return grad_fn


# --- small tree helpers ---


def _clear_rows(keep: jax.Array, tree: Any) -> Any:
    """Every leaf [B, ...] of ``tree`` with the rows where ``keep`` [B] is False set to zero."""
    return jax.tree.map(lambda v: jnp.where(keep.reshape(-1, *([1] * (v.ndim - 1))), v, 0), tree)


def _at(tree: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        tree = tree[name]
    return tree


def _add_at(tree: Any, path: tuple[str, ...], update: Tree) -> Any:
    """``tree`` with ``update`` {name: array} added to the entries of the sub-dict at ``path``."""
    if not path:
        return {**tree, **{name: tree[name] + g for name, g in update.items()}}
    return {**tree, path[0]: _add_at(tree[path[0]], path[1:], update)}
