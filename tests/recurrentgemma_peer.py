"""recurrentgemma (a test-only peer): importing it, and tiny random-weight Griffin and Hawk
models built with it, for tests/test_convert.py.

recurrentgemma 1.0.1 pins typeguard<3, which tyro (glrnn's command lines) cannot take, so CI
installs it with --no-deps beside typeguard 4. Its run-time type checks (``jaxtyping`` with
``typeguard.typechecked``) only run while tracing and change nothing in the compiled programs,
so :func:`import_recurrentgemma` replaces ``typeguard.typechecked`` with the identity first
(bench/mixers.py does the same for the benchmark).
"""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest


def import_recurrentgemma() -> ModuleType:
    """``recurrentgemma.jax``, or the test skipped when the package is not installed."""
    if importlib.util.find_spec("recurrentgemma") is None:  # importing it would run the checks
        pytest.skip("recurrentgemma is not installed (CI installs recurrentgemma==1.0.1 "
                    "--no-deps and jaxtyping before the tests)", allow_module_level=True)
    import typeguard

    typeguard.typechecked = lambda f=None, **_: f
    import recurrentgemma.jax

    return recurrentgemma.jax
