"""The matrix-state engine: gated linear attention, GateLoop's query/key/value recurrence
(Katsch 2023, sections 3 and 4).

Per head, with key width K and value width V:

    H_t = diag(a_t) H_{t−1} + k_t v_tᵀ          H_t ∈ C^{K×V} (R^{K×V} for real decays)
    y_t = Re(q_tᵀ H_t)                           y_t ∈ R^V

The transition comes in log form, a_t = exp(log_a_t + i·phase_t) (``phase`` None: real decays),
so that a decay near 0 stays a finite number (log_a = −80) instead of a tiny product to divide
by. q and k are real, so Re(q_tᵀ H_t) = q_tᵀ Re(H_t).

Shapes: q, k, log_a, phase [B, L, heads, K]; v [B, L, heads, V]; h0 [B, heads, K, V] (complex
when ``phase`` is given, else real; None: zeros); reset bool [B, L] or None (True: the state is
cleared before the step, H_t = k_t v_tᵀ: a packed document starts there, see
:func:`glrnn.scan.segment_resets`). Returns (y [B, L, heads, V], H_L [B, heads, K, V]), computed in
float32 or wider whatever the inputs' dtype (bf16 projections, a float32/complex64 state).

Methods (each checked against a plain loop in value and gradient, tests/test_gla.py):

* ``sequential``: ``lax.scan`` over time with the [B, heads, K, V] state (:func:`gla_step`, which
  the mixers' ``step`` also uses to decode).
* ``associative``: the paper's parallel mode: every state H_t through :func:`linear_scan`, then
  the reads. Memory O(L·K·V) per head.
* ``chunked``: the chunkwise-parallel form (GLA, Mamba-2, flash-linear-attention): chunks of C
  positions; inside a chunk causal masked matmuls with the decays between positions, between
  chunks :func:`linear_scan` over one state per chunk. Memory O(L·(K + V)·log C + (L/C)·K·V).
  C is ``chunk_size`` (a power of two), or the next power of two ≥ L when that is smaller; a
  length that C does not divide is padded at the end (steps with a = 1 and k = v = 0, which
  change nothing) and the padding cut from y.
* ``auto``: ``chunked`` (fastest on CPU at every length measured, bench/gla.py).

``grad`` picks how ``chunked`` is differentiated: ``autodiff`` (JAX through the forward, which
keeps every level's intra-chunk temporaries), or ``custom``, its adjoint as a ``custom_vjp``
that saves only the inputs and the state entering each chunk and recomputes the rest chunk by
chunk (below). Either gives the loop's gradient. ``auto`` (the default): ``custom`` from
``CUSTOM_FROM_CHUNKS`` chunks on, else ``autodiff`` — measured on CPU by bench/gla.py ``--grad``
(B 8, 4 heads, K = V = 64, chunks of 64): autodiff 13 % and 10 % faster at 16 and 64 chunks,
even at 128 (+1.5 % custom), custom 38 % faster at 256; custom always half the memory.

Inside a chunk let R_t + iΘ_t = Σ_{r ≤ t} (log_a_r + i·phase_r) (r from the chunk's start). The
weight of k_s v_sᵀ in H_t, for s ≤ t in one chunk and segment, is e^{R_t − R_s} e^{i(Θ_t − Θ_s)}.

* Phase: unit modulus, so it factors exactly: e^{iΘ_t} goes with q_t, e^{−iΘ_s} with k_s, and
  Re(q̃_t · k̃_s) = q_t·k_s cos(Θ_t − Θ_s) is one real dot product of [q cos Θ, q sin Θ] with
  [k cos Θ, k sin Θ] (2K wide).
* Magnitude: e^{R_t − R_s} ≤ 1, but e^{−R_s} alone overflows as soon as a few decays are small,
  and e^{R_t} underflows, so the usual factorisation (q_t e^{R_t})·(k_s e^{−R_s}) is never
  used. Every factor formed here is e^{R_x − R_y} with y at or before x, hence ≤ 1 (what
  underflows to 0 is below float precision in the true value too):
  - between chunks: k_s e^{R_C − R_s} into the chunk's state, q_t e^{R_t} to read the state
    entering the chunk, e^{R_C + iΘ_C} the chunk's decay;
  - inside a chunk, a dyadic split of the C × C lower triangle: at level ℓ the positions form
    pairs of adjacent blocks of b = 2^ℓ (left block s, right block t); with m the left block's
    last position, e^{R_t − R_s} = e^{R_t − R_m} · e^{R_m − R_s}, both ≤ 1, so the pair's scores
    are one matmul of q_t e^{R_t − R_m} with k_s e^{R_m − R_s}. The log2 C levels cover every
    s < t once; s = t is q_t·k_t. The work is that of the masked C × C matmul, (2K + V)·C/2
    per position, and no [C, C, K] tensor is formed.
* Resets: a segment index inside each chunk (the count of resets so far); a pair (t, s) counts
  only within one segment, the entering state only before the chunk's first reset, and a chunk
  with a reset passes no state on. The decay of a reset step itself is never used.

The adjoint (``grad="custom"``), with H_c the state entering chunk c (H_0 = h0, H_n = H_L),
H_{c+1} = D_c ⊙ H_c + U_c (D_c the chunk's decay, 0 when it holds a reset):
  1. dH_c = D_c ⊙ dH_{c+1} + Σ_t q̃_t ⊗ dy_t (q̃_t = q_t e^{R_t + iΘ_t}, the read of H_c, zero
     after the chunk's first reset), backwards over chunks from dH_n = ∂L/∂H_L; dh0 = dH_0. In
     JAX's convention for complex cotangents (∂L/∂Re − i ∂L/∂Im: the transpose of the linear
     map) D_c is not conjugated; in terms of the gradient ∂L/∂Re + i ∂L/∂Im it is conj(D_c).
     A chunk with a reset has D_c = 0, which stops the recurrence there.
  2. Per chunk, one at a time (``lax.map``), the ``jax.vjp`` of the chunk's own computation
     given H_c: (q, k, v, R, Θ) -> (y, D_c ⊙ H_c + U_c), at the cotangents (dy, dH_{c+1}).
     It runs through the very factors of the forward (e^{R_x − R_y} ≤ 1 with y at or before
     x, unit phases, D_c), multiplied by cotangents, so it is as stable as the forward: no
     division, no e^{−R}. R and Θ reach log_a and the phase through their cumsums (the
     transpose: reversed cumsums).
Memory: the inputs, the n states H_c and one chunk's temporaries at a time, against autodiff's
every level of every chunk (half autodiff's XLA temporaries at B 8, 4 heads, K = V = 64, L 4k).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from glrnn.scan.linear import METHODS, linear_scan

GRADS = ("auto", "autodiff", "custom")
CUSTOM_FROM_CHUNKS = 128  # grad="auto" differentiates by the adjoint from this many chunks on


def transition(log_a: jax.Array, phase: jax.Array | None = None) -> jax.Array:
    """a = exp(log_a + i·phase) (real exp(log_a) without a phase): [...] -> [...]."""
    return jnp.exp(log_a) if phase is None else jnp.exp(log_a + 1j * phase)


def gla_step(q_t: jax.Array, k_t: jax.Array, v_t: jax.Array, a_t: jax.Array,
             h: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One step: q_t, k_t, a_t [..., K], v_t [..., V], h [..., K, V] -> (y_t [..., V], h_t)."""
    h = a_t[..., None] * h + k_t[..., :, None] * v_t[..., None, :]
    return jnp.einsum("...k,...kv->...v", q_t, jnp.real(h)), h


