"""The classifier report's confusion figures: dense for few classes, sparse for many."""

import numpy as np

from glrnn.train.confusion import (
    DENSE_CLASSES,
    confusion_matrix,
    confusion_report,
    frequent_block,
)


def labelled(n_classes: int, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels [n, 4] (some -1, unscored) and predictions right about 70 % of the time."""
    rng = np.random.default_rng(seed)
    labels = rng.zipf(1.5, (n, 4)) % n_classes
    labels[rng.random((n, 4)) < 0.2] = -1
    wrong = rng.random((n, 4)) < 0.3
    predictions = np.where(wrong, rng.integers(0, n_classes, (n, 4)), np.maximum(labels, 0))
    return labels, predictions


def test_many_classes_give_the_nonzero_cells_of_the_dense_matrix(tmp_path):
    n_classes = 3 * DENSE_CLASSES
    labels, predictions = labelled(n_classes, 500)
    dense = confusion_matrix(labels, predictions, n_classes)
    report = confusion_report(labels, predictions, n_classes, [], tmp_path / "c.png", "t")
    assert "confusion_matrix" not in report
    pairs = np.array(report["confusion_pairs"])
    rebuilt = np.zeros_like(dense)
    rebuilt[pairs[:, 0], pairs[:, 1]] = pairs[:, 2]
    np.testing.assert_array_equal(rebuilt, dense)
    assert (np.diff(pairs[:, 2]) <= 0).all()  # most frequent first
    occurring = np.flatnonzero(dense.sum(axis=1))
    accuracy = report["per_class_accuracy"]
    assert sorted(int(c) for c in accuracy) == occurring.tolist()
    for c in occurring[:10]:
        assert np.isclose(accuracy[str(c)], dense[c, c] / dense[c].sum())
    assert (tmp_path / "c.png").stat().st_size > 1000


def test_the_drawn_block_is_the_matrix_among_the_most_frequent_classes():
    labels, predictions = labelled(200, 400, seed=1)
    dense = confusion_matrix(labels, predictions, 200)
    classes, block = frequent_block(labels, predictions, 5)
    totals = dense.sum(axis=1)
    assert len(classes) == 5 and totals[classes].min() >= np.sort(totals)[-5]
    np.testing.assert_array_equal(block, dense[np.ix_(classes, classes)])


def test_few_classes_keep_the_whole_matrix(tmp_path):
    labels, predictions = labelled(4, 100, seed=2)
    report = confusion_report(labels, predictions, 4, ["a", "b", "c", "d"], tmp_path / "c.png",
                              "t")
    np.testing.assert_array_equal(report["confusion_matrix"],
                                  confusion_matrix(labels, predictions, 4))
    assert set(report["per_class_accuracy"]) == {"a", "b", "c", "d"}
