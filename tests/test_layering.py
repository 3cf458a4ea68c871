"""The floors of glrnn (docs/ARCHITECTURE.md, "Floors"): every import of a glrnn module, made at
the top of a file or inside a function, goes to a lower floor or to the same room of its own
floor, and the import graph has no cycle. Importing ``glrnn.a.b`` also runs ``glrnn/a/__init__``,
so it counts as an import of the package ``glrnn.a`` too.

The names that configs accept are kept in glrnn/config.py (the config imports no registry);
the registries must offer exactly those names.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import glrnn.activations
import glrnn.config
import glrnn.data.tasks
import glrnn.mixers
import glrnn.task_config

PACKAGE = Path(glrnn.__file__).parent

# (floor, room): modules by dotted prefix, the longest prefix deciding. An import goes to a lower
# floor, or to the same room of the same floor.
FLOORS = {
    "glrnn": (0, "ground"), "glrnn.errors": (0, "ground"), "glrnn.files": (0, "ground"),
    "glrnn.activations": (0, "ground"), "glrnn.cli": (0, "ground"),
    "glrnn.config": (1, "config"), "glrnn.task_config": (1, "config"),
    "glrnn.scan": (2, "primitives"), "glrnn.layers": (2, "primitives"),
    "glrnn.params": (2, "primitives"), "glrnn.losses": (2, "primitives"),
    "glrnn.sampling": (2, "primitives"), "glrnn.positions": (2, "primitives"),
    "glrnn.density": (2, "primitives"),
    "glrnn.mixers": (3, "mixers"),
    "glrnn.blocks": (4, "blocks"),
    "glrnn.models": (5, "models"),
    "glrnn.online": (6, "online rules"),
    "glrnn.audio": (7, "data"), "glrnn.tokenizer": (7, "data"), "glrnn.data": (7, "data"),
    "glrnn.frames": (7, "data"),
    "glrnn.runs": (8, "runs"), "glrnn.job": (8, "runs"),
    "glrnn.train": (9, "train"), "glrnn.generate": (9, "generate"),
    "glrnn.state": (9, "generate"), "glrnn.frame_generate": (9, "generate"),
    "glrnn.generate_run": (9, "generate"),
    "glrnn.evaluate": (10, "CLIs"), "glrnn.launch": (10, "CLIs"),
    "glrnn.plot": (10, "CLIs"), "glrnn.tokenizer_train": (10, "CLIs"),
    "glrnn.make_frames": (10, "CLIs"),
    "glrnn.online.stream": (10, "CLIs"), "glrnn.convert": (10, "CLIs"),
}


def modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the package (a package by its __init__.py)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def floor_of(module: str) -> tuple[int, str]:
    prefix = module
    while prefix not in FLOORS:
        if "." not in prefix:
            raise AssertionError(f"{module} has no floor in tests/test_layering.py: give it one")
        prefix = prefix.rpartition(".")[0]
    return FLOORS[prefix]


def _owner(name: str, known: dict[str, Path]) -> str:
    """The module that defines dotted ``name`` (a module, or a name inside one)."""
    while name not in known:
        name = name.rpartition(".")[0]
    return name


def imports(module: str, path: Path, known: dict[str, Path]) -> list[tuple[str, int]]:
    """(imported glrnn module, line) of every import statement in ``path``, with the packages
    that importing it runs (those that are not ``module``'s own packages)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            names += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    found = set()
    for name, line in names:
        if name.split(".")[0] != "glrnn":
            continue
        target = _owner(name, known)
        parts = target.split(".")
        for i in range(2, len(parts) + 1):  # the packages the import runs, then the module
            step = ".".join(parts[:i])
            if not (module == step or module.startswith(step + ".")):
                found.add((step, line))
    return sorted(found)


def graph() -> dict[str, list[tuple[str, int]]]:
    known = modules()
    return {module: imports(module, path, known) for module, path in known.items()}


def test_every_import_goes_down_a_floor_or_stays_in_its_room():
    wrong = []
    for module, targets in graph().items():
        here = floor_of(module)
        for target, line in targets:
            there = floor_of(target)
            if not (there[0] < here[0] or there == here):
                wrong.append(f"{module} (line {line}, floor {here[0]} {here[1]}) imports "
                             f"{target} (floor {there[0]} {there[1]})")
    assert not wrong, "upward or sideways imports:\n" + "\n".join(wrong)


def test_the_import_graph_has_no_cycle():
    edges = {module: sorted({t for t, _ in targets}) for module, targets in graph().items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        for target in edges[module]:
            if state.get(target) == 1:
                return [*path[path.index(target):], target]
            if target not in state:
                cycle = visit(target, [*path, target])
                if cycle:
                    return cycle
        state[module] = 2
        return None

    for module in edges:
        if module not in state:
            cycle = visit(module, [module])
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_checker_sees_function_local_and_upward_imports(tmp_path):
    """The walk finds an import made inside a function, and the package it runs."""
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from glrnn.runs.load import load_run\n")
    found = imports("glrnn.config", source, modules())
    assert ("glrnn.runs", 2) in found and ("glrnn.runs.load", 2) in found
    assert floor_of("glrnn.runs.load")[0] > floor_of("glrnn.config")[0]


@pytest.mark.parametrize("module", ["glrnn.tokenizer", "glrnn.config", "glrnn.task_config",
                                    "glrnn.runs.checkpoint", "glrnn.online.stream"])
def test_a_module_imports_alone_in_a_fresh_interpreter(module):
    root = str(PACKAGE.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [root, *filter(None, [os.environ.get("PYTHONPATH")])]))
    done = subprocess.run([sys.executable, "-c", f"import {module}"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(("names", "registry"), [
    (glrnn.config.MIXER_NAMES, glrnn.mixers.MIXERS),
    (glrnn.task_config.TASK_NAMES, glrnn.data.tasks.TASKS),
    (glrnn.config.ACTIVATIONS, glrnn.activations.ACTIVATIONS),
])
def test_the_names_configs_accept_are_the_registries(names, registry):
    assert len(set(names)) == len(names)
    assert set(names) == set(registry)