def gated_linear_attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    log_a: jax.Array,
    phase: jax.Array | None = None,
    h0: jax.Array | None = None,
    *,
    reset: jax.Array | None = None,
    method: str = "auto",
    chunk_size: int = 64,
    grad: str = "auto",
) -> tuple[jax.Array, jax.Array]:
    """(y, H_L) of the gated linear attention (see the module docstring for shapes). ``grad``:
    how ``chunked`` is differentiated, by autodiff, by its adjoint ("custom"), or by the one
    measured faster for the number of chunks ("auto")."""
    if method not in METHODS:
        raise ValueError(f"scan method {method!r}: expected one of {', '.join(METHODS)}")
    if grad not in GRADS:
        raise ValueError(f"grad {grad!r}: expected one of {', '.join(GRADS)}")
    if grad == "custom" and method not in ("auto", "chunked"):
        raise ValueError(f"grad 'custom' with method {method!r}: the adjoint is the chunked "
                         "method's (give method='chunked' or grad='autodiff')")
    if chunk_size <= 0 or chunk_size & (chunk_size - 1):
        raise ValueError(f"chunk_size={chunk_size}: expected a power of two (chunks are split "
                         "in halves)")
    batch, length, heads, width_k = q.shape
    width_v = v.shape[-1]
    for name, x in (("k", k), ("log_a", log_a), ("phase", phase)):
        if x is not None and x.shape != q.shape:
            raise ValueError(f"{name}.shape={x.shape}: expected q's shape {q.shape}")
    if v.shape[:3] != q.shape[:3]:
        raise ValueError(f"v.shape={v.shape}: expected {(*q.shape[:3], width_v)}")
    if reset is not None and reset.shape != (batch, length):
        raise ValueError(f"reset.shape={reset.shape}: expected {(batch, length)}")
    real = jnp.result_type(q, k, v, log_a, jnp.float32)
    state = real if phase is None else jnp.result_type(real, jnp.complex64)
    q, k, v, log_a = (x.astype(real) for x in (q, k, v, log_a))
    phase = None if phase is None else phase.astype(real)
    shape = (batch, heads, width_k, width_v)
    h0 = jnp.zeros(shape, state) if h0 is None else jnp.broadcast_to(h0, shape).astype(state)
    if length == 0:
        return jnp.zeros((batch, 0, heads, width_v), real), h0
    if method == "associative":
        return _associative(q, k, v, transition(log_a, phase), h0, reset)
    if method == "sequential":
        return _sequential(q, k, v, transition(log_a, phase), h0, reset)
    return _chunked(q, k, v, log_a, phase, h0, reset, chunk_size, grad)


