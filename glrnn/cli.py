"""What every command does with a user's mistake: one line on stderr and an exit status."""

from __future__ import annotations

import sys

from glrnn.errors import ConfigError, exit_status

# a bad value or file, a missing one, Ctrl-C
USER_ERRORS = (ConfigError, FileNotFoundError, KeyboardInterrupt)


def report(error: BaseException) -> int:
    """Print ``error: ...`` (``error: interrupted`` for a bare Ctrl-C); return 2 for a bad
    value, 130 for Ctrl-C, 1 for anything else."""
    print(f"error: {str(error) or 'interrupted'}", file=sys.stderr)
    return exit_status(error)
