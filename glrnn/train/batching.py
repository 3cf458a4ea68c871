"""Which examples form each training batch of a classification task, and how long it is.

* :func:`epoch_batches`: epoch e is a permutation of the N training examples drawn from
  ``(seed, e)``, cut into ``N // B`` batches (the remainder waits for a later epoch's
  permutation), so batch n is a function of n alone and a resumed run sees what an
  uninterrupted one would. With lengths given (``data.bucket_by_length``), each run of
  ``POOL_BATCHES`` batches of the permutation is sorted by length before it is cut and the
  batches are shuffled again, so a batch holds examples of similar length.
* :func:`cut_to_length`: a batch cut to the next power of two of its longest sequence (one
  compilation per power of two), which with length buckets saves most of the work on tasks
  whose lengths spread widely (ListOps, IMDb).
"""

from __future__ import annotations

import numpy as np

POOL_BATCHES = 32


def epoch_batches(n_examples: int, batch_size: int, seed: int, epoch: int,
                  lengths: np.ndarray | None = None) -> np.ndarray:
    """int [N // B, B]: the examples of each batch of ``epoch`` (from 0)."""
    rng = np.random.default_rng((seed, epoch))
    per_epoch = n_examples // batch_size
    order = rng.permutation(n_examples)[:per_epoch * batch_size]
    if lengths is None:
        return order.reshape(per_epoch, batch_size)
    pool = POOL_BATCHES * batch_size
    for start in range(0, len(order), pool):
        part = order[start:start + pool]
        order[start:start + pool] = part[np.argsort(lengths[part], kind="stable")]
    return order.reshape(per_epoch, batch_size)[rng.permutation(per_epoch)]


def bucket_length(longest: int, limit: int) -> int:
    """The next power of two >= ``longest`` (at least 16), at most ``limit``."""
    return min(limit, max(16, 1 << max(0, int(longest) - 1).bit_length()))


def cut_to_length(batch: dict[str, np.ndarray],
                  whole: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """``batch`` (inputs [B, L, ...], lengths [B], labels [B] or [B, L, ...], optionally inputs2,
    lengths2, and positions [B, P] with labels [B, P, ...] at them) with its position axis cut
    to :func:`bucket_length` of its longest sequence; every position cut off is padding (and
    carries no label). ``whole``: the lengths (and lengths2) of the whole batch when ``batch``
    holds some of its rows (one process's), so that every process cuts alike."""
    out, whole = dict(batch), batch if whole is None else whole
    for inputs, lengths in (("inputs", "lengths"), ("inputs2", "lengths2")):
        if inputs not in batch:
            continue
        limit = batch[inputs].shape[1]
        keep = bucket_length(whole[lengths].max(), limit)
        out[inputs] = batch[inputs][:, :keep]
        if inputs == "inputs" and batch["labels"].ndim > 1 and "positions" not in batch:
            out["labels"] = batch["labels"][:, :keep]
    return out
