"""pathfinder: LRA Pathfinder, 32 x 32 images flattened to 1,024 steps: are the two dots joined
(Tay et al. 2021; glrnn/data/tasks/pathfinder.py). ``--task.pathfinder.resolution 128`` with
the pathx recipe's ring is Path-X.

    python train_lm.py pathfinder --task.source lra_release/lra_release/pathfinder32

Settings: S5's LRA Pathfinder run (lindermanlab/S5, bin/run_experiments/run_lra_pathfinder.sh):
6 bidirectional BatchNorm blocks of width 192 with N = 256, batch 64, 200 epochs, learning rate
0.0045 with the recurrent parameters at 1/5 of it, weight decay 0.03, dropout 0.05, one epoch of
warmup (2,500 steps), mean pooling. Ring: glrnn's choice (see docs/recipes.md).
"""

import math

from glrnn.task_config import TaskConfig
from glrnn.train.recipes import classifier_recipe

CONFIG = classifier_recipe(
    TaskConfig(name="pathfinder", source="pathfinder32"), layers=6, width=192, state=256,
    batch=64, epochs=200, lr=4.5e-3, recurrent_lr_factor=0.2, weight_decay=0.03,
    dropout=0.05, warmup_steps=2500, ring=(0.9, 0.999, math.pi / 10))
