"""The vector-state engine: h_t = a_t ⊙ h_{t-1} + b_t.

Every linear mixer with a vector state (LRU, GateLoop, RG-LRU, the diagonal RNN) calls
:func:`linear_scan`, and so does the matrix-state primitive between its chunks. Only recurrences
that are not linear in h (the dense RNN with a nonlinearity, the GRU, true-recurrence GateLoop)
run their own ``lax.scan``.

Shapes (time at ``axis``, default 1, e.g. ``[batch, length, channels]``):

* ``b``: ``[..., L, ...]`` real or complex.
* ``a``: same number of dimensions as ``b``, broadcastable to it. ``a.shape[axis] == L`` means a
  per-step (gated) decay; ``a.shape[axis] == 1`` a time-invariant one (the LRU's λ), which the
  methods exploit (powers instead of products, no ``[L, ...]`` copy of ``a``).
* ``h0``: ``b``'s shape without the time axis (broadcastable), or ``None`` for zeros.
* ``reset``: ``None`` or a bool array of ``b``'s rank, broadcastable to it, with the full length
  on the time axis: where it is True the state is cleared before the step, h_t = b_t (a packed
  document starts there; see :func:`segment_resets`). The scan then runs with the decay
  a_t ⊙ (1 − reset_t); a time-invariant ``a`` under ``sequential`` keeps its single copy and
  applies the mask inside the loop, so resets cost the LRU no ``[L, ...]`` array.
* returns ``h`` with ``b``'s shape (and the promoted dtype of ``a``, ``b``, ``h0``): every state,
  so ``h[:, -1]`` is the carry for the next call.

Methods (all exact, all differentiable, all checked against a plain loop in tests/test_scan.py):

* ``sequential``: ``lax.scan`` over time.
* ``associative``: ``lax.associative_scan`` (log depth; the GPU/TPU default).
* ``chunked``: sequential inside chunks of ``chunk_size`` steps, vectorised over all chunks at
  once, then one short scan over the chunk ends and an elementwise fix-up (L/C + C sequential
  steps instead of L).
* ``auto``: ``associative`` on GPU/TPU, ``sequential`` on CPU, where it measured fastest
  (docs/RESULTS.md, bench/lru_layer.py: the carry stays in cache and the input streams once).

Gradients do not differentiate through the scan's internals: a ``custom_vjp`` runs the adjoint,
which is the same recurrence backwards in time, g_t = ∂L/∂h_t + a_{t+1} ⊙ g_{t+1}, and then
∂L/∂b_t = g_t, ∂L/∂a_t = g_t ⊙ h_{t-1}, ∂L/∂h0 = a_0 ⊙ g_0 (JAX's convention for complex
values: the transpose of the linear map, no conjugation).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

METHODS = ("auto", "associative", "sequential", "chunked")


def resolve_method(method: str) -> str:
    """Map ``auto`` to the fastest method for the default backend."""
    if method not in METHODS:
        raise ValueError(f"scan method {method!r}: expected one of {', '.join(METHODS)}")
    if method != "auto":
        return method
    return "sequential" if jax.default_backend() == "cpu" else "associative"


def segment_resets(segment_ids: jax.Array) -> jax.Array:
    """bool [B, L] from int [B, L]: True where a position's segment differs from the one before
    it (position 0 is never a reset: it continues whatever carry is given)."""
    changed = segment_ids[:, 1:] != segment_ids[:, :-1]
    return jnp.concatenate([jnp.zeros((segment_ids.shape[0], 1), bool), changed], axis=1)


def segment_starts(pos: jax.Array, start: jax.Array,
                   segment_ids: jax.Array | None) -> jax.Array:
    """int [B, L]: where the segment of each position began, for positions ``pos`` int [B, L]
    (increasing along L) whose first segment began at ``start`` int [B] (the carry's): ``start``
    up to the first reset of ``segment_ids`` (int [B, L] or None), then the position of the
    latest reset. ``pos − segment_starts(...)`` is each position's offset in its document."""
    starts = jnp.broadcast_to(start[:, None], pos.shape)
    if segment_ids is None:
        return starts
    return lax.cummax(jnp.where(segment_resets(segment_ids), pos, starts), axis=1)


def channel_resets(segment_ids: jax.Array | None) -> jax.Array | None:
    """The ``reset`` for a mixer's scan over [B, L, channels]: bool [B, L, 1] from segment ids
    int [B, L] (None stays None)."""
    return None if segment_ids is None else segment_resets(segment_ids)[..., None]


def linear_scan(
    a: jax.Array,
    b: jax.Array,
    h0: jax.Array | None = None,
    *,
    reset: jax.Array | None = None,
    method: str = "auto",
    axis: int = 1,
    chunk_size: int = 64,
) -> jax.Array:
    """All states of h_t = a_t ⊙ h_{t-1} + b_t (see the module docstring for shapes)."""
    method = resolve_method(method)
    if a.ndim != b.ndim:
        raise ValueError(f"a has {a.ndim} dims and b {b.ndim}: give a the same rank "
                         "(size 1 on the time axis for a time-invariant a)")
    axis = axis % b.ndim
    length = b.shape[axis]
    if a.shape[axis] not in (1, length):
        raise ValueError(f"a.shape[{axis}]={a.shape[axis]}: expected 1 or the length {length}")
    if chunk_size <= 0:
        raise ValueError(f"chunk_size={chunk_size}: expected a positive integer")
    dtype = jnp.result_type(a, b, *(() if h0 is None else (h0,)))
    # Work time-major: [L, *rest].
    a_t = jnp.moveaxis(a.astype(dtype), axis, 0)
    b_t = jnp.moveaxis(b.astype(dtype), axis, 0)
    rest = b_t.shape[1:]
    a_t = jnp.broadcast_to(a_t, (a_t.shape[0], *rest))
    h0_t = jnp.zeros(rest, dtype) if h0 is None else jnp.broadcast_to(h0.astype(dtype), rest)
    if length == 0:
        return b
    keep = None
    if reset is not None:
        if reset.ndim != b.ndim or reset.shape[axis] != length:
            raise ValueError(f"reset.shape={reset.shape}: expected {b.ndim} dims with the "
                             f"length {length} on axis {axis}")
        keep = jnp.moveaxis(jnp.logical_not(reset), axis, 0).astype(dtype)
        if not (method == "sequential" and a_t.shape[0] == 1):
            a_t, keep = a_t * keep, None  # a per-step decay; autodiff sees the product
    h = _scan(a_t, b_t, h0_t, keep, method, chunk_size)
    return jnp.moveaxis(h, 0, axis)


# --- the forward kernels: time-major, a is [L or 1, *rest], b is [L, *rest], h0 is [*rest] ---


# ``keep`` ([L, broadcastable rest] of 0/1, or None) only ever accompanies a time-invariant a under
# ``sequential``: the decay of step t is then a * keep_t.


def _forward(a: jax.Array, b: jax.Array, h0: jax.Array, keep: jax.Array | None, method: str,
             chunk: int) -> jax.Array:
    if method == "sequential":
        return _sequential(a, b, h0, keep)
    if method == "associative":
        return _associative(a, b, h0)
    return _chunked(a, b, h0, chunk)


def _sequential(a: jax.Array, b: jax.Array, h0: jax.Array,
                keep: jax.Array | None = None) -> jax.Array:
    if a.shape[0] == 1:
        decay = a[0]
        if keep is not None:
            def step_reset(h, bk):
                h = decay * (bk[1] * h) + bk[0]
                return h, h

            return lax.scan(step_reset, h0, (b, keep))[1]

        def step(h, b_t):
            h = decay * h + b_t
            return h, h

        return lax.scan(step, h0, b)[1]

    def step_gated(h, ab):
        h = ab[0] * h + ab[1]
        return h, h

    return lax.scan(step_gated, h0, (a, b))[1]


def _combine(left, right):
    a_l, b_l = left
    a_r, b_r = right
    return a_r * a_l, a_r * b_l + b_r


def _associative(a: jax.Array, b: jax.Array, h0: jax.Array) -> jax.Array:
    a = jnp.broadcast_to(a, b.shape)
    b = b.at[0].add(a[0] * h0)
    return lax.associative_scan(_combine, (a, b), axis=0)[1]


def _chunked(a: jax.Array, b: jax.Array, h0: jax.Array, chunk: int) -> jax.Array:
    length, rest = b.shape[0], b.shape[1:]
    chunk = min(chunk, length)
    n_chunks = -(-length // chunk)
    pad = n_chunks * chunk - length
    invariant = a.shape[0] == 1
    if pad:  # padded steps come after every real one, so they change nothing before them
        b = jnp.concatenate([b, jnp.zeros((pad, *rest), b.dtype)])
        if not invariant:
            a = jnp.concatenate([a, jnp.ones((pad, *rest), a.dtype)])
    # [chunk, n_chunks, *rest]: the loop runs over the position inside a chunk, vectorised
    # over every chunk at once.
    b_c = jnp.swapaxes(b.reshape(n_chunks, chunk, *rest), 0, 1)
    zeros = jnp.zeros((n_chunks, *rest), b.dtype)
    if invariant:
        local = _sequential(a[:, None], b_c, zeros)
        # cumulative decay from a chunk's start: a^(t+1), t = 0..chunk-1
        powers = jnp.cumprod(jnp.broadcast_to(a, (chunk, *rest)), axis=0)
        cum = powers[:, None]
        ends_a = powers[-1:]
    else:
        a_c = jnp.swapaxes(a.reshape(n_chunks, chunk, *rest), 0, 1)
        local = _sequential(a_c, b_c, zeros)
        cum = jnp.cumprod(a_c, axis=0)
        ends_a = cum[-1]
    # state entering each chunk: H_c = A_c H_{c-1} + local_c[-1], H_{-1} = h0
    ends = _sequential(ends_a, local[-1], h0)
    starts = jnp.concatenate([h0[None], ends[:-1]])
    h = local + cum * starts[None]
    return jnp.swapaxes(h, 0, 1).reshape(n_chunks * chunk, *rest)[:length]


# --- gradients: the adjoint recurrence, run by the same kernel backwards in time ---


@partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def _scan(a: jax.Array, b: jax.Array, h0: jax.Array, keep: jax.Array | None, method: str,
          chunk: int) -> jax.Array:
    return _forward(a, b, h0, keep, method, chunk)


def _scan_fwd(a, b, h0, keep, method, chunk):
    h = _forward(a, b, h0, keep, method, chunk)
    return h, (a, h, h0, keep)


def _scan_bwd(method, chunk, residuals, dh):
    a, h, h0, keep = residuals
    invariant = a.shape[0] == 1
    # g_t = dh_t + a_{t+1} g_{t+1}: a forward scan over reversed time with decays a_{t+1}
    # (with keep: a * keep_{t+1}; the last step's next decay never matters, g starts at 0).
    a_next = a if invariant else jnp.concatenate([a[1:], jnp.zeros_like(a[:1])])[::-1]
    keep_next = None if keep is None else jnp.concatenate([keep[1:], keep[:1]])[::-1]
    g = _forward(a_next, dh[::-1], jnp.zeros_like(h0), keep_next, method, chunk)[::-1]
    h_prev = jnp.concatenate([h0[None], h[:-1]])
    if keep is not None:
        h_prev = keep * h_prev
    da = g * h_prev
    if invariant:
        da = da.sum(axis=0, keepdims=True)
    dh0 = a[0] * g[0] if keep is None else a[0] * keep[0] * g[0]
    return da, g, dh0, None if keep is None else jnp.zeros_like(keep)


_scan.defvjp(_scan_fwd, _scan_bwd)
