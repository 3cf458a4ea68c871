"""The copy task learned by each rule: learning curves in one plot, and a table.

    python bench/online_copy.py [--steps 1500] [--rules bptt online_full online_1truncated
                                 online_spatial] [--out docs/online_copy.png] [--runs runs]

Each rule trains recipe ``copy-online`` (pattern 20 × 7 bits, delay 7) through the training loop
at a CPU-sized width (64, N = 64, 2 layers, batch 32, lr 3e-3, cosine decay over ``--steps``),
same seed, same batches; validation every 100 steps. The plot: validation loss and per-bit
accuracy against the step. The table: the last validation figures, the wall time and the
training rate (examples/s, the loop's own measure).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from timing import machine

from glrnn.train import train
from glrnn.train.metrics import read_metrics
from glrnn.train.recipes import load_recipe

RULES = ("bptt", "online_full", "online_1truncated", "online_spatial")


def run(rule: str, steps: int, runs: str) -> Path:
    """Train copy-online with ``rule``; returns the run directory."""
    cfg = load_recipe("copy-online")
    cfg = replace(cfg, model=replace(cfg.model, d_model=64, d_state=64),
                  data=replace(cfg.data, batch_size=32), optim=replace(cfg.optim, lr=3e-3),
                  train=replace(cfg.train, rule=rule, epochs=0.0, steps=steps, eval_every=100,
                                checkpoint_every=steps, out_dir=runs,
                                name=f"online-copy-{rule}"))
    return train(cfg).run_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--rules", nargs="+", default=list(RULES), choices=RULES)
    parser.add_argument("--out", default="docs/online_copy.png")
    parser.add_argument("--runs", default="runs")
    args = parser.parse_args()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    print(f"# {machine()}; copy-online at width 64, {args.steps} steps")
    print("| rule | val loss | val acc (bits) | val seq acc | wall s | examples/s |")
    print("|---|---|---|---|---|---|")
    for i, rule in enumerate(args.rules):
        rows = read_metrics(run(rule, args.steps, args.runs))
        val = [r for r in rows if "val_acc" in r]
        steps = [r["step"] for r in val]
        ax_loss.plot(steps, [r["val_loss"] for r in val], f"C{i}", marker="o", label=rule)
        ax_acc.plot(steps, [r["val_acc"] for r in val], f"C{i}", marker="o", label=rule)
        last = val[-1]
        rate = sum(r["examples_per_s"] for r in rows) / len(rows)
        print(f"| {rule} | {last['val_loss']:.4f} | {last['val_acc']:.4f} | "
              f"{last['val_seq_acc']:.3f} | {last['elapsed']:.0f} | {rate:,.0f} |", flush=True)
    ax_loss.set(xlabel="step", ylabel="validation loss (nats per bit)", yscale="log",
                title="copy task: validation loss")
    ax_acc.set(xlabel="step", ylabel="validation accuracy (per bit)",
               title="copy task: validation accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"plot: {args.out}")


if __name__ == "__main__":
    main()
