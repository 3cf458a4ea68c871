"""listops: LRA ListOps, 10-way classification of nested MAX/MIN/MED/SM expressions up to 2,000
tokens (Tay et al. 2021; glrnn/data/tasks/listops.py).

    python train_lm.py listops                                  # generated with LRA's procedure
    python train_lm.py listops --task.source lra_release/listops-1000
    python train_lm.py listops --task.listops.test-file listops_nyu/test_d20s.tsv

Settings: S5's LRA ListOps run (lindermanlab/S5, bin/run_experiments/run_lra_listops.sh; the LRU
paper trains its LRA models in S5's setup): 8 bidirectional BatchNorm blocks of width 128, batch
50, 40 epochs, learning rate 0.003 with the recurrent parameters at 1/3 of it, weight decay 0.04,
no dropout, one epoch of warmup (1,920 steps), mean pooling. The LRU's state N = 128 and ring are
glrnn's choices (see docs/recipes.md).
"""

import math

from glrnn.task_config import TaskConfig
from glrnn.train.recipes import classifier_recipe

CONFIG = classifier_recipe(
    TaskConfig(name="listops"), layers=8, width=128, state=128, batch=50, epochs=40, lr=3e-3,
    recurrent_lr_factor=1 / 3, weight_decay=0.04, dropout=0.0, warmup_steps=1920,
    ring=(0.0, 0.99, math.pi / 10))
