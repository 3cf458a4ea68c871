"""Wall time and peak resident memory of a whole command, as the RESULTS tables report them.

    python bench/measure.py -- python train_lm.py
    python bench/measure.py -- python generate.py --run runs/latest --prompt "def "

Runs the command, then prints its wall time and the largest resident set of any of its
processes (``getrusage(RUSAGE_CHILDREN).ru_maxrss``). Run it on a quiet machine: the figures are
only valid when nothing else runs.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (python bench/measure.py -- COMMAND ...)")
    start = time.perf_counter()
    status = subprocess.call(command)
    wall = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    minutes, seconds = divmod(wall, 60)
    print(f"wall {int(minutes)} min {seconds:.1f} s ({wall:.1f} s), peak resident memory "
          f"{peak_kb / 1e6 * 1.024:.2f} GB, exit status {status}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
