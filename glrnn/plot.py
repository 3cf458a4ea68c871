"""Draw training curves of one or several runs to PNG.

    python -m glrnn.plot RUN [RUN ...] [--out FILE.png] [--x step|tokens|elapsed|epoch]

Left: training loss (thin) and validation loss (dots and line), nats per token (per label for
classifiers, per frame for continuous-input models); right: validation bits per byte for
language models, the validation squared error per value for continuous-input models, or
validation accuracy (solid; per-sequence accuracy dashed where the task has it) for
classifiers. One colour per run,
named by its directory.
The default output for one run is ``RUN/plots/curves.png``; for several, ``curves.png`` here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.lines import Line2D

from glrnn.cli import USER_ERRORS, report
from glrnn.config import ConfigError, check
from glrnn.files import output_file, write_atomic
from glrnn.runs.run import read_config
from glrnn.train.metrics import read_metrics

X_LABELS = {"step": "step", "tokens": "training tokens", "elapsed": "seconds",
            "epoch": "epochs"}
DRAWN = ("loss", "val_loss", "val_bpb", "val_mse", "val_acc", "val_seq_acc", "elapsed", "epoch")
RIGHT = {"val_bpb": ("bits per byte", "validation bits per byte"),
         "val_mse": ("squared error per value", "validation squared error (normalised frames)"),
         "val_acc": ("accuracy", "validation accuracy")}


def x_values(rows: list[dict[str, Any]], x: str, tokens_per_step: int) -> list[float]:
    """The x coordinate of each row (``tokens``: step × tokens per step)."""
    if x == "tokens":
        return [row["step"] * tokens_per_step for row in rows]
    missing = [row["step"] for row in rows if x not in row]
    if missing:
        raise ConfigError(f"--x {x}: rows of steps {missing[:3]}... have no {x!r} field")
    return [row[x] for row in rows]


def tokens_per_step(run_dir: Path) -> int:
    """batch_size × sequence length of the run's recorded config (the task's for a classifier)."""
    cfg, _ = read_config(run_dir)
    return cfg.data.batch_size * (cfg.task.length() if cfg.task.name else cfg.data.seq_len)


def check_numbers(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    """ConfigError naming the first value this module draws that is not a number (matplotlib
    would draw strings as categories, silently)."""
    for row in rows:
        for field in DRAWN:
            value = row.get(field, 0)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{run_dir / 'metrics.jsonl'}: step {row['step']}: "
                                  f"{field}={value!r} is not a number")


def figure_file(out: str | Path) -> Path:
    """``out`` if it can take a figure: ConfigError unless a file in a format matplotlib
    writes (named by its extension)."""
    formats = FigureCanvasBase.get_supported_filetypes()
    check(Path(out).suffix[1:].lower() in formats, "--out", str(out),
          f"a file ending in one of {', '.join('.' + f for f in sorted(formats))}")
    return output_file(out, "--out")


def plot_runs(run_dirs: Sequence[str | Path], out: str | Path, x: str = "step") -> Path:
    """Draw the runs' curves into ``out`` (PNG, or any format of :func:`figure_file`);
    returns its path."""
    out = figure_file(out)
    runs = [(Path(run_dir), read_metrics(run_dir)) for run_dir in run_dirs]
    for run_dir, rows in runs:
        check(bool(rows), "run", str(run_dir), "a run with metrics (its metrics.jsonl is empty)")
        check_numbers(run_dir, rows)
    fig, (ax_loss, ax_right) = plt.subplots(1, 2, figsize=(11, 4))
    right = next((f for f in ("val_bpb", "val_mse")
                  if any(f in r for _, rows in runs for r in rows)), "val_acc")
    drawn = False
    for i, (run_dir, rows) in enumerate(runs):
        colour, name = f"C{i}", run_dir.resolve().name
        per_step = tokens_per_step(run_dir) if x == "tokens" else 1
        train = [r for r in rows if "loss" in r]
        val = [r for r in rows if "val_loss" in r]
        ax_loss.plot(x_values(train, x, per_step), [r["loss"] for r in train], colour,
                     alpha=0.5, linewidth=1, label=f"{name} train")
        if val:
            ax_loss.plot(x_values(val, x, per_step), [r["val_loss"] for r in val], colour,
                         marker="o", label=f"{name} validation")
        for field, style in ((right, "-"), ("val_seq_acc", "--")):
            points = [r for r in val if field in r and (right == "val_acc" or field == right)]
            if points:
                drawn = True
                ax_right.plot(x_values(points, x, per_step), [r[field] for r in points],
                              colour, linestyle=style, marker="o",
                              label=name if field == right else f"{name} per sequence")
    ax_loss.set(xlabel=X_LABELS[x], ylabel="loss (nats)", title="loss")
    if len(runs) > 1 and drawn:  # colours are named on the right: here only the two line kinds
        kinds = [Line2D([], [], color="k", alpha=0.5, linewidth=1, label="train"),
                 Line2D([], [], color="k", marker="o", label="validation")]
        ax_loss.legend(handles=kinds, fontsize=8)
    else:
        ax_loss.legend(fontsize=8)
    ax_right.set(xlabel=X_LABELS[x], ylabel=RIGHT[right][0], title=RIGHT[right][1])
    if drawn:
        ax_right.legend(fontsize=8)
    for ax in (ax_loss, ax_right):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    write_atomic(out, lambda f: fig.savefig(f, format=out.suffix[1:].lower(), dpi=120))
    plt.close(fig)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m glrnn.plot", description=__doc__.split(
        "\n")[0])
    parser.add_argument("runs", nargs="+", help="run directories (holding metrics.jsonl)")
    parser.add_argument("--out", help="PNG file (default RUN/plots/curves.png, or ./curves.png "
                        "for several runs)")
    parser.add_argument("--x", choices=sorted(X_LABELS), default="step")
    args = parser.parse_args(argv)
    out = args.out or (Path(args.runs[0]) / "plots" / "curves.png" if len(args.runs) == 1
                       else Path("curves.png"))
    try:
        path = plot_runs(args.runs, out, args.x)
    except USER_ERRORS as e:
        return report(e)
    print(f"curves written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
