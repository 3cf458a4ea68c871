"""The bad inputs of bench/reliability.py: damaged runs, data and tokenizer files, and the
checks that tell whether a case's harm happened (each returns what went wrong, or None)."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
from reliability_runner import TRAIN, Ctx, wait_for

Setup = Callable[[Ctx], None]
Harm = Callable[[Ctx, str], "str | None"]

# restores every step of a run's checkpoints with the checkout's orbax; prints the non-finite parts
NONFINITE = """
import sys, jax, numpy as np, orbax.checkpoint as ocp
from pathlib import Path
bad = []
for part in sorted(p for p in Path(sys.argv[1]).glob("[0-9]*/*") if p.is_dir()):
    try:
        tree = ocp.PyTreeCheckpointer().restore(part.resolve())
    except Exception:
        continue
    if any(np.asarray(x).dtype.kind in "fc" and not np.isfinite(np.asarray(x)).all()
           for x in jax.tree.leaves(tree)):
        bad.append(f"{part.parent.name}/{part.name}")
print(" ".join(bad))
"""


def write_corpus(folder: Path, n_docs: int = 12) -> Path:
    """tests/tiny_lm.py's corpus: small repetitive text files a tiny model learns from."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_docs):
        (folder / f"doc{i:02d}.txt").write_text(
            f"the quick brown fox {i % 3} jumps over the lazy dog. " * 30)
    return folder


