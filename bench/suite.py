"""The benchmark suite: the project's benchmarks at accelerator sizes, in one command.

    python bench/suite.py [--out runs/bench-suite.json]   # a GPU or TPU: under 8 minutes
    python bench/suite.py --smoke                          # tiny sizes on CPU: under a minute

Each benchmark runs as its own process (one's memory or failure never touches the next) within
a time limit, and its tables are read back from what it prints:

* ``lru_layer.py``: the LRU layer, every scan method against the paper's reference;
* ``mixers.py``: every time mixer beside the PyPI peers (recurrentgemma's RG-LRU,
  flax-gated-linear-rnn's GateLoop);
* ``train_lm.py``: the LM training step in float32 and bfloat16 beside ``GatedLinearRNNLM``;
* ``decode.py``: decoding speed and memory against the context length;
* ``gla.py``: the matrix-state primitive ``glrnn.scan.gated_linear_attention`` (chunked,
  associative and sequential).

All rows go into one table (benchmark, case, figures), printed and written as JSON with each
benchmark's machine line (which names the device), arguments, status, seconds and output. A
benchmark whose peer packages are missing is skipped with the pip command; one that runs out of
its time limit keeps the rows it printed. At accelerator sizes the benchmarks run one after
another and their limits add up to 7.5 minutes; the smoke runs as many side by side as there
are CPU cores. The exit status is 1 if a benchmark failed or ran out of time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PEERS = "pip install --no-deps flax-gated-linear-rnn==1.0.3 recurrentgemma==1.0.1 jaxtyping"
SMOKE_SECONDS = 120  # a guard against a hang, far above what the smoke takes


@dataclass(frozen=True)
class Benchmark:
    name: str
    script: str  # in bench/
    full: tuple[str, ...]  # arguments at accelerator sizes
    smoke: tuple[str, ...]  # arguments at tiny sizes
    seconds: int  # time limit at accelerator sizes
    keys: int = 1  # leading columns of its tables that name a case
    needs: tuple[str, ...] = ()  # modules beyond glrnn's dependencies


BENCHMARKS = (
    Benchmark("LRU layer", "lru_layer.py",
              ("--lengths", "4096", "16384", "--batch", "8", "--width", "512", "--repeats", "10"),
              ("--lengths", "64", "--batch", "1", "--width", "16", "--repeats", "1",
               "--methods", "sequential"),
              seconds=80, keys=2),
    Benchmark("mixers", "mixers.py",
              ("--lengths", "2048", "8192", "--batch", "8", "--width", "512", "--heads", "8",
               "--repeats", "5"),
              ("--lengths", "64", "--batch", "1", "--width", "16", "--heads", "2",
               "--repeats", "1", "--mixers", "gateloop", "rglru"),
              seconds=150, keys=2,
              needs=("recurrentgemma", "flax_gated_linear_rnn", "jaxtyping")),
    Benchmark("LM training step", "train_lm.py",
              ("--seq-len", "2048", "--batch", "16", "--width", "1024", "--layers", "8",
               "--repeats", "10", "--dtypes", "float32", "bfloat16"),
              ("--seq-len", "32", "--batch", "2", "--width", "16", "--layers", "1",
               "--repeats", "1", "--dtypes", "bfloat16", "--peak-size", "256"),
              seconds=100, needs=("flax_gated_linear_rnn",)),
    Benchmark("decoding", "decode.py", ("--tokens", "1024"),
              ("--contexts", "64", "1024", "--tokens", "16", "--chunk", "16"), seconds=60),
    Benchmark("matrix-state primitive", "gla.py",
              ("--lengths", "4096", "16384", "--batch", "8", "--heads", "8", "--width", "64"),
              ("--lengths", "64", "--batch", "1", "--heads", "1", "--width", "8",
               "--repeats", "1", "--methods", "chunked"),
              seconds=60, keys=4),
)


@dataclass
class Result:
    name: str
    script: str
    args: list[str]
    status: str = "ok"  # or "skipped: ...", "failed: ...", "timed out after N s"
    seconds: float = 0.0
    machine: str = ""
    rows: list[dict[str, dict[str, str]]] = field(default_factory=list)  # {case, figures}
    output: str = ""


def missing(benchmark: Benchmark) -> str:
    """Why ``benchmark`` cannot run here ('' when it can)."""
    absent = [m for m in benchmark.needs if importlib.util.find_spec(m) is None]
    return f"needs {', '.join(absent)} ({PEERS})" if absent else ""


def tables(text: str, keys: int) -> list[dict[str, dict[str, str]]]:
    """The rows of every markdown table in ``text``: the first ``keys`` columns as the case,
    the others as the figures."""
    rows, header = [], None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
        elif not set("".join(cells)) <= set("-: "):  # not the separator row
            pairs = list(zip(header, cells, strict=False))
            rows.append({"case": dict(pairs[:keys]), "figures": dict(pairs[keys:])})
    return rows


def run(benchmark: Benchmark, smoke: bool) -> Result:
    args = list(benchmark.smoke if smoke else benchmark.full)
    result = Result(benchmark.name, benchmark.script, args)
    if reason := missing(benchmark):
        result.status = f"skipped: {reason}"
        return result
    limit = SMOKE_SECONDS if smoke else benchmark.seconds
    env = {**os.environ, **({"JAX_PLATFORMS": "cpu"} if smoke else {})}
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, str(BENCH / benchmark.script), *args], env=env,
                              capture_output=True, text=True, timeout=limit)
        out, err, code = done.stdout, done.stderr, done.returncode
    except subprocess.TimeoutExpired as expired:
        out, err, code = _text(expired.stdout), _text(expired.stderr), None
    result.seconds = time.perf_counter() - started
    if code is None:
        result.status = f"timed out after {limit} s"
    elif code:
        last = err.strip().splitlines()[-1] if err.strip() else ""
        result.status = f"failed (status {code}): {last}"
    result.output = out
    result.machine = next((line[2:] for line in out.splitlines() if line.startswith("# ")), "")
    result.rows = tables(out, benchmark.keys)
    return result


def _text(data: str | bytes | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else data or ""


def table(results: list[Result]) -> str:
    """One markdown table: a row per case of every benchmark, a status row per benchmark
    that did not finish."""
    lines = ["| benchmark | case | figures |", "|---|---|---|"]
    for result in results:
        for row in result.rows:
            case = " ".join(f"{k}={v}" for k, v in row["case"].items())
            figures = "; ".join(f"{k} {v}" for k, v in row["figures"].items())
            lines.append(f"| {result.name} | {case} | {figures} |")
        if result.status != "ok":
            lines.append(f"| {result.name} | ({result.status}) | |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on CPU")
    parser.add_argument("--out", default="runs/bench-suite.json", help="the JSON record")
    parser.add_argument("--only", nargs="*", default=None,
                        help="run only the benchmarks whose script name contains one of these")
    args = parser.parse_args()

    chosen = [b for b in BENCHMARKS if not args.only or any(p in b.script for p in args.only)]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=os.cpu_count() if args.smoke else 1) as pool:
        results = list(pool.map(lambda b: run(b, args.smoke), chosen))
    seconds = time.perf_counter() - started
    mode = "smoke (tiny sizes, CPU)" if args.smoke else "accelerator sizes"
    machine = next((r.machine for r in results if r.machine), "")
    print(f"# benchmark suite, {mode}, {seconds:.0f} s; {machine}")
    print(table(results))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"mode": mode, "seconds": seconds, "machine": machine,
                               "benchmarks": [asdict(r) for r in results]}, indent=2) + "\n")
    print(f"written to {out}")
    bad = [r for r in results if r.status.startswith(("failed", "timed out"))]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
