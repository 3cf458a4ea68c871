"""Shared steps of every loader: variable-length sequences into fixed arrays, seeded random
streams, and the splits put together (validation carved from train where the data have none,
train shuffled, caps applied).

Every random choice draws from ``stream(seed, purpose, ...)``, a generator seeded by the task
seed *and* a purpose number, so that e.g. the test split does not change when ``n_train`` does.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np

from glrnn.config import ConfigError
from glrnn.data.tasks.base import Split, TaskData, TaskInfo
from glrnn.task_config import TaskConfig

SPLITS = ("train", "val", "test")
# purposes of the random streams (each generator adds its own split index after it)
GENERATE, CARVE, CAP, PERMUTE = range(4)


def stream(seed: int, *purpose: int) -> np.random.Generator:
    """A numpy generator fixed by (seed, *purpose)."""
    return np.random.default_rng([seed, *purpose])


def pack(seqs: Sequence[Sequence[int] | np.ndarray], seq_len: int, pad_id: int, too_long: str,
         where: str) -> tuple[np.ndarray, np.ndarray]:
    """Token sequences -> (inputs int32 [N, seq_len] padded with ``pad_id``, lengths int32 [N]).

    An empty sequence is a ``ConfigError``; a sequence longer than ``seq_len`` is cut with a
    warning (``too_long="truncate"``) or a ``ConfigError`` (``"refuse"``), each naming ``where``,
    how many and the longest.
    """
    n = len(seqs)
    full = np.fromiter((len(s) for s in seqs), np.int64, count=n)
    if n and full.min() == 0:
        raise ConfigError(f"{where}: example {int(np.argmin(full))} is empty: expected at least "
                          "one token")
    over = full > seq_len
    if over.any():
        what = (f"{where}: {int(over.sum())} of {n} sequences are longer than "
                f"task.seq_len={seq_len} (the longest has {int(full.max())})")
        if too_long == "refuse":
            raise ConfigError(f"{what}: expected task.seq_len >= {int(full.max())} or "
                              "task.too_long='truncate'")
        warnings.warn(f"{what}: truncated to {seq_len}", stacklevel=2)
    lengths = np.minimum(full, seq_len).astype(np.int32)
    inputs = np.full((n, seq_len), pad_id, np.int32)
    for i, s in enumerate(seqs):
        inputs[i, :lengths[i]] = np.asarray(s[:lengths[i]], np.int32)
    return inputs, lengths


def full_lengths(n: int, seq_len: int) -> np.ndarray:
    """int32 [n] lengths of sequences that fill all ``seq_len`` steps."""
    return np.full(n, seq_len, np.int32)


def holdout(n: int, fraction: float, rng: np.random.Generator,
            where: str) -> tuple[np.ndarray, np.ndarray]:
    """(rest, held out) indices into n examples: a random ``fraction`` (at least one) held out,
    the rest in random order, the held-out ones in their original order."""
    if n < 2:
        raise ConfigError(f"{where}: {n} example(s): cannot hold out a validation or test "
                          "split (expected at least 2)")
    order = rng.permutation(n)
    k = min(n - 1, max(1, round(n * fraction)))
    return order[k:], np.sort(order[:k])


def class_labels(labels: Sequence[int] | np.ndarray, n_classes: int, where: str) -> np.ndarray:
    """int32 labels, every one in [0, n_classes), else a ConfigError naming the first bad one."""
    y = np.asarray(labels)
    bad = (y < 0) | (y >= n_classes)
    if bad.any():
        i = int(np.argmax(bad))
        raise ConfigError(f"{where}: example {i} has label {y[i]}: expected 0 <= label < "
                          f"{n_classes}")
    return y.astype(np.int32)


def cap(split: Split, n: int, rng: np.random.Generator, keep_order: bool) -> Split:
    """At most ``n`` examples (0: all), a seeded random subset; in ``split``'s order when
    ``keep_order``, else shuffled."""
    index = rng.permutation(len(split))
    if n:
        index = index[:n]
    return split.take(np.sort(index) if keep_order else index)


def assemble(info: TaskInfo, splits: dict[str, Split], cfg: TaskConfig) -> TaskData:
    """The loaded ``splits`` (train, test, maybe val) as a ``TaskData``: validation carved from
    train when missing (``task.val_fraction``), train shuffled, each split capped by
    ``task.n_train``/``n_val``/``n_test``; val and test keep their source order."""
    where = f"task {info.name!r}"
    for name in ("train", "test"):
        if name not in splits:
            raise ConfigError(f"{where}: no {name} split found")
    splits = dict(splits)
    if "val" not in splits:
        rest, held = holdout(len(splits["train"]), cfg.val_fraction, stream(cfg.seed, CARVE),
                             f"{where}, split 'train'")
        splits["train"], splits["val"] = splits["train"].take(rest), splits["train"].take(held)
    sizes = {"train": cfg.n_train, "val": cfg.n_val, "test": cfg.n_test}
    out = {name: cap(splits[name], sizes[name], stream(cfg.seed, CAP, i), name != "train")
           for i, name in enumerate(SPLITS)}
    return TaskData(info, out)


def generate(cfg: TaskConfig, defaults: tuple[int, int, int],
             make: Callable[[np.random.Generator, int], Split]) -> dict[str, Split]:
    """Splits of a generated task: ``make(rng, n)`` per split, n from ``task.n_train`` etc. (0:
    ``defaults``), each split from its own stream so that one split's size never changes
    another's examples."""
    sizes = (cfg.n_train, cfg.n_val, cfg.n_test)
    return {name: make(stream(cfg.seed, GENERATE, i), size or default)
            for i, (name, size, default) in enumerate(zip(SPLITS, sizes, defaults, strict=True))}
