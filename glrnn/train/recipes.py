"""Named recipes: ``recipes/<name>.py`` files at the repository root, each defining ``CONFIG``.

A recipe's name is its file name with ``-`` for ``_`` (``stdlib-bytes`` is
``recipes/stdlib_bytes.py``). The files are loaded by path, not imported as a package, so the
folder can never shadow another module named ``recipes``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from glrnn.config import Config, ConfigError

RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"
DEFAULT_RECIPE = "stdlib-bytes"


def recipe_names(directory: Path = RECIPES_DIR) -> list[str]:
    """The names of the recipes in ``directory``, sorted."""
    return sorted(p.stem.replace("_", "-") for p in directory.glob("*.py")
                  if not p.name.startswith("_"))


def load_recipe(name: str, directory: Path = RECIPES_DIR) -> Config:
    """The ``CONFIG`` of recipe ``name``; an unknown name lists the known ones."""
    path = directory / f"{name.replace('-', '_')}.py"
    if "/" in name or not path.is_file():
        raise ConfigError(f"recipe {name!r}: expected one of {', '.join(recipe_names(directory))}")
    spec = importlib.util.spec_from_file_location(f"_glrnn_recipe_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = getattr(module, "CONFIG", None)
    if not isinstance(config, Config):
        raise ConfigError(f"recipe {name!r} ({path}) defines no CONFIG of type glrnn.config.Config")
    return config
