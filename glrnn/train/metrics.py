"""Metrics: bits per byte, and the run's metrics.jsonl (one JSON object per line).

``MetricsLog`` always writes ``RUN/metrics.jsonl`` (what ``python -m glrnn.plot`` draws) and, when
asked, mirrors every numeric field to TensorBoard (``tensorboardX``, event files in ``RUN/tb``)
and to Weights & Biases. Those packages are optional: nothing imports them unless the run turns
them on, and a run that does without them installed stops before training with the pip command.
"""

from __future__ import annotations

import importlib
import json
import math
import sys
from pathlib import Path
from typing import Any

from glrnn.config import ConfigError
from glrnn.files import write_text_atomic

METRICS = "metrics.jsonl"


def bits_per_byte(total_nats: float, total_bytes: int) -> float:
    """Cross entropy in bits per byte of text: nats / ln 2 / bytes (tokenizer-independent)."""
    if total_bytes <= 0:
        raise ValueError(f"total_bytes={total_bytes}: expected > 0")
    return total_nats / math.log(2) / total_bytes


def optional_import(module: str, package: str, flag: str) -> Any:
    """``import module`` for an optional feature, or a ConfigError naming the pip package."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ConfigError(f"{flag} needs the package {package!r}: pip install {package} "
                          f"({e})") from e


class MetricsLog:
    """Appends rows to ``RUN/metrics.jsonl``; a resumed run continues the same file. With
    ``writer`` False (every process of a job but process 0) it writes nothing."""

    def __init__(self, run_dir: str | Path, tensorboard: bool = False, wandb: str = "",
                 writer: bool = True) -> None:
        self.path = Path(run_dir) / METRICS
        self.writer = writer
        self.tensorboard = self.wandb = None
        if tensorboard and writer:
            tbx = optional_import("tensorboardX", "tensorboardX", "train.tensorboard")
            self.tensorboard = tbx.SummaryWriter(str(Path(run_dir) / "tb"))
        if wandb and writer:
            wb = optional_import("wandb", "wandb", "train.wandb")
            self.wandb = wb.init(project=wandb, name=Path(run_dir).name, dir=str(run_dir),
                                 resume="allow", id=Path(run_dir).name)

    def drop_after(self, step: int) -> None:
        """Forget rows past ``step`` (a resumed run recomputes them; a fresh start, 0, forgets
        those of a run stopped before its first checkpoint) and a last line cut short."""
        if self.writer and self.path.exists():
            rows = [row for row in read_metrics(self.path.parent) if row["step"] <= step]
            write_text_atomic(self.path, "".join(json.dumps(row) + "\n" for row in rows))

    def write(self, row: dict[str, Any]) -> None:
        if not self.writer:
            return
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        numbers = {k: v for k, v in row.items()
                   if k != "step" and isinstance(v, int | float) and math.isfinite(v)}
        if self.tensorboard is not None:
            for name, value in numbers.items():
                self.tensorboard.add_scalar(name, value, row["step"])
        if self.wandb is not None:
            self.wandb.log(numbers, step=row["step"])

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
        if self.wandb is not None:
            self.wandb.finish()


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every row of ``RUN/metrics.jsonl``, in order. A last line cut short (a run stopped while
    writing it) is dropped with a warning on stderr; a damaged line before it is a ConfigError
    naming it."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics (is {run_dir} a run directory?)")
    text = path.read_text(errors="replace")
    lines = [(number, line) for number, line in enumerate(text.split("\n"), 1) if line.strip()]
    rows = []
    for number, line in lines:
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or not isinstance(row.get("step"), int):
                raise ValueError("expected a JSON object with an integer 'step'")
        except ValueError as e:
            if number == lines[-1][0] and not text.endswith("\n"):
                print(f"warning: {path}: its last line ({number}) is cut short (a run stopped "
                      "while writing it): dropped", file=sys.stderr)
                break
            raise ConfigError(f"{path}: line {number} is damaged ({e})") from e
        rows.append(row)
    return rows
