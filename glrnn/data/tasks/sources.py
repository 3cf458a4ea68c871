"""Where a task's data come from: local paths checked up front, and Hugging Face hub splits.

Every failure is a ``ConfigError`` naming the config field, the path or dataset, and what was
expected, so a wrong ``--task.source`` stops the run before any training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from glrnn.config import ConfigError
from glrnn.task_config import HUB


def existing(path: str, field: str) -> Path:
    """``path`` (``~`` expanded) if it exists, else a ConfigError naming ``field``."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ConfigError(f"{field}={path!r}: no such file or directory")
    return p


def layout_error(root: Path, expected: str) -> ConfigError:
    """A ConfigError for a folder in the wrong layout: what it expected, what is there."""
    names = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
    found = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "") if names else "nothing"
    return ConfigError(f"task.source={str(root)!r}: expected {expected}; found {found}")


def is_hub(source: str) -> bool:
    return source.startswith(HUB)


def hub_split(source: str, split: str) -> Any:
    """Split ``split`` of the hub dataset ``hf:NAME`` (needs the network or the datasets
    cache), as a ``datasets.Dataset``."""
    import datasets

    name = source[len(HUB):]
    try:
        return datasets.load_dataset(name, split=split)
    except Exception as e:  # offline, unknown name or split: say which and why
        raise ConfigError(f"task.source={source!r} (split {split}) could not be loaded: "
                          f"{e}") from e


def hub_column(table: Any, source: str, names: tuple[str, ...]) -> str:
    """The first of ``names`` that ``table`` has, else a ConfigError listing its columns."""
    for name in names:
        if name in table.column_names:
            return name
    raise ConfigError(f"task.source={source!r}: expected a column {' or '.join(names)}; it has "
                      f"{', '.join(table.column_names)}")


def split_files(folder: Path, suffix: str, names: dict[str, tuple[str, ...]],
                expected: str) -> dict[str, Path]:
    """The files ``*<name>*<suffix>`` of ``folder`` for each split in ``names`` (split -> the
    words its file name may contain); train and test are required, several matches for one
    split are refused. ``expected`` describes the layout for the error."""
    if not folder.is_dir():
        raise ConfigError(f"task.source={str(folder)!r}: expected a folder of {expected}, "
                          "not a file")
    files = sorted(folder.glob(f"*{suffix}"))
    found = {}
    for split, words in names.items():
        matches = [p for p in files if any(w in p.name[:-len(suffix)] for w in words)]
        if len(matches) > 1:
            raise ConfigError(f"task.source={str(folder)!r}: several {split} files "
                              f"({', '.join(p.name for p in matches)}): expected one")
        if matches:
            found[split] = matches[0]
    if "train" not in found or "test" not in found:
        raise layout_error(folder, expected)
    return found
