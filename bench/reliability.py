"""Hostile inputs and faults against a checkout: how many end in one clear line, a traceback, or
silently wrong, by issue 14's classes; and kill -9 resumes against an uninterrupted run.

    python bench/reliability.py                            # this checkout, every case, 8 kills
    git worktree add /tmp/before 097f8a4^                  # the code before issue 14
    python bench/reliability.py --repo /tmp/before         # the same cases against it
    python bench/reliability.py --only lock nan --kills 0  # cases whose name holds a word
    python bench/reliability.py --json after.json; python bench/reliability.py --repo /tmp/before \
        --json before.json; python bench/reliability.py --compare before.json after.json

The cases are in bench/reliability_cases.py (each: a name, a class, a command, a setup that
makes the bad input in a folder of its own, the expected outcome); every case's outcome and
its line is printed, then the counts. Tiny runs (1 block of width 16, 10 steps) are trained once
under ``--work`` with the checkout under test and copied into the cases that need one.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reliability_cases import CASES
from reliability_files import write_corpus, write_wavs
from reliability_runner import OUTCOMES, TRAIN, Ctx, run_case

CLASSES = {1: "non-finite state, float options", 2: "one owner per run directory",
           3: "corrupt checkpoints, config.json", 4: "a user's mistake (files, paths, values)",
           5: "nothing generated lost", 6: "degenerate inputs (UTF-8, empty)"}
TINY_CLS = ("copy", "--model.d-model", "16", "--model.n-layers", "1", "--model.d-state", "16",
            "--train.epochs", "0", "--train.steps", "4", "--train.eval-every", "2",
            "--train.checkpoint-every", "2", "--optim.warmup-steps", "1", "--task.n-train", "64",
            "--task.n-val", "32", "--task.n-test", "32", "--train.out-dir", "runs")
TINY_AUDIO = ("speech-digits", "--data.source", "{wavs}", "--model.d-model", "16",
              "--model.n-layers", "1", "--model.d-state", "16", "--data.seq-len", "64",
              "--data.batch-size", "2", "--data.val-fraction", "0.25", "--data.val-windows", "4",
              "--train.steps", "4", "--optim.warmup-steps", "1", "--train.eval-every", "2",
              "--train.checkpoint-every", "2", "--train.out-dir", "runs")


def prepare(repo: Path, shared: Path) -> None:
    """The corpus, WAV files and the finished tiny runs the cases copy: ``tiny`` (a byte LM,
    checkpoints at steps 5 and 10), ``wide`` (the same at width 24), ``cls`` (a copy-task
    classifier) and ``audio`` (a μ-law LM)."""
    shutil.rmtree(shared, ignore_errors=True)
    write_corpus(shared / "corpus")
    write_wavs(shared / "wavs")
    ctx = Ctx(shared, repo, shared)
    ctx.run("train", *TRAIN, "--train.steps", "10", "--train.name", "tiny")
    ctx.run("train", *TRAIN, "--train.steps", "10", "--model.d-model", "24", "--train.name",
            "wide")
    ctx.run("train", *TINY_CLS, "--train.name", "cls")
    ctx.run("train", *TINY_AUDIO, "--train.name", "audio")


def kill_9(repo: Path, work: Path, trials: int, seed: int = 0) -> list[tuple[float, float]]:
    """``trials`` runs SIGKILLed at random moments, each resumed to the end: (the moment in
    seconds, the largest |loss - uninterrupted loss| over the logged steps; inf if a step is
    missing or the resume failed)."""
    ctx = Ctx(work / "kill-9", repo, (work / "shared").resolve())
    shutil.rmtree(ctx.dir, ignore_errors=True)
    ctx.dir.mkdir(parents=True)
    args = (*TRAIN, "--train.steps", "20", "--train.checkpoint-every", "2")
    start = time.monotonic()
    ctx.run("train", *args, "--train.name", "ref")
    wall = time.monotonic() - start
    ref = _losses(ctx.dir / "runs" / "ref")
    rng = random.Random(seed)
    results = []
    for i in range(trials):
        moment = rng.uniform(0.2 * wall, wall)
        proc = ctx.popen(ctx.command("train", *args, "--train.name", f"k{i}"))
        try:
            proc.wait(timeout=moment)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        try:
            ctx.run("train", *args, "--train.name", f"k{i}")
            got = _losses(ctx.dir / "runs" / f"k{i}", every=True)
            gap = max(abs(loss - ref[step]) if step in ref else float("inf") for step, loss in got)
            gap = gap if {s for s, _ in got} == set(ref) else float("inf")
        except RuntimeError:
            gap = float("inf")
        results.append((moment, gap))
        print(f"kill -9 at {moment:5.1f} s: max |loss - reference| {gap:.2e}", flush=True)
    return results


def _losses(run: Path, every: bool = False):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    pairs = [(row["step"], row["loss"]) for row in rows if "loss" in row]
    return pairs if every else dict(pairs)


def summary(*runs: list[tuple[int, str]]) -> str:
    """The counts by class of one or more runs' (class, outcome) pairs, as a markdown table
    (with several runs, each cell reads ``first → second ...``)."""
    counts = [Counter(run) for run in runs]

    def cell(classes, outcome=None) -> str:
        return " → ".join(str(sum(c[k, o] for k in classes for o in
                                  ([outcome] if outcome else OUTCOMES))) for c in counts)
    lines = ["| class | cases | clear | traceback | silent |", "|---|---:|---:|---:|---:|"]
    for cls, title in CLASSES.items():
        lines.append(f"| {cls}. {title} | {cell([cls])} | "
                     + " | ".join(cell([cls], o) for o in OUTCOMES) + " |")
    lines.append(f"| **all** | **{cell(CLASSES)}** | "
                 + " | ".join(f"**{cell(CLASSES, o)}**" for o in OUTCOMES) + " |")
    return "\n".join(lines)


def load_run(spec: str) -> dict:
    """A ``--json`` file, or several joined by commas: a later file's cases (a rerun with
    ``--only``) replace the earlier's; cases no longer in the table are dropped."""
    names = {c.name for c in CASES}
    cases, kills = {}, []
    for path in spec.split(","):
        run = json.loads(Path(path).read_text())
        cases |= {c["name"]: c for c in run["cases"] if c["name"] in names}
        kills = run["kills"] or kills
    return {"cases": list(cases.values()), "kills": kills}


