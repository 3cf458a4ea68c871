"""What every command does with a user's mistake: one line on stderr and an exit status."""

from __future__ import annotations

import sys

from glrnn.config import ConfigError

USER_ERRORS = (ConfigError, FileNotFoundError)


def report(error: Exception) -> int:
    """Print ``error: ...``; return 2 for a bad value, 1 for anything missing."""
    print(f"error: {error}", file=sys.stderr)
    return 2 if isinstance(error, ConfigError) else 1
