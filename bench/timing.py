"""Shared by the benchmarks: compile once, warm up, time the median of several calls (or the
fastest of interleaved rounds, on a shared machine)."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np


def machine() -> str:
    """One line naming the processor, the devices (and their kind: the card) and the jax
    version."""
    return (f"{platform.processor() or platform.machine()}, {jax.device_count()} "
            f"{jax.default_backend()} device(s) ({jax.devices()[0].device_kind}), "
            f"jax {jax.__version__}")


def compile_call(fn: Callable[..., Any], *args: Any,
                 donate: tuple[int, ...] = ()) -> tuple[Callable[[], None], float]:
    """(a call of ``jax.jit(fn)(*args)`` that waits for its result, XLA temp bytes): compiled
    and run once. With ``donate``, the call's outputs replace those arguments (a training step
    fed its own new state), so every call sees fresh buffers."""
    compiled = jax.jit(fn, donate_argnums=donate).lower(*args).compile()
    mem = compiled.memory_analysis()
    temp = float(getattr(mem, "temp_size_in_bytes", 0) or 0)
    args = list(args)

    def call() -> None:
        out = jax.block_until_ready(compiled(*args))
        for i in donate:
            args[i] = out[i]

    call()
    return call, temp


def seconds(call: Callable[[], None]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def timed(fn: Callable[..., Any], *args: Any, repeats: int,
          donate: tuple[int, ...] = ()) -> tuple[float, float]:
    """(median seconds per call, XLA temp bytes) of ``jax.jit(fn)(*args)``, compiled and run
    once before timing (``donate``: see :func:`compile_call`)."""
    call, temp = compile_call(fn, *args, donate=donate)
    return float(np.median([seconds(call) for _ in range(repeats)])), temp


def fastest_interleaved(calls: dict[str, Callable[[], None]], rounds: int) -> dict[str, float]:
    """The fastest of ``rounds`` timings of each call, the calls taken in turn in every round:
    on a machine shared with other work, load falls on all of them alike, and the fastest run
    is the one least disturbed."""
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(rounds):
        for name, call in calls.items():
            best[name] = min(best[name], seconds(call))
    return best