def compare(specs: list[str]) -> None:
    """The table of several runs' ``--json`` files, then the cases whose outcome changed."""
    runs = [load_run(spec) for spec in specs]
    print(summary(*[[(c["class"], c["outcome"]) for c in run["cases"]] for run in runs]))
    for run, spec in zip(runs, specs, strict=True):
        if run["kills"]:
            exact = sum(gap <= 1e-6 for _, gap in run["kills"])
            print(f"{spec}: kill -9 resumes exact {exact} of {len(run['kills'])}")
    outcomes = [{c["name"]: c["outcome"] for c in run["cases"]} for run in runs]
    for name in outcomes[-1]:
        seen = [o.get(name, "-") for o in outcomes]
        if len(set(seen)) > 1:
            print(f"{name}: {' -> '.join(seen)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", default=str(Path(__file__).resolve().parents[1]),
                        help="the checkout to test (its glrnn is imported)")
    parser.add_argument("--work", default="/tmp/glrnn-reliability",
                        help="a scratch folder (emptied first)")
    parser.add_argument("--only", nargs="*", default=[], help="cases whose name holds a word")
    parser.add_argument("--kills", type=int, default=8, help="kill -9 trials (0: none)")
    parser.add_argument("--jobs", type=int, default=2, help="cases run at once")
    parser.add_argument("--json", help="also write every case's outcome here")
    parser.add_argument("--show", action="store_true",
                        help="print the stderr of every case that is not clear")
    parser.add_argument("--compare", nargs="+", metavar="JSON",
                        help="print the table of earlier --json files (before, after) and stop; "
                             "A.json,B.json: B's cases (a rerun) replace A's")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the tiny runs of an earlier call with the same --work")
    args = parser.parse_args(argv)
    if args.compare:
        compare(args.compare)
        return 0
    repo, work = Path(args.repo).resolve(), Path(args.work).resolve()
    cases = [c for c in CASES if not args.only or any(w in c.name for w in args.only)]
    print(f"{len(cases)} cases against {repo}", flush=True)
    shared = (work / "shared").resolve()  # a link to another --work's tiny runs: their paths
    if not (args.reuse and (shared / "runs" / "audio").is_dir()):
        prepare(repo, shared)

    def one(case):
        result = run_case(case, repo, shared, work / "cases")
        print(f"[{case.cls}] {result.outcome:9} {case.name}: {result.detail}", flush=True)
        if args.show and result.outcome != "clear":
            print("    " + result.stderr[-3000:].replace("\n", "\n    "), flush=True)
        return result

    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(one, cases))
    kills = kill_9(repo, work, args.kills) if args.kills else []
    print()
    print(summary([(r.case.cls, r.outcome) for r in results]))
    if kills:
        exact = sum(gap <= 1e-6 for _, gap in kills)
        print(f"\nkill -9 at random moments: {exact} of {len(kills)} resumes reached the "
              "uninterrupted run's losses (to 1e-6)")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"repo": str(repo), "kills": kills,
             "cases": [{"name": r.case.name, "class": r.case.cls, "outcome": r.outcome,
                        "rc": r.rc, "detail": r.detail} for r in results]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
