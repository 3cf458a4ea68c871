"""A job of several processes as their environment describes it (docs/sharding.md).

The variables are those of JAX's documentation for ``jax.distributed.initialize``:
``JAX_COORDINATOR_ADDRESS`` (``host:port`` where process 0 listens), ``JAX_NUM_PROCESSES`` and
``JAX_PROCESS_ID``; or ``GLRNN_DISTRIBUTED=1`` on a cluster JAX recognises itself (SLURM, Cloud
TPU pods, Open MPI), which then finds all three. Two more set the patience of a job:
``GLRNN_INIT_TIMEOUT`` (seconds the processes wait for each other to join, default 300) and
``GLRNN_HEARTBEAT_TIMEOUT`` (seconds without a heartbeat after which JAX takes a process for
dead and stops the others, default 100). :func:`read_launch` reads them (glrnn/train/
distributed.py acts on it); :func:`launch_environment` writes them (``python -m glrnn.launch``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from glrnn.errors import ConfigError

ADDRESS, COUNT, INDEX = "JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"
AUTO = "GLRNN_DISTRIBUTED"
INIT_TIMEOUT, HEARTBEAT_TIMEOUT = "GLRNN_INIT_TIMEOUT", "GLRNN_HEARTBEAT_TIMEOUT"
DEFAULT_INIT_TIMEOUT, DEFAULT_HEARTBEAT_TIMEOUT = 300, 100


@dataclass(frozen=True)
class Launch:
    """One process's view of its job: ``address``, ``count`` and ``index`` as given (all None
    when JAX detects the cluster), and the timeouts in seconds."""

    address: str | None
    count: int | None
    index: int | None
    init_timeout: int = DEFAULT_INIT_TIMEOUT
    heartbeat_timeout: int = DEFAULT_HEARTBEAT_TIMEOUT


def _integer(environ: Mapping[str, str], name: str, low: int, default: int | None = None) -> int:
    text = environ.get(name, None if default is None else str(default))
    if text is None or not text.strip().isdigit() or int(text) < low:
        raise ConfigError(f"{name}={text!r}: expected an integer >= {low}")
    return int(text)


def read_launch(environ: Mapping[str, str]) -> Launch | None:
    """The job ``environ`` describes, or None for a process on its own; a ConfigError names a
    variable that cannot be right."""
    if ADDRESS not in environ and environ.get(AUTO) != "1":
        return None
    timeouts = (_integer(environ, INIT_TIMEOUT, 1, DEFAULT_INIT_TIMEOUT),
                _integer(environ, HEARTBEAT_TIMEOUT, 1, DEFAULT_HEARTBEAT_TIMEOUT))
    if ADDRESS not in environ:
        return Launch(None, None, None, *timeouts)
    address = environ[ADDRESS]
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"{ADDRESS}={address!r}: expected host:port where process 0 listens")
    count, index = _integer(environ, COUNT, 1), _integer(environ, INDEX, 0)
    if index >= count:
        raise ConfigError(f"{INDEX}={index}: expected < {COUNT}={count}")
    return Launch(address, count, index, *timeouts)


def launch_environment(launch: Launch) -> dict[str, str]:
    """The variables that make a process see ``launch`` (what :func:`read_launch` reads)."""
    return {ADDRESS: str(launch.address), COUNT: str(launch.count), INDEX: str(launch.index),
            INIT_TIMEOUT: str(launch.init_timeout),
            HEARTBEAT_TIMEOUT: str(launch.heartbeat_timeout)}