def _sequential(q, k, v, a, h0, reset):
    if reset is not None:
        a = jnp.where(reset[..., None, None], 0, a)

    def step(h, inputs):
        y_t, h = gla_step(*inputs, h)
        return h, y_t

    h, y = lax.scan(step, h0, tuple(jnp.swapaxes(x, 0, 1) for x in (q, k, v, a)))
    return jnp.swapaxes(y, 0, 1), h


def _associative(q, k, v, a, h0, reset):
    states = linear_scan(a[..., None], k[..., :, None] * v[..., None, :], h0,
                         reset=None if reset is None else reset[:, :, None, None, None],
                         method="associative")
    return jnp.einsum("blhk,blhkv->blhv", q, jnp.real(states)), states[:, -1]


def _chunked(q, k, v, log_a, phase, h0, reset, chunk_size, grad):
    batch, length, heads, _ = q.shape
    chunk = min(chunk_size, 1 << (length - 1).bit_length())
    n_chunks = -(-length // chunk)
    pad = n_chunks * chunk - length

    def chunks(x: jax.Array) -> jax.Array:
        """[B, L, heads, F] -> [B, heads, n, C, F], padded with zeros (a = 1, k = v = 0)."""
        x = jnp.pad(x, ((0, 0), (0, pad), (0, 0), (0, 0)))
        return jnp.moveaxis(x.reshape(batch, n_chunks, chunk, heads, -1), 3, 1)

    q, k, v = chunks(q), chunks(k), chunks(v)
    r = jnp.cumsum(chunks(log_a), axis=-2)  # R_t: [B, heads, n, C, K]
    theta = None if phase is None else jnp.cumsum(chunks(phase), axis=-2)
    segment = None
    if reset is not None:  # [B, 1, n, C]: resets so far inside the chunk
        flags = jnp.pad(reset, ((0, 0), (0, pad))).reshape(batch, 1, n_chunks, chunk)
        segment = jnp.cumsum(flags.astype(jnp.int32), axis=-1)
    if grad == "auto":
        grad = "custom" if n_chunks >= CUSTOM_FROM_CHUNKS else "autodiff"
    by_chunk = _by_chunk_custom if grad == "custom" else _by_chunk
    y, h_last = by_chunk(q, k, v, r, theta, segment, h0)
    y = jnp.moveaxis(y, 1, 3).reshape(batch, n_chunks * chunk, heads, -1)[:, :length]
    return y, h_last


def _rotated(x: jax.Array, theta: jax.Array | None) -> jax.Array:
    """[..., K] -> [..., P, K]: x itself (P = 1), or x cos Θ and x sin Θ (P = 2)."""
    if theta is None:
        return x[..., None, :]
    return jnp.stack([x * jnp.cos(theta), x * jnp.sin(theta)], axis=-2)


def _intra_chunk(q, k, v, r, theta, segment):
    """Σ over s ≤ t in one chunk and segment: [B, heads, n, C, V] (see the module docstring)."""
    chunk = q.shape[-2]
    y = jnp.sum(q * k, axis=-1, keepdims=True) * v  # s = t: the decay is 1, the phase cancels
    q_rot, k_rot = _rotated(q, theta), _rotated(k, theta)  # [..., C, P, K]
    block = 1
    while block < chunk:
        def pairs(x: jax.Array, block: int = block) -> jax.Array:
            """[..., C, *F] -> [..., C/2b, 2, b, *F]: adjacent blocks of b as (left, right)."""
            return x.reshape(*x.shape[:3], chunk // (2 * block), 2, block, *x.shape[4:])

        r_pairs = pairs(r)
        r_mid = r_pairs[..., 0, -1:, :]  # the left block's last position: [..., C/2b, 1, K]
        q_hat = pairs(q_rot)[..., 1, :, :, :] * jnp.exp(r_pairs[..., 1, :, :] - r_mid)[..., None, :]
        k_hat = pairs(k_rot)[..., 0, :, :, :] * jnp.exp(r_mid - r_pairs[..., 0, :, :])[..., None, :]
        scores = jnp.einsum("...tpk,...spk->...ts", q_hat, k_hat)
        if segment is not None:
            s = pairs(segment[..., None])[..., 0]
            scores = jnp.where(s[..., 1, :, None] == s[..., 0, None, :], scores, 0)
        out = jnp.einsum("...ts,...sv->...tv", scores, pairs(v)[..., 0, :, :])
        y = y + jnp.stack([jnp.zeros_like(out), out], axis=-3).reshape(y.shape)
        block *= 2
    return y


def _transfer(k: jax.Array, v: jax.Array, r: jax.Array, theta: jax.Array | None,
              segment: jax.Array | None) -> tuple[jax.Array, jax.Array]:
    """(decay [B, heads, n, K], update [B, heads, n, K, V]) of each chunk: the state at its end
    is decay ⊙ (the state entering it) + update. k, r, theta [B, heads, n, C, K], v
    [B, heads, n, C, V], segment [B, 1, n, C] or None."""
    r_end = r[..., -1:, :]  # [B, heads, n, 1, K]
    k_end = k * jnp.exp(r_end - r)  # k_s e^{R_C − R_s}
    decay = jnp.exp(r_end[..., 0, :])
    if segment is not None:
        k_end = jnp.where((segment == segment[..., -1:])[..., None], k_end, 0)
        decay = jnp.where(segment[..., -1:] == 0, decay, 0)
    if theta is None:
        return decay, jnp.einsum("...sk,...sv->...kv", k_end, v)
    angle = theta[..., -1:, :] - theta
    update = (jnp.einsum("...sk,...sv->...kv", k_end * jnp.cos(angle), v)
              + 1j * jnp.einsum("...sk,...sv->...kv", k_end * jnp.sin(angle), v))
    return decay * jnp.exp(1j * theta[..., -1, :]), update


def _read(q: jax.Array, r: jax.Array, theta: jax.Array | None, segment: jax.Array | None,
          entering: jax.Array) -> jax.Array:
    """The reads Re(q_t e^{R_t + iΘ_t} H) of the state H entering each chunk (before the
    chunk's first reset): q, r, theta [B, heads, n, C, K], entering [B, heads, n, K, V] ->
    [B, heads, n, C, V]."""
    q_start = q * jnp.exp(r)  # q_t e^{R_t}
    if segment is not None:
        q_start = jnp.where((segment == 0)[..., None], q_start, 0)
    if theta is None:
        return jnp.einsum("...tk,...kv->...tv", q_start, entering)
    return (jnp.einsum("...tk,...kv->...tv", q_start * jnp.cos(theta), jnp.real(entering))
            - jnp.einsum("...tk,...kv->...tv", q_start * jnp.sin(theta), jnp.imag(entering)))


def _forward(q: jax.Array, k: jax.Array, v: jax.Array, r: jax.Array, theta: jax.Array | None,
             segment: jax.Array | None, h0: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(y [B, heads, n, C, V], H_L [B, heads, K, V], the state entering each chunk
    [B, heads, n, K, V]) from chunked inputs: q, k, r, theta [B, heads, n, C, K], v
    [B, heads, n, C, V], segment [B, 1, n, C] or None."""
    decay, update = _transfer(k, v, r, theta, segment)
    # the state at each chunk's end: H_c = decay_c H_{c−1} + update_c, H_{−1} = h0
    ends = linear_scan(decay[..., None], update, h0, axis=2)
    entering = jnp.concatenate([h0[:, :, None], ends[:, :, :-1]], axis=2)
    y = _intra_chunk(q, k, v, r, theta, segment) + _read(q, r, theta, segment, entering)
    return y, ends[:, :, -1], entering


def _by_chunk(q: jax.Array, k: jax.Array, v: jax.Array, r: jax.Array, theta: jax.Array | None,
              segment: jax.Array | None, h0: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(y, H_L) of :func:`_forward`, differentiated by autodiff."""
    return _forward(q, k, v, r, theta, segment, h0)[:2]


@jax.custom_vjp
def _by_chunk_custom(q: jax.Array, k: jax.Array, v: jax.Array, r: jax.Array,
                     theta: jax.Array | None, segment: jax.Array | None,
                     h0: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(y, H_L) of :func:`_forward`, differentiated by the adjoint of the module docstring."""
    return _by_chunk(q, k, v, r, theta, segment, h0)


def _by_chunk_custom_fwd(q, k, v, r, theta, segment, h0):
    y, h_last, entering = _forward(q, k, v, r, theta, segment, h0)
    return (y, h_last), (q, k, v, r, theta, segment, entering)


def _by_chunk_custom_bwd(residuals, cotangents):
    """Steps 1 and 2 of the adjoint (module docstring); segment gets no cotangent."""
    q, k, v, r, theta, segment, entering = residuals
    dy, dh_last = cotangents
    decay, _ = _transfer(k, v, r, theta, segment)
    (from_reads,) = jax.vjp(functools.partial(_read, q, r, theta, segment), entering)[1](dy)
    # the state entering each chunk: dH_c = decay_c ⊙ dH_{c+1} + from_reads_c, dH_n = dH_L, run
    # as a forward scan over the reversed chunks (a chunk with a reset has decay 0: it stops)
    d_entering = linear_scan(decay[:, :, ::-1, :, None], from_reads[:, :, ::-1], dh_last,
                             axis=2)[:, :, ::-1]
    d_leaving = jnp.concatenate([d_entering[:, :, 1:], dh_last[:, :, None]], axis=2)

    def chunk_grads(xs):
        """The gradients of q, k, v, r, theta from one chunk (arrays [B, heads, 1, ...])."""
        q, k, v, r, theta, segment, entering, dy, d_leaving = xs

        def local(q, k, v, r, theta):
            """The chunk given the state entering it: (y, the state leaving it)."""
            decay, update = _transfer(k, v, r, theta, segment)
            y = _intra_chunk(q, k, v, r, theta, segment) + _read(q, r, theta, segment, entering)
            return y, decay[..., None] * entering + update

        return jax.vjp(local, q, k, v, r, theta)[1]((dy, d_leaving))

    # one chunk at a time: only one chunk's intra-chunk temporaries exist at once
    xs = (q, k, v, r, theta, segment, entering, dy, d_leaving)
    grads = lax.map(chunk_grads, jax.tree.map(lambda x: jnp.moveaxis(x, 2, 0)[:, :, :, None], xs))
    grads = jax.tree.map(lambda g: jnp.moveaxis(g[:, :, :, 0], 0, 2), grads)
    return (*grads, None, d_entering[:, :, 0])


_by_chunk_custom.defvjp(_by_chunk_custom_fwd, _by_chunk_custom_bwd)
