"""Generated tasks (copy, selective copy, MQAR, ListOps) and TaskConfig: each generator checked
against a plain reference written here, determinism, split independence, config errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import tyro

from glrnn.config import ConfigError
from glrnn.data.tasks import TASKS, TaskConfig, load_task
from glrnn.data.tasks.listops import TOKENS, apply
from glrnn.data.tasks.mqar import distinct_integers, weighted_distinct
from glrnn.task_config import (
    CopyConfig,
    ImageConfig,
    ListOpsConfig,
    MQARConfig,
    SelectiveCopyConfig,
)


def same_arrays(a, b) -> bool:
    return all(np.array_equal(getattr(a.splits[s], f), getattr(b.splits[s], f))
               for s in ("train", "val", "test") for f in ("inputs", "lengths", "labels"))


@pytest.mark.parametrize("name", ["copy", "selective_copy", "mqar", "listops"])
def test_generators_are_deterministic_and_splits_independent(name):
    small = dict(n_train=12, n_val=5, n_test=6, seq_len=0 if name != "selective_copy" else 64,
                 listops=ListOpsConfig(max_depth=4, max_args=4, min_length=4, max_length=40))
    a = load_task(TaskConfig(name=name, seed=3, **small))
    assert same_arrays(a, load_task(TaskConfig(name=name, seed=3, **small)))
    assert not same_arrays(a, load_task(TaskConfig(name=name, seed=4, **small)))
    assert {s: len(a.splits[s]) for s in a.splits} == {"train": 12, "val": 5, "test": 6}
    more = load_task(TaskConfig(name=name, seed=3, **{**small, "n_train": 30}))
    for split in ("val", "test"):  # more training data leaves the other splits alone
        assert np.array_equal(more.splits[split].inputs, a.splits[split].inputs)


def test_copy_recall_labels_are_the_pattern():
    P, bits, delay = 5, 7, 9
    data = load_task(TaskConfig(name="copy", n_train=50, n_val=2, n_test=2,
                                copy=CopyConfig(pattern=P, bits=bits, delay=delay)))
    L = 2 * P + delay + 1
    assert data.info.seq_len == L and data.info.input_dim == bits + 1 and data.info.n_classes == 2
    split = data.splits["train"]
    assert split.inputs.shape == (50, L, bits + 1) and split.labels.shape == (50, L, bits)
    for x, y in zip(split.inputs, split.labels, strict=True):
        pattern = x[:P, :bits]
        assert set(np.unique(pattern)) <= {0.0, 1.0}
        expected = np.full((L, bits), -1)
        expected[P + delay + 1:] = pattern  # the recall steps, right after the marker
        assert np.array_equal(y, expected)
        marker = np.zeros(L)
        marker[P + delay] = 1
        assert np.array_equal(x[:, bits], marker)
        assert not x[P:, :bits].any()  # nothing but the marker after the pattern
    assert (split.lengths == L).all()
    assert 0.4 < split.inputs[:, :P, :bits].mean() < 0.6  # fair bits


def test_selective_copy_targets_are_the_data_tokens_in_order():
    M, A, L = 4, 8, 40
    data = load_task(TaskConfig(name="selective_copy", seq_len=L, n_train=40, n_val=2,
                                n_test=2, selective_copy=SelectiveCopyConfig(tokens=M, vocab=A)))
    split = data.splits["train"]
    positions = set()
    for x, y in zip(split.inputs, split.labels, strict=True):
        body = x[:L - M]
        data_tokens = body[body != 0]
        assert len(data_tokens) == M and ((data_tokens >= 1) & (data_tokens <= A - 2)).all()
        assert (x[L - M:] == A - 1).all()
        assert np.array_equal(y[L - M:], data_tokens) and (y[:L - M] == -1).all()
        positions |= set(np.flatnonzero(body).tolist())
    assert len(positions) > M  # scattered, not at fixed places


@pytest.mark.parametrize("random_non_queries", [False, True])
def test_mqar_queries_are_answered_by_the_earlier_pairs(random_non_queries):
    V, pairs, L = 64, 4, 32
    data = load_task(TaskConfig(name="mqar", seq_len=L, n_train=100, n_val=2, n_test=2,
                                mqar=MQARConfig(pairs=pairs, vocab=V,
                                                random_non_queries=random_non_queries)))
    split = data.splits["train"]
    assert data.info.vocab_size == V and data.info.n_classes == V
    fillers = []
    for x, y in zip(split.inputs, split.labels, strict=True):
        keys, values = x[0:2 * pairs:2], x[1:2 * pairs:2]
        assert len(set(keys)) == pairs and ((keys >= 1) & (keys < V // 2)).all()
        assert len(set(values)) == pairs and ((values >= V // 2) & (values < V)).all()
        pair = dict(zip(keys.tolist(), values.tolist(), strict=True))
        queries = np.flatnonzero(y >= 0)
        assert len(queries) == pairs and (queries >= 2 * pairs).all()
        assert ((queries - 2 * pairs) % 2 == 0).all()
        assert sorted(x[queries].tolist()) == sorted(keys.tolist())  # each key asked once
        for q in queries:
            assert y[q] == pair[int(x[q])]
        rest = np.ones(L, bool)
        rest[:2 * pairs] = False
        rest[queries] = False
        fillers.append(x[rest])
    fillers = np.concatenate(fillers)
    if random_non_queries:  # Zoology: every non-query step a random token
        assert len(np.unique(fillers)) > V // 2
    else:
        assert (fillers == 0).all()


def test_weighted_distinct_draws_successively_by_weight():
    """Exact law of numpy's choice(replace=False, p): pick a with w_a / W, then b with
    w_b / (W - w_a); compared on 40,000 draws of 2 out of 4."""
    w = np.array([1.0, 2.0, 3.0, 4.0])
    draws = weighted_distinct(np.random.default_rng(0), 40_000, 2, w)
    for a, b in itertools.permutations(range(4), 2):
        p = w[a] / w.sum() * w[b] / (w.sum() - w[a])
        freq = np.mean((draws[:, 0] == a) & (draws[:, 1] == b))
        assert abs(freq - p) < 4 * np.sqrt(p * (1 - p) / 40_000) + 1e-3, (a, b)


def test_distinct_integers_rows_have_no_repeats():
    x = distinct_integers(np.random.default_rng(1), 5000, 3, 2, 6)  # 3 of 4 values: many redraws
    assert ((x >= 2) & (x < 6)).all()
    assert all(len(set(row)) == 3 for row in x.tolist())
    counts = np.bincount(x.ravel(), minlength=6)[2:]
    assert counts.min() > 0.9 * counts.mean()


def evaluate(tokens: list[str]) -> int:
    """A ListOps expression's value by a stack machine (independent of the generator)."""
    stack: list[list] = []
    value = None
    for t in tokens:
        if t.startswith("["):
            stack.append([t])
            continue
        if t == "]":
            op, *args = stack.pop()
            v = {"[MIN": min, "[MAX": max, "[SM": lambda a: sum(a) % 10,
                 "[MED": lambda a: int(np.median(a))}[op](args)
        else:
            v = int(t)
        if stack:
            stack[-1].append(v)
        else:
            value = v
    assert not stack
    return value