def write_wavs(folder: Path, n: int = 6) -> Path:
    """``n`` 0.3 s 8 kHz 16-bit mono tones with noise."""
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(2400) / 8000
    for i in range(n):
        x = np.sin(2 * np.pi * (300 + 50 * i) * t) * 8000
        x = (x + np.random.default_rng(i).normal(0, 500, t.size)).astype("<i2")
        with wave.open(str(folder / f"d{i}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(x.tobytes())
    return folder


# ---- setups: each makes its bad input in the case's folder

def files(**contents: bytes | str) -> Setup:
    """Files (``a__b`` is ``a/b``) holding ``contents`` beside a copy of the tiny corpus in
    ``data/``."""
    def setup(ctx: Ctx) -> None:
        shutil.copytree(ctx.shared / "corpus", ctx.dir / "data")
        for name, body in contents.items():
            path = ctx.dir / name.replace("__", "/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body.encode() if isinstance(body, str) else body)
    return setup


def run_with(*changes: Callable[[Path], None], name: str = "tiny") -> Setup:
    """The shared run ``name`` copied to ``runs/tiny``, then each change applied to it."""
    def setup(ctx: Ctx) -> None:
        run = ctx.copy_run(name)
        for change in changes:
            change(run)
    return setup


def truncate(step: int) -> Callable[[Path], None]:
    """Cut every array file of a step's parameters to 10 bytes."""
    def change(run: Path) -> None:
        for path in (run / "checkpoints" / str(step) / "params").rglob("*"):
            if path.is_file() and path.parent.name == "d":
                path.write_bytes(path.read_bytes()[:10])
    return change


def remove(relative: str) -> Callable[[Path], None]:
    def change(run: Path) -> None:
        path = run / relative
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return change


def empty_step(step: int) -> Callable[[Path], None]:
    def change(run: Path) -> None:
        shutil.rmtree(run / "checkpoints" / str(step))
        (run / "checkpoints" / str(step)).mkdir()
    return change


def write(relative: str, body: str) -> Callable[[Path], None]:
    def change(run: Path) -> None:
        (run / relative).write_text(body)
    return change


def append(relative: str, body: str) -> Callable[[Path], None]:
    def change(run: Path) -> None:
        with open(run / relative, "a") as f:
            f.write(body)
    return change


def edit_config(path: str, value: object) -> Callable[[Path], None]:
    """Set ``config.json``'s field at the dotted ``path`` to ``value``."""
    def change(run: Path) -> None:
        record = json.loads((run / "config.json").read_text())
        *parents, last = path.split(".")
        node = record
        for key in parents:
            node = node[key]
        node[last] = value
        (run / "config.json").write_text(json.dumps(record))
    return change


def partial_step(run: Path) -> None:
    """An unfinished save of step 15: orbax's temporary folder holding half of step 10."""
    tmp = run / "checkpoints" / "15.orbax-checkpoint-tmp-1700000000000000"
    shutil.copytree(run / "checkpoints" / "10" / "params", tmp / "params")


def also(*setups: Setup) -> Setup:
    def setup(ctx: Ctx) -> None:
        for s in setups:
            s(ctx)
    return setup


def saved_state(run: str, to: str) -> Setup:
    """``generate.py --save-state`` of the shared run ``run`` into ``to``."""
    def setup(ctx: Ctx) -> None:
        ctx.run("generate", "--run", f"{{runs/{run}}}", "--prompt", "the ", "--max-new-tokens",
                "2", "--save-state", str(ctx.dir / to))
    return setup


def live_run(name: str = "live", kill_at: str = "") -> Setup:
    """A training run of ``runs/NAME`` left running (100,000 steps) once its first metrics row is
    written; with ``kill_at``, a 10-step run SIGKILLed once that path exists."""
    def setup(ctx: Ctx) -> None:
        steps = "10" if kill_at else "100000"
        proc = ctx.popen(ctx.command("train", *TRAIN, "--train.steps", steps, "--train.name", name))
        ctx.background.append(proc)
        target = ctx.dir / (kill_at or f"runs/{name}/metrics.jsonl")
        wait_for(target, proc)
        if kill_at:
            proc.kill()
            proc.wait()
    return setup


# ---- harms

def nonfinite_checkpoint(ctx: Ctx, output: str) -> str | None:
    """A checkpoint of any run in the case's folder holds NaN or inf."""
    for ckpt in sorted((ctx.dir / "runs").glob("*/checkpoints")):
        done = subprocess.run([sys.executable, "-c", NONFINITE, str(ckpt)], env=ctx.env,
                              capture_output=True, text=True)
        if done.stdout.strip():
            return f"non-finite checkpoint saved: {done.stdout.strip()}"
    return None


def metrics_rewritten(name: str) -> Harm:
    """``runs/NAME/metrics.jsonl`` has a step logged twice or going back (a second writer)."""
    def harm(ctx: Ctx, output: str) -> str | None:
        steps = [json.loads(line)["step"] for line in
                 (ctx.dir / "runs" / name / "metrics.jsonl").read_text().splitlines()
                 if line.endswith("}")]
        if any(b <= a for a, b in itertools.pairwise(steps)):
            return "the first run's metrics.jsonl was written by the second"
        return None
    return harm


def torn_line_kept(ctx: Ctx, output: str) -> str | None:
    """After a resume, metrics.jsonl still holds a line that is not JSON."""
    for line in (ctx.dir / "runs" / "tiny" / "metrics.jsonl").read_text().splitlines():
        try:
            json.loads(line)
        except ValueError:
            return f"a line that is not JSON kept: {line[:40]!r}"
    return None


def file_is_wav(relative: str) -> Harm:
    def harm(ctx: Ctx, output: str) -> str | None:
        path = ctx.dir / relative
        if path.exists() and not path.read_bytes().startswith(b"RIFF"):
            return f"{relative} is no longer a WAV file"
        return None
    return harm


def nothing_generated(ctx: Ctx, output: str) -> str | None:
    """A generation that then failed on its output path: the text was thrown away."""
    return "generated, then failed on its output" if "the " in output.split("error:")[0] else None


def missing(relative: str) -> Harm:
    def harm(ctx: Ctx, output: str) -> str | None:
        return None if (ctx.dir / relative).exists() else f"{relative} was not written"
    return harm


def no_stray_files(ctx: Ctx, output: str) -> str | None:
    """Files left in the case's folder by a failed command (temporary or half-written)."""
    stray = sorted(p.name for p in ctx.dir.iterdir() if p.name.startswith((".", "tmp")))
    return f"left behind: {stray}" if stray else None


