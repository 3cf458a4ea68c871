"""How bench/reliability.py runs one hostile case against a checkout and names its outcome.

A case runs one of the commands (train_lm.py, generate.py, evaluate, plot, tokenizer_train) in a
folder of its own, after a setup that makes the bad input there. Its outcome is one of:

* ``clear``: it failed with one ``error: ...`` line (or, for a malformed command line, tyro's
  box naming the option) and no traceback, or (a case that should recover) it went on and said
  what it skipped;
* ``traceback``: a Python traceback reached the user;
* ``silent``: it exited 0 where it should have failed, or the harm the case looks for happened
  (a half-made run directory, a non-finite checkpoint, an overwritten file, a skip not named).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

OUTCOMES = ("clear", "traceback", "silent")
TOOLS = {"train": ["train_lm.py"], "generate": ["generate.py"],
         "evaluate": ["-m", "glrnn.evaluate"], "plot": ["-m", "glrnn.plot"],
         "tokenizer": ["-m", "glrnn.tokenizer_train"]}
# the tiny model every training case uses: 1 block of width 16 on 4 x 16 bytes a step, checkpoints
# every 5 steps (a case adds --train.steps, 10 for the shared run, and --train.name)
TRAIN = ("--data.source", "{corpus}", "--model.d-model", "16", "--model.n-layers", "1",
         "--model.d-state", "16", "--data.seq-len", "16", "--data.batch-size", "4",
         "--data.val-fraction", "0.25", "--data.val-windows", "8", "--optim.warmup-steps", "2",
         "--train.eval-every", "5", "--train.checkpoint-every", "5", "--train.log-every", "1",
         "--train.out-dir", "runs")


@dataclass
class Ctx:
    """One case's folder (the working directory of its command) and the checkout it runs."""

    dir: Path
    repo: Path
    shared: Path  # the prepared runs and files every case copies from
    background: list[subprocess.Popen] = field(default_factory=list)  # ended after the case

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(self.repo), "JAX_PLATFORMS": "cpu",
                "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1"}

    def command(self, tool: str, *args: str) -> list[str]:
        """``tool``'s command line; ``{NAME}`` in an argument is the shared file or run NAME."""
        head = [str(self.repo / a) if a.endswith(".py") else a for a in TOOLS[tool]]
        def fill(arg: str) -> str:
            return re.sub(r"\{([\w/.-]+)\}", lambda m: str(self.shared / m[1]), arg)
        return [sys.executable, *head, *map(fill, args)]

    def popen(self, argv: list[str]) -> subprocess.Popen:
        """``argv`` started in this folder, in a session of its own, its output dropped."""
        return subprocess.Popen(argv, cwd=self.dir, env=self.env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def run(self, tool: str, *args: str) -> subprocess.CompletedProcess:
        """Run a command during a setup (its failure is the setup's, not the case's)."""
        done = subprocess.run(self.command(tool, *args), cwd=self.dir, env=self.env,
                              capture_output=True, text=True, timeout=300)
        if done.returncode:
            raise RuntimeError(f"setup command failed: {done.stderr[-2000:]}")
        return done

    def copy_run(self, name: str = "tiny") -> Path:
        """The shared finished run ``name`` copied to ``runs/tiny`` here, ``runs/latest`` to it."""
        target = self.dir / "runs" / "tiny"
        shutil.copytree(self.shared / "runs" / name, target, symlinks=True)
        (target / ".lock").unlink(missing_ok=True)
        (self.dir / "runs" / "latest").symlink_to("tiny")
        return target


@dataclass(frozen=True)
class Case:
    """One hostile input: run ``tool args`` in a folder after ``setup``; ``expect`` is "fail" (one
    error line, and ``harm`` must stay None) or "recover" (exit 0, with a line matching
    ``says`` on stderr if given, and ``harm`` None). ``harm`` returns what went wrong, or None.
    ``signal_after`` sends SIGINT once that file exists (relative to the folder), once the
    command has printed ("stdout") or after a time ("12 s"); ``stdin`` is fed to it."""

    name: str
    cls: int
    tool: str
    args: tuple[str, ...]
    expect: str = "fail"
    setup: Callable[[Ctx], None] | None = None
    harm: Callable[[Ctx, str], str | None] | None = None
    says: str = ""
    stdin: bytes = b""
    signal_after: str = ""
    timeout: float = 300  # seconds; a case still running then is stopped (and counted silent)


@dataclass(frozen=True)
class Result:
    case: Case
    outcome: str
    rc: int
    detail: str
    stderr: str  # its lines, progress bars left out


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 240) -> None:
    end = time.monotonic() + timeout
    while not path.exists() and proc.poll() is None and time.monotonic() < end:
        time.sleep(0.2)


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


