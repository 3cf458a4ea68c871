"""Shared by the benchmarks: compile once, warm up, time the median of several calls."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np


def machine() -> str:
    """One line naming the processor, the devices and the jax version."""
    return (f"{platform.processor() or platform.machine()}, {jax.device_count()} "
            f"{jax.default_backend()} device(s), jax {jax.__version__}")


def timed(fn: Callable[..., Any], *args: Any, repeats: int,
          donate: tuple[int, ...] = ()) -> tuple[float, float]:
    """(median seconds per call, XLA temp bytes) of ``jax.jit(fn)(*args)``, compiled and run
    once before timing. With ``donate``, the call's outputs replace those arguments (a training
    step fed its own new state), so every timed call sees fresh buffers."""
    compiled = jax.jit(fn, donate_argnums=donate).lower(*args).compile()
    mem = compiled.memory_analysis()
    temp = float(getattr(mem, "temp_size_in_bytes", 0) or 0)
    args = list(args)

    def call() -> None:
        out = jax.block_until_ready(compiled(*args))
        for i in donate:
            args[i] = out[i]

    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), temp
