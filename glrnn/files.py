"""Output files: their paths checked before any work, their contents written whole.

:func:`output_file` refuses, with one ``ConfigError`` line naming the option, a path that is a
folder or lies below a file, so that a command fails before it computes what it would then have
nowhere to put. :func:`write_atomic` writes into a temporary file in the target's own folder
(never elsewhere: a rename across file systems is not atomic) and renames it over the target, so
a reader, or a process killed mid-write, sees the old content or the new, never a torn file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from glrnn.errors import ConfigError


def file_in_the_way(folder: Path) -> Path | None:
    """The file standing where ``folder`` or one of its parents must be a folder, if any."""
    for path in (folder, *folder.absolute().parents):
        if path.exists():
            return None if path.is_dir() else path
    return None


def output_file(path: str | Path, flag: str) -> Path:
    """``path`` if a file can be written there (missing folders are made when it is written);
    ConfigError naming ``flag`` if it is a folder or one of its parents is a file."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{flag}={str(path)!r}: expected a file, found a folder")
    if (blocker := file_in_the_way(path.parent)) is not None:
        raise ConfigError(f"{flag}={str(path)!r}: {blocker} is a file, expected a folder")
    return path


def check_folder(folder: Path, flag: str) -> Path:
    """``folder`` if it is one or can be made; ConfigError naming ``flag`` and the file
    standing in the way."""
    if (blocker := file_in_the_way(folder)) is not None:
        raise ConfigError(f"{flag}: {blocker} is a file, expected a folder for {folder}")
    return folder


def make_folder(folder: Path, flag: str) -> Path:
    """``mkdir -p folder`` after :func:`check_folder`."""
    check_folder(folder, flag).mkdir(parents=True, exist_ok=True)
    return folder


def write_atomic(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write`` on a temporary file beside ``path`` (its folder made if missing), then
    rename it to ``path``; on failure the temporary file is removed and ``path`` is untouched.
    The file keeps the permissions of the one it replaces (0644 when new)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """:func:`write_atomic` of UTF-8 ``text``."""
    return write_atomic(path, lambda f: f.write(text.encode()))