def run_case(case: Case, repo: Path, shared: Path, work: Path) -> Result:
    """Set the case up in ``work/NAME``, run it, and classify what the user saw."""
    ctx = Ctx(work / case.name, repo, shared)
    shutil.rmtree(ctx.dir, ignore_errors=True)
    ctx.dir.mkdir(parents=True)
    try:
        if case.setup:
            case.setup(ctx)
        before = _runs_state(ctx.dir)
        rc, out, err, overtime = _run_command(case, ctx)
    finally:
        for bg in ctx.background:
            _kill(bg)
    harm = overtime or (case.harm(ctx, out + err) if case.harm else None)
    if case.tool == "train" and case.expect == "fail" and rc and not case.signal_after:
        harm = harm or _new_runs(before, _runs_state(ctx.dir))
    outcome, detail = classify(case, rc, err, harm)
    lines = [x for x in err.replace("\r", "\n").splitlines() if x.strip() and "it/s" not in x
             and "step/s" not in x and "s/step" not in x and "examples/s" not in x]
    return Result(case, outcome, rc, detail, "\n".join(lines))


def _run_command(case: Case, ctx: Ctx) -> tuple[int, str, str, str | None]:
    """(exit status, stdout, stderr, "still running after ..." or None) of the case's command.
    Output goes to files, not pipes: a long run's progress bars would fill a pipe and stall."""
    overtime = None
    with tempfile.TemporaryFile() as out_file, tempfile.TemporaryFile() as err_file:
        proc = subprocess.Popen(ctx.command(case.tool, *case.args), cwd=ctx.dir, env=ctx.env,
                                start_new_session=True, stdin=subprocess.PIPE, stdout=out_file,
                                stderr=err_file, preexec_fn=_default_sigint)
        if case.signal_after:
            _interrupt(case, ctx, proc, out_file)
        try:
            proc.communicate(None if case.signal_after else case.stdin, timeout=case.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            overtime = f"still running after {case.timeout:.0f} s"
        return proc.returncode, _read(out_file), _read(err_file), overtime


def _default_sigint() -> None:
    """In the child: SIGINT as in a terminal (a harness started in the background inherits it
    ignored, and Python would then never see the Ctrl-C the case sends)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(case: Case, ctx: Ctx, proc: subprocess.Popen, out_file: BinaryIO) -> None:
    """Send SIGINT when ``case.signal_after`` says, ``case.stdin`` written first (and left
    open: an interactive session then waits for more)."""
    proc.stdin.write(case.stdin)
    proc.stdin.flush()
    if case.signal_after == "stdout":  # once it has printed something
        while not os.fstat(out_file.fileno()).st_size and proc.poll() is None:
            time.sleep(0.1)
    elif case.signal_after.endswith(" s"):
        time.sleep(float(case.signal_after[:-2]))
    else:
        wait_for(ctx.dir / case.signal_after, proc)
    time.sleep(1)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
    proc.stdin.close()
    proc.stdin = None


def _read(file: BinaryIO) -> str:
    file.seek(0)
    return file.read().decode(errors="replace")


def classify(case: Case, rc: int, err: str, harm: str | None) -> tuple[str, str]:
    """The outcome and a short reason."""
    lines = [line for line in err.splitlines() if line.strip()]
    if "Traceback (most recent call last)" in err:
        return "traceback", next((x for x in reversed(lines) if not x.startswith(" ")), "")[:160]
    if harm:
        return "silent", harm
    # one "error: ..." line, or tyro's box around a command-line mistake
    errors = [line for line in lines if line.startswith("error:")] or [
        line.strip("│ ") for line in lines[1:2] if lines[0].startswith("╭─")]
    if case.expect == "fail" and rc == 0:
        return "silent", "exit 0"
    if rc and errors:
        return "clear", errors[-1][:160]
    if rc:
        return "silent", f"exit {rc}, no error line: {(lines or [''])[-1][:120]}"
    if not case.says:
        return "clear", "exit 0"
    said = [line for line in lines if re.search(case.says, line)]
    return ("clear", said[0][:160]) if said else ("silent", f"no line matching {case.says!r}")


def _runs_state(folder: Path) -> tuple[frozenset[str], str]:
    runs = folder / "runs"
    names = frozenset(p.name for p in runs.iterdir()) if runs.is_dir() else frozenset()
    latest = runs / "latest"
    return names, os.readlink(latest) if latest.is_symlink() else ""


def _new_runs(before: tuple[frozenset[str], str], after: tuple[frozenset[str], str]) -> str | None:
    made = sorted(after[0] - before[0])
    if made:
        return f"a failed start made {made}"
    return f"a failed start moved latest to {after[1]}" if after[1] != before[1] else None
