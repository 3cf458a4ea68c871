"""Per-class accuracy and the confusion matrix of a classifier, as numbers and as a PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from glrnn.files import write_atomic


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, n_classes: int) -> np.ndarray:
    """int64 [n_classes, n_classes]: row = true class, column = predicted class, over the
    positions where ``labels`` >= 0 (labels and predictions of the same shape)."""
    keep = labels >= 0
    matrix = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(matrix, (labels[keep], predictions[keep]), 1)
    return matrix


def confusion_pairs(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """int64 [K, 3]: (true class, predicted class, count) of the K nonzero cells of the
    confusion matrix over the positions where ``labels`` >= 0, the most frequent first: the
    matrix of a task with thousands of classes (MQAR's 8192) without its n² zeros."""
    keep = labels >= 0
    cells, counts = np.unique(np.stack([labels[keep], predictions[keep]], axis=1), axis=0,
                              return_counts=True)
    order = np.argsort(-counts, kind="stable")
    return np.concatenate([cells, counts[:, None]], axis=1)[order].astype(np.int64)


def class_accuracy(labels: np.ndarray, predictions: np.ndarray) -> dict[int, float]:
    """Accuracy of each class that occurs among the labels >= 0."""
    keep = labels >= 0
    classes, inverse = np.unique(labels[keep], return_inverse=True)
    right = np.bincount(inverse, predictions[keep] == labels[keep])
    return dict(zip(classes.tolist(), (right / np.bincount(inverse)).tolist(), strict=True))


def frequent_block(labels: np.ndarray, predictions: np.ndarray,
                   k: int) -> tuple[np.ndarray, np.ndarray]:
    """(classes [k'], matrix [k', k']): the confusion matrix among the k' <= k most frequent
    true classes (positions predicted outside them are left out)."""
    keep = labels >= 0
    y, p = labels[keep], predictions[keep]
    classes, counts = np.unique(y, return_counts=True)
    top = np.sort(classes[np.argsort(-counts, kind="stable")[:k]])
    inside = np.isin(y, top) & np.isin(p, top)
    return top, confusion_matrix(np.searchsorted(top, y[inside]),
                                 np.searchsorted(top, p[inside]), len(top))


def draw_confusion(matrix: np.ndarray, names: Sequence[str], path: Path, title: str) -> Path:
    """Write the row-normalised matrix as a heat map with counts to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(matrix)
    rows = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    size = min(12.0, 2.0 + 0.45 * n)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(shares, vmin=0, vmax=1, cmap="Blues")
    fig.colorbar(image, ax=ax, label="share of the true class")
    ax.set(xticks=range(n), yticks=range(n), xlabel="predicted", ylabel="true", title=title)
    ax.set_xticklabels(names, rotation=90 if n > 10 else 0)
    ax.set_yticklabels(names)
    if n <= 20:
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                    color="white" if shares[i, j] > 0.5 else "black")
    fig.tight_layout()
    write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)
    return path


DENSE_CLASSES = 64  # up to this many classes the report holds the whole matrix
DRAWN_CLASSES = 30  # beyond DENSE_CLASSES the PNG shows this many most frequent classes


def confusion_report(labels: np.ndarray, predictions: np.ndarray, n_classes: int,
                     class_names: Sequence[str], png: Path, title: str) -> dict[str, Any]:
    """The report's per-class accuracy and confusion (the whole matrix up to DENSE_CLASSES
    classes, else its nonzero cells as (true, predicted, count) rows), and the PNG at ``png``."""
    names = list(class_names) or [str(i) for i in range(n_classes)]
    accuracy = class_accuracy(labels, predictions)
    if n_classes <= DENSE_CLASSES:  # every class named, None for one that never occurs
        matrix = confusion_matrix(labels, predictions, n_classes)
        draw_confusion(matrix, names, png, title)
        return {"per_class_accuracy": {name: accuracy.get(c) for c, name in enumerate(names)},
                "confusion_matrix": matrix.tolist(), "confusion_png": str(png)}
    classes, block = frequent_block(labels, predictions, DRAWN_CLASSES)
    draw_confusion(block, [names[c] for c in classes], png,
                   f"{title}\n({len(classes)} most frequent of {n_classes} classes)")
    return {"per_class_accuracy": {names[c]: a for c, a in accuracy.items()},
            "confusion_pairs": confusion_pairs(labels, predictions).tolist(),
            "confusion_png": str(png)}
