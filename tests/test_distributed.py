"""Training in several processes through JAX's distributed runtime (CPU devices, gloo
collectives) computes what one process with the same device count computes; checkpoints move
between process counts both ways; one process writes the run directory; a dead process or a
job that does not fit together ends with a clear error instead of a hang.

XLA's device count and JAX's distributed runtime are fixed when a process starts, so every job
is a fresh set of Python processes started with the environment of glrnn/job.py (what
``python -m glrnn.launch`` sets); a job trains its runs one after another (``train_lm.main``).
All jobs share a persistent compilation cache, so each program is compiled once.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tiny_lm import ROOT, load_script, write_corpus

from glrnn.config import ConfigError
from glrnn.job import (
    ADDRESS,
    AUTO,
    COUNT,
    INDEX,
    INIT_TIMEOUT,
    Launch,
    launch_environment,
    read_launch,
)
from glrnn.launch import Args, free_port, process_environment
from glrnn.launch import main as launch_main
from glrnn.runs.checkpoint import checkpoint_dir
from glrnn.runs.distributed import disagreement
from glrnn.train.metrics import read_metrics

STEPS = 10
WORKER = """
import json, os, sys
sys.path.insert(0, {root!r})
import train_lm
statuses = [train_lm.main(argv) for argv in {runs!r}[int(os.environ.get("JAX_PROCESS_ID", 0))]]
print(json.dumps(statuses))
sys.exit(max(statuses))
"""


def tiny_args(tmp: Path, name: str, *extra: str) -> list[str]:
    """train_lm.py flags of a tiny LM run NAME in ``tmp/runs`` on ``tmp/corpus``: 10 steps,
    a row per step, checkpoints at 5 and 10, one evaluation at the end."""
    return ["--data.source", str(tmp / "corpus"), "--data.seq-len", "16", "--data.batch-size",
            "4", "--data.val-fraction", "0.25", "--data.val-windows", "4", "--model.d-model",
            "16", "--model.n-layers", "1", "--model.d-state", "16", "--model.mlp-ratio", "1.0",
            "--optim.lr", "1e-2", "--optim.warmup-steps", "3", "--train.steps", str(STEPS),
            "--train.eval-every", str(STEPS), "--train.log-every", "1",
            "--train.checkpoint-every", "5", "--train.out-dir", str(tmp / "runs"),
            "--train.name", name, *extra]


def cached(tmp: Path, env: dict[str, str]) -> dict[str, str]:
    """``env`` with the tests' package path and the compilation cache all jobs share."""
    return {**env, "PYTHONPATH": str(ROOT), "JAX_COMPILATION_CACHE_DIR": str(tmp / "xla-cache"),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1"}


def environment(tmp: Path, processes: int, devices: int, index: int, port: int,
                heartbeat: int = 60) -> dict[str, str]:
    """Process ``index`` of a job of ``processes`` x ``devices`` CPU devices (a lone process
    when ``processes`` is 1)."""
    args = Args(processes=processes, cpu_devices=devices, init_timeout=60,
                heartbeat_timeout=heartbeat)
    env = process_environment(args, port, index)
    if processes == 1:
        for name in (ADDRESS, COUNT, INDEX):
            env.pop(name)
    return cached(tmp, env)


def start(tmp: Path, processes: int, devices: int, runs: list[list[list[str]]],
          heartbeat: int = 60, launcher: bool = False) -> list[subprocess.Popen]:
    """A job of ``processes`` x ``devices`` CPU devices whose process i trains ``runs[i]``
    (argv lists) in turn: one Popen per process, or one of ``python -m glrnn.launch``."""
    code = WORKER.format(root=str(ROOT), runs=runs)
    pipes = {"cwd": tmp, "text": True, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    if launcher:
        command = ["-m", "glrnn.launch", "--processes", str(processes), "--cpu-devices",
                   str(devices), "--", "-c", code]
        return [subprocess.Popen([sys.executable, *command], env=cached(tmp, dict(os.environ)),
                                 **pipes)]
    port = free_port()
    return [subprocess.Popen([sys.executable, "-c", code], **pipes,
                             env=environment(tmp, processes, devices, index, port, heartbeat))
            for index in range(processes)]


def finish(job: list[subprocess.Popen], timeout: float = 300) -> list[tuple[int, str, str]]:
    """(exit status, stdout, stderr) of every process of ``job``."""
    results = []
    for process in job:
        out, err = process.communicate(timeout=timeout)
        results.append((process.returncode, out, err))
    return results


def run_job(tmp: Path, processes: int, devices: int, runs: list[list[str]],
            launcher: bool = False) -> None:
    """Every process trains ``runs``; all must succeed."""
    job = start(tmp, processes, devices, [runs] * processes, launcher=launcher)
    for status, _, err in finish(job):
        assert status == 0, err[-3000:]


def losses(run_dir: Path) -> tuple[list[int], np.ndarray]:
    rows = read_metrics(run_dir)
    return [row["step"] for row in rows], np.asarray([row["loss"] for row in rows])


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("distributed")
    write_corpus(tmp / "corpus")
    return tmp


@pytest.fixture(scope="module")
def four_devices(tmp):
    """1 process x 4 devices, then 2 processes x 2 devices (started by the launcher; FSDP over
    each process's two) that also resume the first run from its step 5: losses of (the first
    run, the second, the first with steps 6-10 in two processes), and where ``latest`` points."""
    runs = tmp / "runs"
    one = tiny_args(tmp, "one", "--train.fsdp", "2")
    two = tiny_args(tmp, "two", "--train.fsdp", "2", "--train.checkpoint-every", str(STEPS))
    run_job(tmp, 1, 4, [one])
    single = losses(runs / "one")
    shutil.rmtree(checkpoint_dir(runs / "one") / "10")
    run_job(tmp, 2, 2, [two, one], launcher=True)
    return single, losses(runs / "two"), losses(runs / "one"), (runs / "latest").resolve().name


@pytest.fixture(scope="module")
def two_devices(tmp):
    """2 processes x 1 device, which then start a long run whose process 1 is killed; then
    1 process x 2 devices, which also resumes the 2-process run from its step 5: losses of
    (the 1-process run, the 2-process run, the latter with steps 6-10 in one process), and
    process 0's exit status, stderr and seconds after the kill."""
    runs = tmp / "runs"
    one, two = tiny_args(tmp, "one2"), tiny_args(tmp, "two2")
    endless = tiny_args(tmp, "endless", "--train.steps", "100000", "--train.checkpoint-every",
                        "100000")
    job = start(tmp, 2, 1, [[two, endless]] * 2, heartbeat=5)
    while not (runs / "endless" / "metrics.jsonl").exists() and job[0].poll() is None:
        time.sleep(0.2)
    job[1].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    (status, _, err), _ = finish(job, timeout=120)
    seconds = time.monotonic() - killed
    multi = losses(runs / "two2")
    shutil.rmtree(checkpoint_dir(runs / "two2") / "10")
    run_job(tmp, 1, 2, [one, two])
    return losses(runs / "one2"), multi, losses(runs / "two2"), status, err, seconds


def assert_same_losses(got, expected):
    (steps, values), (expected_steps, expected_values) = got, expected
    assert steps == expected_steps == list(range(1, STEPS + 1))  # one row per step
    np.testing.assert_allclose(values, expected_values, rtol=1e-6)


def test_two_processes_compute_what_one_process_computes(four_devices, two_devices):
    single, multi, *_ = four_devices
    assert_same_losses(multi, single)  # 2 x 2 devices, FSDP within each process
    single, multi, *_ = two_devices
    assert_same_losses(multi, single)  # 2 x 1 device


def test_checkpoints_move_between_process_counts(four_devices, two_devices):
    single, _, single_then_multi, _ = four_devices
    assert_same_losses(single_then_multi, single)  # steps 6-10 in two processes
    single, _, multi_then_single, *_ = two_devices
    assert_same_losses(multi_then_single, single)  # steps 6-10 in one


def test_the_latest_link_follows_the_job(four_devices):
    *_, latest = four_devices
    assert latest == "one"  # the run the 2-process job started last


def test_evaluate_and_generate_from_a_multi_process_run(four_devices, tmp, capsys):
    """In this one-device process, from the step-10 checkpoint two processes of two devices
    wrote (run "one" resumed in the 2-process job): the loop's whole-split validation loss
    again, and text."""
    from glrnn.evaluate import main as evaluate_main

    run = tmp / "runs" / "one"
    assert evaluate_main(["--run", str(run)]) == 0
    full = read_metrics(run)[-1]["full_val_loss"]  # the final state's, scored by the job
    assert f"loss {full:.4f} nats/token" in capsys.readouterr().out
    generate = load_script("generate")
    assert generate.main(["--run", str(run), "--prompt", "the ", "--max-new-tokens", "8"]) == 0
    assert len(capsys.readouterr().out) > len("the \n")


def test_a_killed_process_stops_the_job(two_devices):
    *_, status, err, seconds = two_devices
    assert status != 0
    assert "stopped sending heartbeats" in err  # JAX's heartbeats noticed process 1 was gone
    assert seconds < 60  # a heartbeat timeout of 5 s, not a hang


def test_bad_starts_stop_every_process_with_one_line(tmp):
    """In one job of two processes (one device each): a batch of 3 rows; process 1 with another
    learning rate; a run directory another process holds, which only process 0 (the one that
    locks it) finds out. Each time process 0 alone says why and every process stops."""
    odd = tiny_args(tmp, "odd", "--data.batch-size", "3")
    mixed = [tiny_args(tmp, "mixed", "--optim.lr", lr) for lr in ("1e-2", "2e-2")]
    locked = tiny_args(tmp, "locked")
    (tmp / "runs" / "locked").mkdir(parents=True)
    with (tmp / "runs" / "locked" / ".lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write(str(os.getpid()))
        held.flush()
        (status, out, err), (status1, out1, err1) = finish(start(
            tmp, 2, 1, [[odd, mixed[0], locked], [odd, mixed[1], locked]]))
    assert status == status1 == 2
    assert out.splitlines()[-1] == out1.splitlines()[-1] == "[2, 2, 2]"  # each run's status
    batch, config, lock = error_lines(err)
    assert batch == ("error: data.batch_size=3: expected a multiple of the device count (2 = 2 "
                     "processes x 1)")
    assert config.startswith("error: process 1 resolved another config than process 0")
    assert lock.startswith(f"error: {tmp / 'runs' / 'locked'} is in use by process {os.getpid()}")
    assert not error_lines(err1)


def test_a_job_that_does_not_come_together_ends_with_one_line(tmp):
    """Process 1 of a job whose coordinator nobody runs, and process 0 of a job of two that
    nobody else joins: both give up after GLRNN_INIT_TIMEOUT."""
    waiting = [subprocess.Popen([sys.executable, str(ROOT / "train_lm.py"), "--help"],
                                env={**environment(tmp, 2, 1, index, free_port()),
                                     INIT_TIMEOUT: "2"},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for index in (1, 0)]
    started = time.monotonic()
    results = finish(waiting, timeout=120)
    assert time.monotonic() - started < 60
    assert [status for status, _, _ in results] == [1, 1]
    (line,), (line0,) = (error_lines(err) for _, _, err in results)
    assert line.startswith(f"error: {ADDRESS}=127.0.0.1:")
    assert "did not all join within 2 s (this is process 1)" in line
    assert "(this is process 0)" in line0


def test_the_launcher_stops_the_others_when_a_process_dies():
    """A process killed by a signal is named in one line, and its siblings do not outlive the
    launcher (here process 0 would sleep a minute)."""
    code = ("import os, signal, time\n"
            "if os.environ['JAX_PROCESS_ID'] == '1': os.kill(os.getpid(), signal.SIGKILL)\n"
            "time.sleep(60)")
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "glrnn.launch", "--", "-c", code],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 128 + signal.SIGKILL
    assert out.stderr.strip() == ("error: process 1 of 2 was killed by SIGKILL; stopped the "
                                  "others")
    assert time.monotonic() - started < 30


def test_stopping_the_launcher_stops_its_processes(tmp_path):
    code = ("import os, time\n"
            "open(os.environ['JAX_PROCESS_ID'] + '.pid', 'w').write(str(os.getpid()))\n"
            "time.sleep(60)")
    launcher = subprocess.Popen([sys.executable, "-m", "glrnn.launch", "--", "-c", code],
                                cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    pids = [tmp_path / f"{index}.pid" for index in (0, 1)]
    while not all(p.exists() and p.read_text() for p in pids) and launcher.poll() is None:
        time.sleep(0.1)
    launcher.send_signal(signal.SIGTERM)
    assert launcher.wait(timeout=30) == 128 + signal.SIGTERM
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid.read_text()), 0)


@pytest.mark.parametrize(("argv", "message"), [
    (["--processes", "0", "--", "train_lm.py"], "--processes=0: expected >= 1"),
    (["--processes", "2"], "no command: expected one after --"),
    (["--init-timeout", "0", "--", "train_lm.py"], "--init-timeout=0: expected >= 1")])
def test_launcher_arguments_are_checked(argv, message, capsys):
    assert launch_main(argv) == 2
    assert capsys.readouterr().err.startswith(f"error: {message}")


def test_the_job_environment_round_trips():
    launch = Launch("10.0.0.1:1234", 4, 3, init_timeout=30, heartbeat_timeout=20)
    assert read_launch(launch_environment(launch)) == launch
    assert read_launch({}) is None
    assert read_launch({AUTO: "1"}) == Launch(None, None, None)


@pytest.mark.parametrize(("environ", "message"), [
    ({ADDRESS: "10.0.0.1", COUNT: "2", INDEX: "0"}, "JAX_COORDINATOR_ADDRESS='10.0.0.1': "
     "expected host:port"),
    ({ADDRESS: "h:1", COUNT: "two", INDEX: "0"}, "JAX_NUM_PROCESSES='two': expected an integer"),
    ({ADDRESS: "h:1", COUNT: "2"}, "JAX_PROCESS_ID=None: expected an integer >= 0"),
    ({ADDRESS: "h:1", COUNT: "2", INDEX: "2"}, "JAX_PROCESS_ID=2: expected < JAX_NUM_PROCESSES=2"),
    ({AUTO: "1", INIT_TIMEOUT: "0"}, "GLRNN_INIT_TIMEOUT='0': expected an integer >= 1")])
def test_a_bad_job_environment_is_one_line(environ, message):
    with pytest.raises(ConfigError) as error:
        read_launch(environ)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_process_zero_names_the_first_disagreement():
    rows = lambda counts, digests: np.asarray(  # noqa: E731
        [[0, count, *([digest] * 32)] for count, digest in zip(counts, digests, strict=True)])
    assert disagreement(rows([3, 3, 3], [7, 7, 7])) == ""
    assert disagreement(rows([3, 2, 3], [7, 7, 8])).startswith(
        "JAX_NUM_PROCESSES=2 in process 1: expected 3")
    assert disagreement(rows([3, 3, 3], [7, 7, 8])).startswith(
        "process 2 resolved another config than process 0")
