"""Several processes, one run: JAX's distributed runtime, and what the processes agree on.

:func:`initialize_distributed` calls ``jax.distributed.initialize`` for the job the environment
describes (glrnn/job.py; on CPU JAX's collectives across processes are gloo's, its default)
before anything touches a device; a job that does not come together within
``GLRNN_INIT_TIMEOUT`` ends with one line instead of waiting, and a process that dies later is
noticed by JAX's heartbeats, which stop the others. :func:`start_together` runs the start-up
work and a handshake: every process hands over whether its start-up failed, the process count
it was launched with and a hash of its resolved config; if one failed, all stop (that process
reports why, the others exit quietly with its status), and process 0 stops all with one line
when a count or a config differs. Only process 0 writes the run directory's files
(:func:`is_writer`); checkpoints go through orbax, which every process takes part in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import jax
import numpy as np
from jax.experimental import multihost_utils

from glrnn.errors import ConfigError, exit_status
from glrnn.job import ADDRESS, AUTO, COUNT, INIT_TIMEOUT, Launch, read_launch

STAMP_FORMAT = "%Y%m%d-%H%M%S"
T = TypeVar("T")


@dataclass(frozen=True)
class Joined:
    """A job this process is part of: process 0's clock when it came together
    (``YYYYmmdd-HHMMSS``) and the process count this process was launched with."""

    stamp: str
    launched: int


_JOINED: list[Joined] = []  # set once by initialize_distributed


class PeerFailed(Exception):
    """Another process of the job failed at start-up and reported why; this one stops quietly
    with the same exit status."""

    def __init__(self, status: int) -> None:
        super().__init__(f"another process failed at start-up (status {status})")
        self.status = status


def _give_up(launch: Launch) -> None:
    """The job did not come together in time: one line, and out (JAX's own wait would end in
    an abort with a stack trace)."""
    if launch.address:
        line = (f"{ADDRESS}={launch.address}: the {COUNT}={launch.count} processes did not all "
                f"join within {launch.init_timeout} s (this is process {launch.index}); expected "
                f"process 0 to listen there and every process to be started with the same "
                f"{COUNT}")
    else:
        line = (f"{AUTO}=1: the cluster's processes did not all join within "
                f"{launch.init_timeout} s; expected every process of the allocation started")
    print(f"error: {line} (the wait is {INIT_TIMEOUT})", file=sys.stderr, flush=True)
    os._exit(1)


def initialize_distributed(environ: Mapping[str, str] | None = None) -> bool:
    """``jax.distributed.initialize`` for the job the environment describes (a no-op for a
    single process, or once done); call it before anything touches a device. Returns whether
    this process is part of a job."""
    if _JOINED:
        return True
    launch = read_launch(os.environ if environ is None else environ)
    if launch is None:
        return False
    watchdog = threading.Timer(launch.init_timeout, _give_up, (launch,))
    watchdog.daemon = True
    watchdog.start()
    jax.distributed.initialize(
        coordinator_address=launch.address, num_processes=launch.count,
        process_id=launch.index, heartbeat_timeout_seconds=launch.heartbeat_timeout,
        initialization_timeout=launch.init_timeout + 60)  # the watchdog speaks first
    stamp = np.frombuffer(time.strftime(STAMP_FORMAT).encode(), np.uint8)
    stamp = bytes(multihost_utils.broadcast_one_to_all(stamp)).decode()
    watchdog.cancel()
    _JOINED[:] = [Joined(stamp, launch.count or jax.process_count())]
    return True


def job_stamp() -> str:
    """``YYYYmmdd-HHMMSS``: process 0's clock when the job came together (so that every
    process names a new run alike), or now for a single process."""
    return _JOINED[0].stamp if _JOINED else time.strftime(STAMP_FORMAT)


def is_writer() -> bool:
    """Whether this process writes the run directory's files (process 0)."""
    return jax.process_index() == 0


def from_process_0(value: T) -> T:
    """Process 0's ``value`` (a bool, int or float) on every process of a job, so that
    decisions on a measurement agree; ``value`` itself for a single process."""
    if jax.process_count() == 1:
        return value
    return type(value)(multihost_utils.broadcast_one_to_all(np.asarray(value, np.float32)))


def start_together(start: Callable[[], T], config_of: Callable[[T], Any],
                   undo: Callable[[T], None]) -> T:
    """Run ``start`` (the start-up work every process of a job does) and then the start-up
    handshake: every process hands over whether ``start`` failed, the process count it was
    launched with and a hash of its resolved config (``config_of`` its result, a dataclass).
    If a process failed, it raises its own error and the others :class:`PeerFailed`; if a
    count or a config differs, process 0 raises a ConfigError naming it and the others
    :class:`PeerFailed`. A process whose own start succeeded calls ``undo`` on its result
    before it raises. A single process just runs ``start``."""
    try:
        result = start()
    except Exception as error:
        everyone = _exchange(exit_status(error), "")
        first = np.flatnonzero(everyone[:, 0])[0]
        if first == jax.process_index():
            raise
        raise PeerFailed(int(everyone[first, 0])) from None
    everyone = _exchange(0, json.dumps(dataclasses.asdict(config_of(result)), sort_keys=True))
    failed, problem = np.flatnonzero(everyone[:, 0]), disagreement(everyone)
    if len(failed) or problem:
        undo(result)
    if len(failed):
        raise PeerFailed(int(everyone[failed[0], 0]))
    if problem:
        if is_writer():
            raise ConfigError(problem)
        raise PeerFailed(2)
    return result


def _exchange(status: int, config_json: str) -> np.ndarray:
    """int [processes, 2 + 32]: every process's (status, launched process count, SHA-256 of its
    config's JSON), gathered on every process."""
    digest = np.frombuffer(hashlib.sha256(config_json.encode()).digest(), np.uint8)
    launched = _JOINED[0].launched if _JOINED else jax.process_count()
    mine = np.concatenate([[status, launched], digest]).astype(np.int32)
    if jax.process_count() == 1:
        return mine[None]
    return np.asarray(multihost_utils.process_allgather(mine))


def disagreement(everyone: np.ndarray) -> str:
    """What process 0 says when the gathered rows (status, launched count, config hash) differ:
    the first process launched with another count or config ('' when none)."""
    counts, digests = everyone[:, 1], everyone[:, 2:]
    if len(miscounted := np.flatnonzero(counts != len(everyone))):
        index = miscounted[0]
        return (f"{COUNT}={counts[index]} in process {index}: expected {len(everyone)}, the "
                "number of processes that joined the job")
    if len(different := np.flatnonzero((digests != digests[0]).any(axis=1))):
        index = different[0]
        return (f"process {index} resolved another config than process 0 (config hashes "
                f"{_hex(digests[index])} and {_hex(digests[0])}): start every process with the "
                "same command")
    return ""


def _hex(digest: np.ndarray) -> str:
    return bytes(digest.astype(np.uint8)[:6]).hex()
