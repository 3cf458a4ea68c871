"""Settings for the whole test session: the tests are compile-bound, so compiling is made cheap.

- XLA compiles with LLVM optimisation level 0: the tests' shapes are tiny, so a program runs in
  milliseconds and compiling it is what costs (measured: 2.1x less wall time for test_train and
  test_generate with the cache below). The programs compute the same operations; runs and the
  benchmarks keep XLA's default level. Subprocesses the tests start inherit the setting.
- XLA's Eigen thread pool is off: pytest-xdist already keeps both cores busy with a process
  each, and at these sizes the pool only adds handoffs.
- One persistent compilation cache per test process: many tests build the same program from
  fresh Python closures (each ``train_lm.main`` jits anew), so JAX's in-memory cache misses and
  XLA would compile the same HLO again. The cache lives in a temporary folder that dies with the
  session, so no test ever loads a program an earlier checkout compiled.
"""

from __future__ import annotations

import os
import shutil
import tempfile

_FLAGS = {"--xla_backend_optimization_level": "0", "--xla_cpu_multi_thread_eigen": "false"}
for _flag, _value in _FLAGS.items():
    if _flag not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_flag}={_value}".strip()

import jax  # noqa: E402  (after XLA_FLAGS: the backend reads them when it starts)

_CACHE = tempfile.mkdtemp(prefix="glrnn-xla-cache-")


def pytest_configure(config) -> None:
    jax.config.update("jax_compilation_cache_dir", _CACHE)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


def pytest_unconfigure(config) -> None:
    shutil.rmtree(_CACHE, ignore_errors=True)
