"""copy: recall a 7-bit pattern of 20 steps after a delay (the online-learning LRU paper's copy
task, Zucchet et al. 2023; glrnn/data/tasks/copy.py), with the LRU at minimal-LRU's defaults.

    python train_lm.py copy                       # 4 epochs of 20,000 sequences
    python train_lm.py copy --task.copy.delay 100 --model.lru.r-min 0.99

Model and optimiser: the defaults of minimal-LRU's ``run_train.py`` (github.com/NicolasZucchet/
minimal-LRU, whose README reports 100 % test accuracy within 2-4 epochs with them): 4 layers,
H = 256, N = 128, BatchNorm before each block, dropout 0.1, AdamW lr 1e-3 with the recurrent
parameters at half of it, weight decay 0.05, batch 64, cosine decay, no pooling (a prediction at
every step; the recall steps are scored), causal. Their ring r in [0, 1), phase in [0, 2 pi)
becomes r in [0, 0.999] here.
"""

import math

from glrnn.task_config import TaskConfig
from glrnn.train.recipes import classifier_recipe

CONFIG = classifier_recipe(
    TaskConfig(name="copy"), layers=4, width=256, state=128, batch=64, epochs=4, lr=1e-3,
    recurrent_lr_factor=0.5, weight_decay=0.05, dropout=0.1, warmup_steps=0,
    ring=(0.0, 0.999, 2 * math.pi), pooling="none", bidirectional=False, eval_every=100)
