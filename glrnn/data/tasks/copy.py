"""The copy task of the online-learning LRU paper: remember a binary pattern over a delay.

Source: Zucchet, Meier, Schug, Mujika, Sacramento, "Online learning of long-range dependencies"
(NeurIPS 2023), section 5.1; generator ``online_lru/dataloaders/copy.py`` of
github.com/NicolasZucchet/Online-learning-LR-dependencies (``CopyTask``, dataset
``copy-pad-classification``; ``experiments/figure2_AB.yaml``: pattern length 20, 20,000
training sequences, 1,000 validation and 1,000 test). That code passes ``padding_length=5`` but
the class reads ``pad_length`` (default 7), so its runs used a delay of 7, our default.

One sequence of length L = 2P + delay + 1, real-valued inputs with ``bits + 1`` channels:

* steps ``0 .. P-1``: the pattern, ``bits`` random bits per step (Bernoulli 1/2) in channels
  ``0 .. bits-1``;
* steps ``P .. P+delay-1``: zeros;
* step ``P+delay``: the recall marker, a 1 in the last channel;
* steps ``P+delay+1 .. L-1`` (the last P): zeros in the input; the targets are the pattern.

Labels ``[N, L, bits]``: the pattern's bits (classes 0/1) at the last P steps, -1 elsewhere.
Per-bit accuracy is over the labels >= 0; a sequence is right when all its P x bits are.
"""

from __future__ import annotations

import numpy as np

from glrnn.data.tasks.arrays import full_lengths, generate
from glrnn.data.tasks.base import Split, TaskData, TaskInfo
from glrnn.task_config import TaskConfig

DEFAULT_SIZES = (20_000, 1_000, 1_000)  # the paper's train / validation / test counts


def copy_split(rng: np.random.Generator, n: int, pattern: int, bits: int, delay: int) -> Split:
    """``n`` copy sequences: inputs float32 [n, L, bits+1], labels int32 [n, L, bits]."""
    length = 2 * pattern + delay + 1
    bits_drawn = rng.integers(0, 2, (n, pattern, bits))
    inputs = np.zeros((n, length, bits + 1), np.float32)
    inputs[:, :pattern, :bits] = bits_drawn
    inputs[:, pattern + delay, bits] = 1.0
    labels = np.full((n, length, bits), -1, np.int32)
    labels[:, length - pattern:] = bits_drawn
    return Split(inputs, full_lengths(n, length), labels)


def load_copy(cfg: TaskConfig) -> TaskData:
    c = cfg.copy
    info = TaskInfo("copy", n_classes=2, seq_len=cfg.length(), input_dim=c.bits + 1)
    make = lambda rng, n: copy_split(rng, n, c.pattern, c.bits, c.delay)  # noqa: E731
    return TaskData(info, generate(cfg, DEFAULT_SIZES, make))
