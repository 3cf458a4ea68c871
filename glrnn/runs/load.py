"""Loading a language model's run directory: its config, tokenizer, model and newest parameters.

The one way every reader of a run (generation, evaluation, ``train.init_from``) gets at it; the
files themselves are written by glrnn/runs/run.py (config, tokenizer) and
glrnn/runs/checkpoint.py (orbax checkpoints).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax

from glrnn.config import Config, ConfigError
from glrnn.frames import FrameCodec
from glrnn.models import LanguageModel, example_inputs
from glrnn.params import abstract_params
from glrnn.runs.checkpoint import Checkpoints, checkpoint_dir
from glrnn.runs.run import read_config
from glrnn.tokenizer import Tokenizer

Params = Any  # the model's parameter pytree


def load_run(run_dir: str | Path) -> tuple[Config, Tokenizer | FrameCodec, LanguageModel,
                                           Params, int]:
    """(config, tokenizer (a continuous-input run's: its frame normalisation), model, params of
    the newest readable checkpoint, its step) of a language model's run, the params on this
    process's first device whatever devices and processes wrote them; ConfigError for a
    classifier's run or one with no readable checkpoint."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    cfg, tokenizer = read_config(run_dir)
    if cfg.task.name:
        raise ConfigError(f"{run_dir} is a classifier's run (task.name={cfg.task.name!r}), "
                          "expected a language model's")
    if not checkpoint_dir(run_dir).is_dir():
        raise FileNotFoundError(f"run directory {run_dir} has no checkpoints yet")
    checkpoints = Checkpoints(run_dir, writable=False)
    try:
        if checkpoints.latest_step() is None:
            raise FileNotFoundError(f"run directory {run_dir} has no checkpoints yet")
        model = LanguageModel(cfg.model)
        abstract, _ = abstract_params(model, example_inputs(cfg.model))
        here = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=here),
                                abstract)
        step, params = checkpoints.newest_readable(
            lambda step: checkpoints.restore_params(step, abstract)[0])
    finally:
        checkpoints.close()
    return cfg, tokenizer, model, params, step
