"""Metrics: bits per byte, and the run's metrics.jsonl (one JSON object per line)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

METRICS = "metrics.jsonl"


def bits_per_byte(total_nats: float, total_bytes: int) -> float:
    """Cross entropy in bits per byte of text: nats / ln 2 / bytes (tokenizer-independent)."""
    if total_bytes <= 0:
        raise ValueError(f"total_bytes={total_bytes}: expected > 0")
    return total_nats / math.log(2) / total_bytes


class MetricsLog:
    """Appends rows to ``RUN/metrics.jsonl``; a resumed run continues the same file."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / METRICS

    def drop_after(self, step: int) -> None:
        """Forget rows past ``step`` (a resumed run recomputes them)."""
        if self.path.exists():
            rows = [row for row in read_metrics(self.path.parent) if row["step"] <= step]
            self.path.write_text("".join(json.dumps(row) + "\n" for row in rows))

    def write(self, row: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every row of ``RUN/metrics.jsonl``, in order."""
    with (Path(run_dir) / METRICS).open() as f:
        return [json.loads(line) for line in f if line.strip()]
