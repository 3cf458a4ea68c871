"""Multi-query associative recall (MQAR), the Zoology protocol.

Source: Arora, Eyuboglu et al., "Zoology: Measuring and Improving Recall in Efficient Language
Models" (2023); generator ``multiquery_ar`` in ``zoology/data/associative_recall.py`` of
github.com/HazyResearch/zoology, settings of ``zoology/experiments/paper_configs/
iclr24_zoology_figure2/configs.py``: vocabulary 8192, (length, pairs) in {(64, 4), (128, 8),
(256, 16)}, power_a 0.01, random_non_queries False, 100,000 training and 3,000 test examples
(Zoology has no validation split; ours is another 3,000 from its own stream).

With P = ``task.mqar.pairs``, V = ``task.mqar.vocab`` and length L:

* steps ``0 .. 2P-1``: P key-value pairs ``k v k v ...``; keys distinct, uniform in
  ``[1, V/2)``, values distinct, uniform in ``[V/2, V)``;
* the other L - 2P steps: each key once more as a query, at step ``2P + 2g`` for distinct gaps
  ``g`` in ``[0, (L - 2P)/2)`` drawn with probability proportional to ``(g+1)^(power_a-1)``
  (near the pairs more often, as repeated bigrams in text); 0 elsewhere (or random tokens with
  ``random_non_queries``).

Labels ``[N, L]``: at each query step the value paired with that key, -1 elsewhere (n_classes V).
Sampling without replacement is vectorised: keys and values by redrawing rows with repeats
(uniform over distinct tuples), gaps by Efraimidis-Spirakis keys ``u^(1/w)`` (the same law as
numpy's ``choice(replace=False, p=...)``, which Zoology calls row by row).
"""

from __future__ import annotations

import numpy as np

from glrnn.data.tasks.arrays import full_lengths, generate
from glrnn.data.tasks.base import Split, TaskData, TaskInfo
from glrnn.task_config import MQARConfig, TaskConfig

DEFAULT_SIZES = (100_000, 3_000, 3_000)


def distinct_integers(rng: np.random.Generator, n: int, k: int, low: int,
                      high: int) -> np.ndarray:
    """int64 [n, k]: each row k distinct integers, uniform in [low, high)."""
    out = rng.integers(low, high, (n, k))
    while True:
        s = np.sort(out, axis=1)
        again = (s[:, 1:] == s[:, :-1]).any(axis=1)
        if not again.any():
            return out
        out[again] = rng.integers(low, high, (int(again.sum()), k))


def weighted_distinct(rng: np.random.Generator, n: int, k: int, weights: np.ndarray) -> np.ndarray:
    """int64 [n, k]: per row, k distinct indices into ``weights`` drawn one after another with
    probability proportional to the remaining weights (Efraimidis & Spirakis 2006)."""
    score = rng.random((n, len(weights))) ** (1.0 / weights)
    return np.argsort(-score, axis=1)[:, :k]


def mqar_split(rng: np.random.Generator, n: int, length: int, m: MQARConfig) -> Split:
    """``n`` MQAR sequences: inputs int32 [n, length], labels int32 [n, length]."""
    pairs, half = m.pairs, m.vocab // 2
    keys = distinct_integers(rng, n, pairs, 1, half)
    values = distinct_integers(rng, n, pairs, half, m.vocab)
    context = 2 * pairs
    space = (length - context) // 2
    gap_weights = m.power_a * np.arange(1, space + 1) ** (m.power_a - 1)
    queries = context + 2 * weighted_distinct(rng, n, pairs, gap_weights)
    inputs = np.zeros((n, length), np.int64)
    inputs[:, 0:context:2] = keys
    inputs[:, 1:context:2] = values
    np.put_along_axis(inputs, queries, keys, axis=1)
    labels = np.full((n, length), -1, np.int32)
    np.put_along_axis(labels, queries, values, axis=1)
    if m.random_non_queries:
        filler = inputs == 0
        inputs[filler] = rng.integers(0, m.vocab, int(filler.sum()))
    return Split(inputs.astype(np.int32), full_lengths(n, length), labels)


def load_mqar(cfg: TaskConfig) -> TaskData:
    length = cfg.length()
    info = TaskInfo("mqar", n_classes=cfg.mqar.vocab, seq_len=length, vocab_size=cfg.mqar.vocab)
    make = lambda rng, n: mqar_split(rng, n, length, cfg.mqar)  # noqa: E731
    return TaskData(info, generate(cfg, DEFAULT_SIZES, make))
