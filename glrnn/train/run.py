"""Run directories: ``OUT/NAME/{config.json, metrics.jsonl, checkpoints/}`` and ``OUT/latest``.

``config.json`` holds the resolved :class:`~glrnn.config.Config` and the tokenizer's description;
with the checkpoints it is all that ``generate.py --run OUT/NAME`` needs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

from glrnn.config import Config, ConfigError, from_dict
from glrnn.tokenizer import Tokenizer, from_description

CONFIG = "config.json"
LATEST = "latest"


def default_run_name(prefix: str) -> str:
    """``prefix-YYYYmmdd-HHMMSS`` in local time."""
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"


def run_dir_of(cfg: Config) -> Path:
    return Path(cfg.train.out_dir) / cfg.train.name


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def write_config(run_dir: Path, cfg: Config, tokenizer: Tokenizer) -> None:
    """Write ``config.json``; if the run already has one it must hold the same config."""
    record = {"config": dataclasses.asdict(cfg), "tokenizer": tokenizer.describe()}
    path = run_dir / CONFIG
    if path.exists():
        old = _flatten(json.loads(path.read_text()))
        new = _flatten(json.loads(json.dumps(record)))
        changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        if changed:
            raise ConfigError(f"{run_dir} holds a run with a different config ({', '.join(changed)}"
                              "): resume it unchanged or pick another --train.name")
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")


def read_config(run_dir: str | Path) -> tuple[Config, Tokenizer]:
    """The config and tokenizer recorded in ``run_dir``."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a run directory (no {CONFIG})")
    record = json.loads(path.read_text())
    return from_dict(Config, record["config"]), from_description(record["tokenizer"])


def point_latest(run_dir: Path) -> None:
    """Make ``run_dir.parent/latest`` a symlink to ``run_dir`` (replaced atomically)."""
    link = run_dir.parent / LATEST
    tmp = run_dir.parent / f".{LATEST}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.name, target_is_directory=True)
    os.replace(tmp, link)
