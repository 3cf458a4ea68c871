"""imdb: LRA Text, byte-level sentiment of IMDb reviews cut to 4,096 bytes (Tay et al. 2021;
glrnn/data/tasks/imdb.py).

    python train_lm.py imdb --task.source path/to/aclImdb      # or --task.source hf:imdb

Settings: S5's LRA Text run (lindermanlab/S5, bin/run_experiments/run_lra_imdb.sh): 6
bidirectional BatchNorm blocks of width 256 with N = 192, batch 50, 35 epochs, learning rate
0.004 with the recurrent parameters at 1/4 of it, weight decay 0.07, dropout 0.1, no warmup,
mean pooling. Ring: glrnn's choice (see docs/recipes.md).
"""

import math

from glrnn.task_config import TaskConfig
from glrnn.train.recipes import classifier_recipe

CONFIG = classifier_recipe(
    TaskConfig(name="imdb", source="aclImdb"), layers=6, width=256, state=192, batch=50,
    epochs=35, lr=4e-3, recurrent_lr_factor=0.25, weight_decay=0.07, dropout=0.1,
    warmup_steps=0, ring=(0.0, 0.99, math.pi / 10))
