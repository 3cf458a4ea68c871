"""Train a recipe: ``python train_lm.py [RECIPE] [--optim.lr 1e-3 --model.n-layers 2 ...]``.

RECIPE is a file in recipes/ (default stdlib-bytes) or a run directory (its config.json, for a
new run: ``python train_lm.py runs/NAME --train.init-from runs/NAME`` fine-tunes an imported
model); every config field can be overridden (``python train_lm.py stdlib-bytes --help`` lists
them with the recipe's values).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import tyro

from glrnn.cli import USER_ERRORS, report
from glrnn.config import Config
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
    return named(cfg, Path(name).name)


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
