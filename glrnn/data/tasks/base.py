"""What every classification task hands to the model and the loop: arrays of one fixed shape.

A task is a loader or a seeded generator that returns a :class:`TaskData`: the task's
:class:`TaskInfo` and its splits (``train``, ``val``, ``test``), each a :class:`Split` of numpy
arrays. Everything downstream (batching, the :class:`~glrnn.models.Classifier`, losses, metrics)
reads only these, so a new task is a new function and nothing else.

Shapes (N examples, L = ``info.seq_len``):

* ``inputs``: int32 ``[N, L]`` token ids in ``[0, info.vocab_size)`` with ``info.pad_id`` after
  each sequence's end, or float32 ``[N, L, C]`` real values (pixels; C = ``info.input_dim``) with
  zeros after the end.
* ``lengths``: int32 ``[N]``, 1 <= length <= L: positions ``t < length`` are real, the rest padding
  (models mask it: pooling never averages over pads, a bidirectional pass starts at the end).
* ``labels``: int32, -1 where there is no target, else a class in ``[0, info.n_classes)``:
  ``[N]`` one label per sequence; ``[N, L]`` one per position (selective copy, MQAR: targets at
  some positions only); ``[N, L, K]`` K labels per position (the copy task's bits, n_classes 2).
* ``inputs2``, ``lengths2``: the second document of a two-tower task (retrieval), else None.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from glrnn.errors import ConfigError
from glrnn.task_config import TaskInfo


@dataclass(frozen=True)
class Split:
    """One split of a task (see the module docstring for shapes)."""

    inputs: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray
    inputs2: np.ndarray | None = None
    lengths2: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.lengths)

    def take(self, index: np.ndarray) -> Split:
        """The examples at ``index`` (int array), in that order."""
        pick = lambda a: None if a is None else a[index]  # noqa: E731
        return Split(self.inputs[index], self.lengths[index], self.labels[index],
                     pick(self.inputs2), pick(self.lengths2))


@dataclass(frozen=True)
class TaskData:
    """A task's info and its splits by name ("train", "val", "test")."""

    info: TaskInfo
    splits: dict[str, Split] = field(default_factory=dict)


def validate(data: TaskData) -> None:
    """``ConfigError`` naming the task, the split and what is wrong, before any training: an
    empty split, arrays of the wrong shape or dtype, lengths outside [1, L], token ids outside the
    vocabulary, labels outside [-1, n_classes), a split with no target at all."""
    info = data.info
    if "train" not in data.splits:
        raise ConfigError(f"task {info.name!r}: no train split (has {sorted(data.splits)})")
    for name, split in data.splits.items():
        where = f"task {info.name!r}, split {name!r}"
        n = len(split)
        if n == 0:
            raise ConfigError(f"{where}: the split is empty")
        _check_inputs(where, info, split.inputs, split.lengths, n)
        if info.two_tower:
            if split.inputs2 is None or split.lengths2 is None:
                raise ConfigError(f"{where}: a two-tower task needs inputs2 and lengths2")
            _check_inputs(where + " (second document)", info, split.inputs2, split.lengths2, n)
        labels = split.labels
        if labels.dtype != np.int32 or labels.shape[0] != n or labels.ndim > 3 or (
                labels.ndim >= 2 and labels.shape[1] != info.seq_len):
            raise ConfigError(f"{where}: labels {labels.dtype}{list(labels.shape)}: expected "
                              f"int32 [{n}], [{n}, {info.seq_len}] or [{n}, {info.seq_len}, K]")
        bad = (labels < -1) | (labels >= info.n_classes)
        if bad.any():
            i = int(np.argwhere(bad)[0][0])
            raise ConfigError(f"{where}: example {i} has label {int(labels[bad][0])}: expected "
                              f"0 <= label < {info.n_classes} (or -1 for no target)")
        if not (labels >= 0).any():
            raise ConfigError(f"{where}: no example has a target (every label is -1)")


def _check_inputs(where: str, info: TaskInfo, inputs: np.ndarray, lengths: np.ndarray,
                  n: int) -> None:
    seq = info.seq_len
    if info.tokens:
        ok = inputs.dtype == np.int32 and inputs.shape == (n, seq)
        expected = f"int32 [{n}, {seq}]"
    else:
        ok = inputs.dtype == np.float32 and inputs.shape == (n, seq, info.input_dim)
        expected = f"float32 [{n}, {seq}, {info.input_dim}]"
    if not ok:
        raise ConfigError(f"{where}: inputs {inputs.dtype}{list(inputs.shape)}: "
                          f"expected {expected}")
    if lengths.dtype != np.int32 or lengths.shape != (n,):
        raise ConfigError(f"{where}: lengths {lengths.dtype}{list(lengths.shape)}: expected "
                          f"int32 [{n}]")
    if lengths.min() < 1 or lengths.max() > seq:
        i = int(np.argmax((lengths < 1) | (lengths > seq)))
        raise ConfigError(f"{where}: example {i} has length {int(lengths[i])}: expected "
                          f"1 <= length <= {seq}")
    if info.tokens and (inputs.min() < 0 or inputs.max() >= info.vocab_size):
        raise ConfigError(f"{where}: token ids span [{inputs.min()}, {inputs.max()}]: expected "
                          f"0 <= id < {info.vocab_size}")
