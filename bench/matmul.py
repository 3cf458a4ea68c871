"""Matmul throughput in float32 and bfloat16 at one shape: what mixed precision can buy here.

    python bench/matmul.py [--shape 4096 512 2048] [--repeats 5]

GFLOP/s (2·M·K·N over the best of ``repeats`` calls, compiled first) of an [M, K] × [K, N]
product in each dtype on the default device.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
from timing import machine


def gflops(m: int, k: int, n: int, dtype: str, repeats: int) -> float:
    a = jax.random.normal(jax.random.key(0), (m, k), dtype)
    b = jax.random.normal(jax.random.key(1), (k, n), dtype)
    product = jax.jit(jnp.matmul)
    product(a, b).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        product(a, b).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2.0 * m * k * n / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=[4096, 512, 2048],
                        metavar=("M", "K", "N"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    m, k, n = args.shape
    print(f"# {machine()}; [{m}, {k}] x [{k}, {n}], best of {args.repeats}")
    for dtype in ("float32", "bfloat16"):
        print(f"{dtype}: {gflops(m, k, n, dtype, args.repeats):.1f} GFLOP/s", flush=True)


if __name__ == "__main__":
    main()
