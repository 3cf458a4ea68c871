"""pathx: LRA Path-X, Pathfinder at 128 x 128: 16,384 steps (Tay et al. 2021;
glrnn/data/tasks/pathfinder.py).

    python train_lm.py pathx --task.source lra_release/lra_release/pathfinder128

Settings: S5's LRA Path-X run (lindermanlab/S5, bin/run_experiments/run_lra_pathx.sh): 6
bidirectional BatchNorm blocks of width 128 with N = 256, batch 32, 75 epochs, learning rate
0.0018 with the recurrent parameters at 1/3 of it, weight decay 0.06, no dropout, one epoch of
warmup (5,000 steps), mean pooling; the LRU paper's Path-X ring: r in [0.999, 0.9999], phases in
[0, pi/10] (its section 3.3: eigenvalues this close to the unit circle are what lets the LRU
solve Path-X).
"""

import math

from glrnn.task_config import PathfinderConfig, TaskConfig
from glrnn.train.recipes import classifier_recipe

CONFIG = classifier_recipe(
    TaskConfig(name="pathfinder", source="pathfinder128",
               pathfinder=PathfinderConfig(resolution=128)),
    layers=6, width=128, state=256, batch=32, epochs=75, lr=1.8e-3, recurrent_lr_factor=1 / 3,
    weight_decay=0.06, dropout=0.0, warmup_steps=5000, ring=(0.999, 0.9999, math.pi / 10))
