"""Train a recipe: ``python train_lm.py [RECIPE] [--optim.lr 1e-3 --model.n-layers 2 ...]``.

RECIPE is a file in recipes/ (default stdlib-bytes) or a run directory (its config.json, for a
new run: ``python train_lm.py runs/NAME --train.init-from runs/NAME`` fine-tunes an imported
model); every config field can be overridden (``python train_lm.py stdlib-bytes --help`` lists
them with the recipe's values).

A run's length is ``--train.steps N`` or a wall-clock budget ``--train.minutes M`` (the steps
measured on this machine: glrnn/train/budget.py). ``--train.steps`` over a recipe that has a
budget replaces it; both on one command line are refused.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

import tyro

from glrnn.cli import USER_ERRORS, report
from glrnn.config import Config, ConfigError
from glrnn.runs.distributed import PeerFailed, initialize_distributed
from glrnn.runs.run import named
from glrnn.train import TrainingDiverged, train
from glrnn.train.recipes import DEFAULT_RECIPE, load_recipe


def parse(argv: Sequence[str]) -> Config:
    """The recipe named by ``argv[0]`` (if not a flag) with the remaining flags applied."""
    argv = list(argv)
    name = argv.pop(0) if argv and not argv[0].startswith("-") else DEFAULT_RECIPE
    default = load_recipe(name)
    cfg = tyro.cli(Config, default=default, args=argv, prog=f"train_lm.py {name}",
                   description=__doc__)
    return named(one_length(cfg, argv), Path(name).name)


def given(argv: Sequence[str], flag: str) -> bool:
    """Whether ``flag`` (``--train.steps``) is on the command line ``argv``."""
    return any(arg == flag or arg.startswith(f"{flag}=") for arg in argv)


def one_length(cfg: Config, argv: Sequence[str]) -> Config:
    """``cfg`` with one length: ``--train.steps`` turns a recipe's budget (``train.minutes``)
    off; ConfigError when the command line gives both."""
    if not given(argv, "--train.steps") or not cfg.train.minutes:
        return cfg
    if given(argv, "--train.minutes"):
        raise ConfigError(f"--train.steps {cfg.train.steps} with --train.minutes "
                          f"{cfg.train.minutes:g}: expected one of them (a run's length is a "
                          "step count or a budget)")
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, minutes=0.0))


def main(argv: Sequence[str] | None = None) -> int:
    try:
        initialize_distributed()
        cfg = parse(sys.argv[1:] if argv is None else argv)
        train(cfg)
    except (*USER_ERRORS, TrainingDiverged) as e:
        return report(e)
    except PeerFailed as e:  # another process of the job reported why
        return e.status
    return 0


if __name__ == "__main__":
    sys.exit(main())
