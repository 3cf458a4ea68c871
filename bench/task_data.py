"""Task data at full size: load time, split sizes, lengths and class balance of each task.

    python bench/task_data.py [--generated] [--listops-test FILE] [--imdb DIR] [--mnist DIR]

``--generated``: copy, selective copy, MQAR (64, 4) and (256, 16) at their default sizes;
``--listops-test``: ListOps generated as LRA does (96,000 / 2,000 examples) with the rows of
FILE (e.g. the NYU ``test_d20s.tsv``) as the test split; ``--imdb``: an aclImdb folder;
``--mnist``: an MNIST IDX folder (sMNIST, then psMNIST). Every task passes ``load_task``'s
validation; warnings (truncation, a split held out) are printed.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from timing import machine

from glrnn.data.tasks import TaskConfig, TaskData, load_task
from glrnn.task_config import ImageConfig, ListOpsConfig, MQARConfig


def describe(data: TaskData, seconds: float) -> None:
    info = data.info
    kind = f"vocab {info.vocab_size}" if info.tokens else f"{info.input_dim} channel(s)"
    print(f"\n{info.name}: L {info.seq_len}, {kind}, {info.n_classes} classes, "
          f"loaded in {seconds:.1f} s")
    print("| split | examples | length min / median / mean / max | at L | targets per class |")
    print("|---|---:|---:|---:|---|")
    for name, split in data.splits.items():
        n = split.lengths
        targets = split.labels[split.labels >= 0]
        balance = (" ".join(str(c) for c in np.bincount(targets, minlength=info.n_classes))
                   if info.n_classes <= 10 else f"{len(targets)} targets")
        print(f"| {name} | {len(split)} | {n.min()} / {int(np.median(n))} / {n.mean():.0f} / "
              f"{n.max()} | {int((n == info.seq_len).sum())} | {balance} |")


def run(cfg: TaskConfig) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        data = load_task(cfg)
        seconds = time.perf_counter() - start
    describe(data, seconds)
    for w in caught:
        print(f"warning: {w.message}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generated", action="store_true")
    parser.add_argument("--listops-test", default="")
    parser.add_argument("--imdb", default="")
    parser.add_argument("--mnist", default="")
    args = parser.parse_args()
    print(machine())
    if args.generated:
        run(TaskConfig(name="copy"))
        run(TaskConfig(name="selective_copy"))
        run(TaskConfig(name="mqar"))
        run(TaskConfig(name="mqar", seq_len=256, mqar=MQARConfig(pairs=16)))
    if args.listops_test:
        run(TaskConfig(name="listops", listops=ListOpsConfig(test_file=args.listops_test)))
    if args.imdb:
        run(TaskConfig(name="imdb", source=args.imdb))
    if args.mnist:
        run(TaskConfig(name="mnist", source=args.mnist))
        run(TaskConfig(name="mnist", source=args.mnist, image=ImageConfig(permute=True)))


if __name__ == "__main__":
    main()
