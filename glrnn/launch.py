"""Start a job of several processes on this machine:

    python -m glrnn.launch --processes 2 [--cpu-devices 2] -- train_lm.py stdlib-bytes ...

Each process runs ``python COMMAND...`` (this Python) with the job's environment
(glrnn/job.py): the coordinator on 127.0.0.1 at a free port, the process count and the
process's index. ``--cpu-devices K`` gives each process K CPU devices (XLA's
``--xla_force_host_platform_device_count``: a mesh of processes x K devices on one CPU, for
tests and for trying a multi-host setup out). The processes write to this terminal (in a
training job, process 0 alone draws the progress bar and writes the run directory).

When a process fails, the others get a few seconds to stop by themselves (at start-up they
stop together), then are terminated; the launcher exits with the failed process's status, and
names a process that was killed by a signal in one line. Stopping the launcher (Ctrl-C,
SIGTERM) stops the processes too. On a cluster, start the same command
on every host with the variables set (docs/sharding.md) instead.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import tyro

from glrnn.cli import report
from glrnn.config import ConfigError, check
from glrnn.job import DEFAULT_HEARTBEAT_TIMEOUT, DEFAULT_INIT_TIMEOUT, Launch, launch_environment

GRACE_S = 3.0  # how long the others may take to stop by themselves after a failure
POLL_S = 0.1


@dataclass(frozen=True)
class Args:
    processes: int = 2  # how many processes to start
    cpu_devices: int = 0  # CPU devices per process (0: the platform as it is)
    port: int = 0  # the coordinator's port on 127.0.0.1 (0: a free one)
    init_timeout: int = DEFAULT_INIT_TIMEOUT  # seconds the processes wait for each other
    heartbeat_timeout: int = DEFAULT_HEARTBEAT_TIMEOUT  # seconds of silence = a dead process


def split_command(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the launcher's options, the command after ``--``)."""
    argv = list(argv)
    if "--" not in argv:
        return argv, []
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1:]


def check_args(args: Args, command: list[str]) -> None:
    check(args.processes >= 1, "--processes", args.processes, ">= 1")
    check(args.cpu_devices >= 0, "--cpu-devices", args.cpu_devices, ">= 0")
    check(0 <= args.port < 65536, "--port", args.port, "a port number (0: a free one)")
    check(args.init_timeout >= 1, "--init-timeout", args.init_timeout, ">= 1 (seconds)")
    check(args.heartbeat_timeout >= 1, "--heartbeat-timeout", args.heartbeat_timeout,
          ">= 1 (seconds)")
    if not command:
        raise ConfigError("no command: expected one after --, e.g. -- train_lm.py stdlib-bytes")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_environment(args: Args, port: int, index: int) -> dict[str, str]:
    """This environment plus what makes a process process ``index`` of the job."""
    env = dict(os.environ)
    env.update(launch_environment(Launch(f"127.0.0.1:{port}", args.processes, index,
                                         args.init_timeout, args.heartbeat_timeout)))
    if args.cpu_devices:
        flag = f"--xla_force_host_platform_device_count={args.cpu_devices}"
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {flag}".strip()
        env["JAX_PLATFORMS"] = "cpu"
    return env


def stop(processes: Sequence[subprocess.Popen]) -> None:
    """Give the running ``processes`` GRACE_S to end, then terminate (and at last kill) them."""
    deadline = time.monotonic() + GRACE_S
    while any(p.poll() is None for p in processes) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    for p in processes:
        if p.poll() is None:
            p.terminate()
    for p in processes:
        try:
            p.wait(GRACE_S)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def supervise(processes: Sequence[subprocess.Popen]) -> int:
    """Wait for every process; at the first failure stop the others. -> the exit status."""
    while True:
        codes = [p.poll() for p in processes]
        failed = [i for i, code in enumerate(codes) if code not in (None, 0)]
        if failed:
            stop(processes)
            index, code = failed[0], codes[failed[0]]
            if code > 0:  # it said why itself
                return code
            print(f"error: process {index} of {len(processes)} was killed by "
                  f"{signal.Signals(-code).name}; stopped the others", file=sys.stderr,
                  flush=True)
            return 128 - code
        if all(code == 0 for code in codes):
            return 0
        time.sleep(POLL_S)


class Signalled(Exception):
    """The launcher itself was told to stop (Ctrl-C, or SIGTERM from a scheduler)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise(signum: int, frame: object) -> None:
    raise Signalled(signum)


def main(argv: Sequence[str] | None = None) -> int:
    options, command = split_command(sys.argv[1:] if argv is None else argv)
    args = tyro.cli(Args, args=options, prog="python -m glrnn.launch", description=__doc__)
    try:
        check_args(args, command)
    except ConfigError as e:
        return report(e)
    port = args.port or free_port()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _raise)
    processes = [subprocess.Popen([sys.executable, *command],
                                  env=process_environment(args, port, index))
                 for index in range(args.processes)]
    try:
        return supervise(processes)
    except Signalled as stopped:  # the processes stop with the launcher
        stop(processes)
        return 128 + stopped.signum


if __name__ == "__main__":
    sys.exit(main())
