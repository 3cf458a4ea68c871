"""Selective copying (Mamba): data tokens scattered among noise, reproduced in order after
markers.

Source: Gu & Dao, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces" (2023),
section 4.1.1 and appendix E.1 (sequence length 4096, vocabulary 16, 16 tokens to memorise);
the generator is ``torch_copying_data(L, M, A, variable=True)`` in
``src/dataloaders/datasets/copying.py`` of github.com/state-spaces/s4 (same authors).

With M = ``task.selective_copy.tokens``, A = ``task.selective_copy.vocab`` and length L:

* the first L - M steps: noise (id 0) with M data tokens, uniform in ``[1, A-2]``, at M distinct
  random positions (in increasing order);
* the last M steps: the marker (id A-1); at these steps the targets are the data tokens in the
  order they appeared.

Labels ``[N, L]``: the data tokens at the last M steps, -1 elsewhere (n_classes A). The paper
trains on fresh batches; here the splits are fixed arrays of the sizes below (our choice) or
``task.n_train`` etc.
"""

from __future__ import annotations

import numpy as np

from glrnn.data.tasks.arrays import full_lengths, generate
from glrnn.data.tasks.base import Split, TaskData, TaskInfo
from glrnn.task_config import TaskConfig

DEFAULT_SIZES = (10_000, 1_000, 1_000)
NOISE = 0


def selective_copy_split(rng: np.random.Generator, n: int, length: int, tokens: int,
                         vocab: int) -> Split:
    """``n`` sequences: inputs int32 [n, length], labels int32 [n, length]."""
    context = length - tokens
    data = rng.integers(1, vocab - 1, (n, tokens))
    where = np.sort([rng.choice(context, tokens, replace=False) for _ in range(n)], axis=1)
    inputs = np.full((n, length), NOISE, np.int32)
    np.put_along_axis(inputs, where, data, axis=1)
    inputs[:, context:] = vocab - 1
    labels = np.full((n, length), -1, np.int32)
    labels[:, context:] = data
    return Split(inputs, full_lengths(n, length), labels)


def load_selective_copy(cfg: TaskConfig) -> TaskData:
    s = cfg.selective_copy
    length = cfg.length()
    info = TaskInfo("selective_copy", n_classes=s.vocab, seq_len=length, vocab_size=s.vocab,
                    pad_id=NOISE)
    make = lambda rng, n: selective_copy_split(rng, n, length, s.tokens, s.vocab)  # noqa: E731
    return TaskData(info, generate(cfg, DEFAULT_SIZES, make))
