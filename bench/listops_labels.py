"""Check a ListOps TSV file: glrnn's loader against the file's README and an independent
evaluation of every expression.

    python bench/listops_labels.py ../shared/data/listops_nyu/test_d20s.tsv

Prints the rows and label counts that ``glrnn.data.tasks`` reads (the loader used by
``--task.listops.test-file``), the counts of the file's own label column, and how many
expressions a stack evaluation written here (MAX, MIN, MED as ``int(median)``, SM as the sum
mod 10, on the raw text) gives the file's label for.
"""

from __future__ import annotations

import argparse
import statistics
from collections import Counter
from pathlib import Path

import numpy as np

from glrnn.data.tasks.listops import read_tsv

OPERATORS = {"[MAX": max, "[MIN": min, "[MED": lambda xs: int(statistics.median(xs)),
             "[SM": lambda xs: sum(xs) % 10}


def evaluate(expression: str) -> int:
    """The value of one ListOps expression (parentheses are layout only)."""
    stack: list[list] = [[]]
    for token in expression.split():
        if token in OPERATORS:
            stack.append([OPERATORS[token]])
        elif token == "]":
            op, *args = stack.pop()
            stack[-1].append(op(args))
        elif token.isdigit():
            stack[-1].append(int(token))
    (value,) = stack[0]
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file", type=Path)
    args = parser.parse_args()
    rows = [line.split("\t") for line in args.file.read_text().splitlines() if line.strip()]
    labels = [int(label) for label, _ in rows]
    tokens, loaded = read_tsv(args.file)
    agree = sum(evaluate(expr) == int(label) for label, expr in rows)
    counts = Counter(labels)
    print(f"{args.file}: {len(rows):,} rows")
    print("label counts (file):   " + " ".join(f"{k}:{counts[k]}" for k in range(10)))
    print("label counts (loader): " + " ".join(
        f"{k}:{n}" for k, n in enumerate(np.bincount(np.asarray(loaded), minlength=10))))
    print(f"loader: {len(tokens):,} rows, labels equal to the file's: "
          f"{list(map(int, loaded)) == labels}")
    print(f"independent evaluation gives the file's label: {agree:,} of {len(rows):,}")


if __name__ == "__main__":
    main()
