"""One owner per run directory: an exclusive ``flock`` on ``RUN/.lock`` held while a run trains.

The kernel releases a ``flock`` when its process ends, however it ends (``kill -9`` included),
so a lock never outlives its run and needs no clean-up. A second run of the same directory is
refused with the PID the owner wrote into the file, before it reads or writes anything there.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

from glrnn.config import ConfigError
from glrnn.files import make_folder
from glrnn.runs.run import RUN_DIR_OPTIONS

LOCK = ".lock"


class RunLock:
    """Makes ``run_dir`` if it is missing and owns it until :meth:`release`; ConfigError naming
    the owner's PID if another live process holds it. With ``hold=False`` (the other processes
    of a multi-process run, whose process 0 holds it) it only makes the directory, and never
    removes it."""

    def __init__(self, run_dir: Path, hold: bool = True) -> None:
        self.run_dir, self.made, self.fd = run_dir, hold and not run_dir.exists(), None
        make_folder(run_dir, RUN_DIR_OPTIONS)
        if not hold:
            return
        fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise ConfigError(f"{run_dir} is in use by process {owner} (a run with the same "
                              "train.name): wait for it to end or pick another "
                              "--train.name") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def abandon(self) -> None:
        """Release, and remove the directory if this lock made it: a start that failed leaves
        no half-made run directory."""
        self.release()
        if self.made:
            shutil.rmtree(self.run_dir, ignore_errors=True)
