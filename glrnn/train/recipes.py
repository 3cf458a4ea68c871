"""Named recipes: ``recipes/<name>.py`` files at the repository root, each defining ``CONFIG``.

A recipe's name is its file name with ``-`` for ``_`` (``stdlib-bytes`` is
``recipes/stdlib_bytes.py``). The files are loaded by path, not imported as a package, so the
folder can never shadow another module named ``recipes``. A run directory is a recipe too: its
``config.json`` (an imported model has no recipe file: ``train_lm.py runs/NAME
--train.init-from runs/NAME`` fine-tunes it), under a new run name.
"""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

from glrnn.config import (
    ClassifierConfig,
    Config,
    ConfigError,
    DataConfig,
    LRUConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
)
from glrnn.runs.run import CONFIG, read_config
from glrnn.task_config import TaskConfig

RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"
DEFAULT_RECIPE = "stdlib-bytes"


def recipe_names(directory: Path = RECIPES_DIR) -> list[str]:
    """The names of the recipes in ``directory``, sorted."""
    return sorted(p.stem.replace("_", "-") for p in directory.glob("*.py")
                  if not p.name.startswith("_"))


def load_recipe(name: str, directory: Path = RECIPES_DIR) -> Config:
    """The ``CONFIG`` of recipe ``name``, or the config of the run directory ``name`` with its
    run name cleared (a new run, not a resumed one); an unknown name lists the known ones."""
    if (Path(name) / CONFIG).is_file():
        cfg, _ = read_config(name)
        return replace(cfg, train=replace(cfg.train, name="", init_from=""))
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


def classifier_recipe(task: TaskConfig, *, layers: int, width: int, state: int, batch: int,
                      epochs: float, lr: float, recurrent_lr_factor: float, weight_decay: float,
                      dropout: float, warmup_steps: int, ring: tuple[float, float, float],
                      pooling: str = "mean", bidirectional: bool = True,
                      norm: str = "batchnorm", mixer: str = "lru", eval_every: int = 500,
                      min_lr_ratio: float = 0.0) -> Config:
    """A classifier recipe in the LRU/S5 papers' terms: ``layers`` blocks of width H = ``width``
    with N = ``state``, the ring ``(r_min, r_max, max_phase)``, AdamW at ``lr`` (recurrent
    parameters at ``recurrent_lr_factor`` times it) with linear warmup and cosine decay, weight
    decay on the weight matrices, ``epochs`` passes over the training split."""
    r_min, r_max, max_phase = ring
    return Config(
        model=ModelConfig(d_model=width, d_state=state, n_layers=layers, mixer=mixer, norm=norm,
                          dropout=dropout, bidirectional=bidirectional,
                          lru=LRUConfig(r_min=r_min, r_max=r_max, max_phase=max_phase),
                          classifier=ClassifierConfig(pooling=pooling)),
        data=DataConfig(batch_size=batch),
        optim=OptimConfig(lr=lr, warmup_steps=warmup_steps, min_lr_ratio=min_lr_ratio,
                          weight_decay=weight_decay, recurrent_lr_factor=recurrent_lr_factor),
        train=TrainConfig(epochs=epochs, eval_every=eval_every, checkpoint_every=eval_every,
                          log_every=10),
        task=task)
