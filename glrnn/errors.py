"""The ground floor: the error a bad value raises and the checks that raise it.

Imports nothing of glrnn, so that every module (configuration, files, tokenizers) can name a
bad value the same way: ``ConfigError("field=value: expected allowed")``.
"""

from __future__ import annotations

from collections.abc import Iterable


class ConfigError(Exception):
    """A configuration value outside its allowed range.

    Deliberately not a ``ValueError``: tyro wraps ``ValueError`` raised while building nested
    dataclasses into a multi-line box, while other exceptions reach ``train_lm.main`` intact.
    """


def exit_status(error: BaseException) -> int:
    """What a command exits with after ``error``: 2 for a bad value, 130 for Ctrl-C, 1 for
    anything else."""
    if isinstance(error, KeyboardInterrupt):
        return 130
    return 2 if isinstance(error, ConfigError) else 1


def check(ok: bool, name: str, value: object, allowed: str) -> None:
    """Raise ``ConfigError("name=value: expected allowed")`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"{name}={value!r}: expected {allowed}")


def check_choice(name: str, value: str, choices: Iterable[str]) -> None:
    choices = sorted(choices)
    check(value in choices, name, value, f"one of {', '.join(choices)}")
