"""Run directories: ``OUT/NAME/{config.json, metrics.jsonl, checkpoints/}`` and ``OUT/latest``.

``config.json`` holds the resolved :class:`~glrnn.config.Config` and the tokenizer's description
(and, for a run sized by ``train.minutes``, the ``budget`` it measured: glrnn/train/budget.py);
with the checkpoints it is all that ``generate.py --run OUT/NAME`` needs.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from glrnn.config import Config, ConfigError, from_dict
from glrnn.files import write_text_atomic
from glrnn.runs.distributed import job_stamp
from glrnn.tokenizer import Tokenizer, from_description

CONFIG = "config.json"
LATEST = "latest"
RUN_DIR_OPTIONS = "train.out_dir/train.name"  # the options that name a run directory


def default_run_name(prefix: str) -> str:
    """``prefix-YYYYmmdd-HHMMSS`` in local time (a job's start on process 0's clock, so that
    all its processes name the same run)."""
    return f"{prefix}-{job_stamp()}"


def named(cfg: Config, prefix: str) -> Config:
    """``cfg`` with its run directory's name: ``train.name`` if set, else
    :func:`default_run_name` of ``prefix`` (the recipe's name on the command line)."""
    if cfg.train.name:
        return cfg
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train,
                                                              name=default_run_name(prefix)))


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


def _read_record(path: Path) -> dict[str, Any]:
    """The JSON of ``config.json``; ConfigError if it is not what ``write_config`` writes."""
    try:
        record = json.loads(path.read_text())
    except ValueError as e:  # not JSON, not UTF-8
        raise ConfigError(f"{path} is damaged ({e})") from e
    if not isinstance(record, dict) or not {"config", "tokenizer"} <= record.keys():
        raise ConfigError(f"{path} is damaged (expected an object with 'config' and "
                          "'tokenizer')")
    return record


def write_config(run_dir: Path, cfg: Config, tokenizer: Tokenizer,
                 budget: dict[str, Any] | None = None) -> None:
    """Write ``config.json`` (with ``budget``, what a budgeted run measured, if given); if the
    run already has one it must hold the same config and tokenizer, and is kept."""
    record = {"config": dataclasses.asdict(cfg), "tokenizer": tokenizer.describe()}
    path = run_dir / CONFIG
    if path.exists():
        old = _flatten({key: _read_record(path)[key] for key in record})
        new = _flatten(json.loads(json.dumps(record)))
        changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        if changed:
            raise ConfigError(f"{run_dir} holds a run with a different config ({', '.join(changed)}"
                              "): resume it unchanged or pick another --train.name")
        return
    if budget is not None:
        record["budget"] = budget
    write_text_atomic(path, json.dumps(record, indent=2) + "\n")


# what a budgeted run's re-plans read from its budget (glrnn/train/budget.py ``Replans``)
BUDGET_TIMES = ("minutes", "spent_s", "eval_s", "checkpoint_s", "final_evaluations")


def read_budget(run_dir: Path) -> dict[str, Any] | None:
    """The ``budget`` recorded in ``run_dir``'s ``config.json``; None if it has no config.json
    or no budget."""
    path = run_dir / CONFIG
    if not path.is_file():
        return None
    budget = _read_record(path).get("budget")
    if budget is not None and not (isinstance(budget, dict)
                                   and isinstance(budget.get("steps"), int)):
        raise ConfigError(f"{path} is damaged (its budget has no integer 'steps')")
    if budget is None:
        return None
    missing = [key for key in BUDGET_TIMES if not isinstance(budget.get(key), int | float)]
    if missing:
        raise ConfigError(f"{path} is damaged (its budget has no number for "
                          f"{', '.join(missing)})")
    replans = budget.get("replans", [])
    if not (isinstance(replans, list) and all(
            isinstance(r, dict) and isinstance(r.get("step"), int)
            and isinstance(r.get("steps"), int) for r in replans)):
        raise ConfigError(f"{path} is damaged (its budget's 'replans' are not a list of "
                          "{'step', 'steps'} integers)")
    return budget


def record_budget(run_dir: Path, budget: dict[str, Any]) -> None:
    """Replace the ``budget`` in ``run_dir``'s ``config.json`` (a budgeted run's re-plans)."""
    path = run_dir / CONFIG
    record = _read_record(path) | {"budget": budget}
    write_text_atomic(path, json.dumps(record, indent=2) + "\n")


def read_config(run_dir: str | Path) -> tuple[Config, Tokenizer]:
    """The config and tokenizer recorded in ``run_dir``."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a run directory (no {CONFIG})")
    record = _read_record(path)
    try:
        return from_dict(Config, record["config"]), from_description(record["tokenizer"])
    except (TypeError, AttributeError, ValueError, KeyError) as e:  # a value of the wrong kind
        raise ConfigError(f"{path} is damaged ({type(e).__name__}: {e})") from e


def latest_link(out_dir: Path) -> Path:
    """``out_dir/latest``; ConfigError if something other than a link stands there."""
    link = out_dir / LATEST
    if link.exists() and not link.is_symlink():
        raise ConfigError(f"{link} is a {'folder' if link.is_dir() else 'file'}, not the link to "
                          "the newest run that glrnn keeps there: move it away or pick another "
                          "--train.out-dir")
    return link


def point_latest(run_dir: Path) -> None:
    """Make ``run_dir.parent/latest`` a symlink to ``run_dir`` (replaced atomically)."""
    link = latest_link(run_dir.parent)
    tmp = run_dir.parent / f".{LATEST}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.name, target_is_directory=True)
    os.replace(tmp, link)
