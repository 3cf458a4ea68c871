"""retrieval: LRA Retrieval, do two ACL Anthology papers (4,000 bytes each) cite each other
(Tay et al. 2021; glrnn/data/tasks/aan.py). Two towers share the backbone; the head classifies
[u, v, u*v, u-v].

    python train_lm.py retrieval --task.source lra_release/lra_release/tsv_data

Settings: S5's LRA Retrieval run (lindermanlab/S5, bin/run_experiments/run_lra_aan.sh): 6
bidirectional BatchNorm blocks of width 128 with N = 256, batch 32, 20 epochs, learning rate
0.002 with the recurrent parameters at half of it, weight decay 0.05, no dropout, one epoch of
warmup (about 4,600 steps), mean pooling. Ring: glrnn's choice (see docs/recipes.md).
"""

import math

from glrnn.task_config import TaskConfig
from glrnn.train.recipes import classifier_recipe

CONFIG = classifier_recipe(
    TaskConfig(name="aan", source="tsv_data"), layers=6, width=128, state=256, batch=32,
    epochs=20, lr=2e-3, recurrent_lr_factor=0.5, weight_decay=0.05, dropout=0.0,
    warmup_steps=4600, ring=(0.5, 0.99, math.pi / 10))
