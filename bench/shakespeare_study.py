"""What moves shakespeare-char within a wall-clock budget: the recipe with one thing changed a row.

    python bench/shakespeare_study.py --source PATH/tinyshakespeare/input.txt        # every row
    python bench/shakespeare_study.py --source ... --minutes 0.5 --rows base,depth-2  # a screen
    python bench/shakespeare_study.py --source ... --rows dropout-0+lr-4e-3  # rows combined
    python bench/shakespeare_study.py --list

Each row is the shakespeare-char recipe (LRU 4 x 192, N 192, GLU, dropout 0.1, windows of 256
characters, batch 8, AdamW 4e-3; nanoGPT's split: the first 90 % of the text trains, the last
10 % validates) with the flags of ``train_lm.py`` in ``ROWS`` changed, covering width, depth,
state size, every mixer glrnn has (and the Hawk and Griffin layouts), window length, batch
size, learning rate, dropout and bf16 compute; ``A+B`` names a row with the flags of rows A and
B together (B's win where both set one). Every row trains for the same budget,
``--train.minutes M`` (``--minutes``, default the recipe's 10): its steps are measured on this
machine after compilation and its schedule ends at them (glrnn/train/budget.py), and its final
state is scored on the whole validation split (its 111,540 characters and the EOS). Below the
recipe's 10 minutes the warmup shrinks in proportion (``--optim.warmup-steps``, 100 at 10
minutes), so a short screen warms up for the same share of its run.

Rows run one after another, each in a process of its own (it compiles and measures alone), in
``OUT/ROW`` (a row whose run directory exists is resumed: a finished one is only scored again;
another budget needs another ``--out``; its log is ``OUT/ROW.log``). Prints a markdown table
(row, flags, parameters, steps reached, characters/s (the median of the run's metrics rows),
wall time, the estimate's and the whole split's nats/char) and writes ``OUT/study.json`` and
``OUT/study.md``. The target is at most 1.45 nats/char on the whole split in 10 minutes
(nanoGPT's CPU recipe: 1.88 in its README).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from timing import machine

from glrnn.models import LanguageModel
from glrnn.params import abstract_params
from glrnn.runs.run import read_config
from glrnn.train.metrics import read_metrics

ROOT = Path(__file__).resolve().parents[1]
RECIPE, RECIPE_MINUTES, RECIPE_WARMUP = "shakespeare-char", 10.0, 100
TARGET = 1.45  # nats/char on the whole validation split
QKV_REAL_ELU = ["--model.gateloop-qkv.no-phase", "--model.gateloop-qkv.feature-map", "elu"]

ROWS: dict[str, list[str]] = {
    "base": [],
    # width (the state follows it), depth, state size
    "width-128": ["--model.d-model", "128", "--model.d-state", "128"],
    "width-256": ["--model.d-model", "256", "--model.d-state", "256"],
    "width-384": ["--model.d-model", "384", "--model.d-state", "384"],
    "depth-2": ["--model.n-layers", "2"],
    "depth-6": ["--model.n-layers", "6"],
    "depth-8": ["--model.n-layers", "8"],
    "state-64": ["--model.d-state", "64"],
    "state-384": ["--model.d-state", "384"],
    # every mixer (glrnn.mixers.MIXERS) in the recipe's blocks, and the RG-LRU's layouts
    "mixer-gateloop": ["--model.mixer", "gateloop"],
    "mixer-gateloop_qkv": ["--model.mixer", "gateloop_qkv"],
    "mixer-gateloop_qkv-real-elu": ["--model.mixer", "gateloop_qkv", *QKV_REAL_ELU],
    "mixer-rglru": ["--model.mixer", "rglru"],
    "mixer-hawk": ["--model.mixer", "rglru", "--model.block", "hawk"],
    "mixer-griffin": ["--model.mixer", "rglru", "--model.block", "griffin",
                      "--model.attention.window", "128"],
    "mixer-attention": ["--model.mixer", "attention"],
    "mixer-dense_rnn": ["--model.mixer", "dense_rnn"],
    "mixer-diag_rnn": ["--model.mixer", "diag_rnn"],
    "mixer-gru": ["--model.mixer", "gru"],
    # window length, batch, learning rate, dropout, compute dtype
    "seq-128": ["--data.seq-len", "128"],
    "seq-512": ["--data.seq-len", "512"],
    "batch-4": ["--data.batch-size", "4"],
    "batch-16": ["--data.batch-size", "16"],
    "batch-32": ["--data.batch-size", "32"],
    "lr-2e-3": ["--optim.lr", "2e-3"],
    "lr-6e-3": ["--optim.lr", "6e-3"],
    "dropout-0": ["--model.dropout", "0.0"],
    "dropout-0.2": ["--model.dropout", "0.2"],
    "bf16": ["--model.dtype", "bfloat16"],
}


def row_flags(name: str) -> list[str]:
    """The ``train_lm.py`` flags of row ``name``; ``A+B`` joins rows A and B (B's last)."""
    return [flag for part in name.split("+") for flag in ROWS[part]]


def flags(name: str) -> str:
    return " ".join(row_flags(name)) or "(the recipe)"


def warmup(minutes: float) -> int:
    """The recipe's warmup, in proportion below its 10 minutes."""
    return max(1, round(RECIPE_WARMUP * min(1.0, minutes / RECIPE_MINUTES)))


def command(name: str, args: argparse.Namespace) -> list[str]:
    """The train_lm.py command of row ``name``."""
    extra = ([] if args.minutes >= RECIPE_MINUTES
             else ["--optim.warmup-steps", str(warmup(args.minutes))])
    return [sys.executable, str(ROOT / "train_lm.py"), RECIPE, "--data.source", args.source,
            "--train.minutes", f"{args.minutes:g}", "--train.out-dir", args.out,
            "--train.name", name, *extra, *row_flags(name)]


def n_params(run_dir: Path) -> int:
    cfg, _ = read_config(run_dir)
    tree, _ = abstract_params(LanguageModel(cfg.model), jnp.zeros((1, 1), jnp.int32))
    return sum(leaf.size for leaf in jax.tree.leaves(tree))


def result(name: str, run_dir: Path, wall: float) -> dict[str, Any]:
    """The row's figures, read from its run directory."""
    rows = read_metrics(run_dir)
    last = rows[-1]
    budget = json.loads((run_dir / "config.json").read_text()).get("budget", {})
    return {"row": name, "flags": flags(name), "params": n_params(run_dir),
            "steps": last["step"], "planned_steps": budget.get("steps"),
            "chars_per_s": statistics.median(r["tokens_per_s"] for r in rows),
            "wall_s": wall, "val_estimate": last.get("val_loss"),
            "full_val_loss": last.get("full_val_loss"), "full_val_bpb": last.get("full_val_bpb"),
            "full_val_tokens": last.get("full_val_tokens"), "budget": budget}


def run_row(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Train row ``name`` in its own process (log in OUT/ROW.log) and read its figures."""
    log = Path(args.out) / f"{name}.log"
    start = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(command(name, args), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                              timeout=args.minutes * 120 + 600, check=False)
    wall = time.perf_counter() - start
    if done.returncode:
        lines = [line for line in log.read_text().splitlines() if line.startswith("error:")]
        return {"row": name, "flags": flags(name), "wall_s": wall,
                "error": lines[-1] if lines else f"exit status {done.returncode} (see {log})"}
    return result(name, Path(args.out) / name, wall)


def table(results: list[dict[str, Any]], minutes: float) -> str:
    """The markdown table, best whole-split figure first."""
    lines = [f"| row | flags | params | steps | chars/s | wall | val estimate | **full val "
             f"nats/char** ({minutes:g} min) |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    ranked = sorted(results, key=lambda r: r.get("full_val_loss") or float("inf"))
    for r in ranked:
        if "error" in r:
            lines.append(f"| {r['row']} | `{r['flags']}` | | | | {r['wall_s']:.0f} s | | "
                         f"{r['error']} |")
            continue
        lines.append(f"| {r['row']} | `{r['flags']}` | {r['params'] / 1e6:.2f}M | {r['steps']} | "
                     f"{r['chars_per_s']:,.0f} | {r['wall_s']:.0f} s | {r['val_estimate']:.4f} "
                     f"| **{r['full_val_loss']:.4f}** |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", help="tinyshakespeare's input.txt")
    parser.add_argument("--minutes", type=float, default=RECIPE_MINUTES,
                        help="the budget of every row (train.minutes)")
    parser.add_argument("--rows", default="",
                        help="comma-separated row names, A+B for rows combined (default: all)")
    parser.add_argument("--out", default="runs/shakespeare-study", help="run directories")
    parser.add_argument("--list", action="store_true", help="print the rows and stop")
    args = parser.parse_args()
    if args.list:
        for name in ROWS:
            print(f"{name}: {flags(name)}")
        return
    names = [n for n in args.rows.split(",") if n] or list(ROWS)
    unknown = [n for n in names if any(part not in ROWS for part in n.split("+"))]
    if unknown or not args.source or args.minutes <= 0:
        parser.error(f"unknown rows {', '.join(unknown)} (--list names them)" if unknown else
                     "--source is required" if not args.source else "--minutes must be > 0")
    args.source = str(Path(args.source).expanduser().absolute())
    args.out = str(Path(args.out).absolute())
    Path(args.out).mkdir(parents=True, exist_ok=True)
    results = []
    for name in names:
        print(f"{name}: training for {args.minutes:g} min ...", flush=True)
        results.append(run_row(name, args))
        figure = results[-1].get("full_val_loss")
        print(f"{name}: " + (f"{figure:.4f} nats/char on the whole split, "
                             f"{results[-1]['steps']} steps" if figure is not None
                             else results[-1]["error"]), flush=True)
    report = (f"# {machine()}; {RECIPE}, {args.minutes:g} min a row\n\n"
              f"{table(results, args.minutes)}")
    best = min((r for r in results if "full_val_loss" in r), key=lambda r: r["full_val_loss"],
               default=None)
    if best is not None:
        report += (f"\n\nbest: {best['row']} at {best['full_val_loss']:.4f} nats/char "
                   f"({'meets' if best['full_val_loss'] <= TARGET else 'misses'} the target "
                   f"{TARGET})")
    print(report)
    (Path(args.out) / "study.md").write_text(report + "\n")
    (Path(args.out) / "study.json").write_text(json.dumps(
        {"machine": machine(), "minutes": args.minutes, "rows": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