def nesting(tokens: list[str]) -> int:
    depth = deepest = 0
    for t in tokens:
        depth += t.startswith("[") - (t == "]")
        deepest = max(deepest, depth)
    return deepest


def test_listops_generated_labels_equal_an_independent_evaluation():
    limits = ListOpsConfig(max_depth=5, max_args=5, min_length=10, max_length=80)
    data = load_task(TaskConfig(name="listops", n_train=300, n_val=20, n_test=20,
                                listops=limits))
    assert data.info.vocab_size == len(TOKENS) and data.info.n_classes == 10
    seen = set()
    for split in data.splits.values():
        for x, n, y in zip(split.inputs, split.lengths, split.labels, strict=True):
            tokens = [TOKENS[i] for i in x[:n]]
            assert (x[n:] == data.info.pad_id).all()
            assert 10 < n < 80 and nesting(tokens) <= limits.max_depth - 1
            assert evaluate(tokens) == y
            seen.add(tuple(x[:n]))
    assert len(seen) == 340  # distinct within and across splits
    labels = data.splits["train"].labels
    assert len(np.unique(labels)) == 10


def test_listops_limits_with_too_few_trees_are_refused():
    few = ListOpsConfig(max_depth=1, max_args=2, min_length=0, max_length=2)  # 10 digits only
    with pytest.raises(ConfigError, match=r"trees in a row were too short, too long or repeats "
                                          r"after 10 distinct ones"):
        load_task(TaskConfig(name="listops", n_train=20, n_val=1, n_test=1, listops=few))


@pytest.mark.parametrize("args", [[3, 1, 2], [4, 1, 3, 2], [0, 9], [5, 5, 6, 6, 7, 1]])
def test_median_matches_lra(args):
    assert apply("[MED", args) == int(np.median(args))


def test_config_errors_name_the_field_and_what_is_allowed():
    with pytest.raises(ConfigError, match=r"task.name='nope': expected one of .*copy.*mqar"):
        TaskConfig(name="nope")
    with pytest.raises(ConfigError, match=r"task.seq_len=100: expected 0 or 48"):
        TaskConfig(name="copy", seq_len=100)
    with pytest.raises(ConfigError, match=r"task.source='x': expected '' \(task 'mqar'"):
        TaskConfig(name="mqar", source="x")
    with pytest.raises(ConfigError, match=r"task.source='': expected a local file or folder "
                                          r"for task 'imdb' or hf:NAME"):
        TaskConfig(name="imdb")
    with pytest.raises(ConfigError, match=r"task.source='hf:aan': expected a local file"):
        TaskConfig(name="aan", source="hf:aan")
    with pytest.raises(ConfigError, match=r"task.too_long='cut': expected one of refuse, "
                                          "truncate"):
        TaskConfig(too_long="cut")
    with pytest.raises(ConfigError, match=r"task.val_fraction=1.0"):
        TaskConfig(val_fraction=1.0)
    with pytest.raises(ConfigError, match=r"task.seq_len=62: expected >= 4 \* task.mqar.pairs"):
        TaskConfig(name="mqar", seq_len=62, mqar=MQARConfig(pairs=16))
    with pytest.raises(ConfigError, match=r"task.image.colour=True: expected false for mnist"):
        TaskConfig(name="mnist", source="m", image=ImageConfig(colour=True))
    with pytest.raises(ConfigError, match=r"task.copy.delay=-1: expected an integer >= 0"):
        CopyConfig(delay=-1)
    with pytest.raises(ConfigError, match=r"task.listops.max_length=11: expected an integer > "
                                          r"min_length \+ 1"):
        ListOpsConfig(min_length=10, max_length=11)
    assert TaskConfig().name == "" and set(TASKS) >= {"copy", "listops", "pathfinder"}


def test_nested_settings_are_command_line_flags():
    cfg = tyro.cli(TaskConfig, args=["--name", "copy", "--copy.delay", "100", "--seed", "2"])
    assert cfg.copy.delay == 100 and cfg.length() == 2 * 20 + 100 + 1 and cfg.seed == 2
