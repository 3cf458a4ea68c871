"""listops-online: LRA ListOps (10 classes, up to 2,000 tokens) learned online, as in table 2
of the online-learning paper (Zucchet et al. 2023, experiments/table2_ListOps.yaml).

    python train_lm.py listops-online                         # online_full, generated data
    python train_lm.py listops-online --train.rule bptt       # online_spatial, online_1truncated

Their settings: 4 LRU blocks of width 256 with N = 128 and a GLU, pre-norm LayerNorm, no
dropout, batch 32, 40 epochs, Adam at 1e-3 with the recurrent parameters at half of it, weight
decay 0.05, 4 epochs of warmup (12,000 steps), cosine decay, ring r in [0, 0.999];
online_full accumulated over 16 micro-batches of 2. Prediction at the last real token (pooling
"last"; theirs: a running mean with its gradient stopped).
"""

import math
from dataclasses import replace

from glrnn.task_config import TaskConfig
from glrnn.train.recipes import classifier_recipe

BASE = classifier_recipe(
    TaskConfig(name="listops"), layers=4, width=256, state=128, batch=32, epochs=40, lr=1e-3,
    recurrent_lr_factor=0.5, weight_decay=0.05, dropout=0.0, warmup_steps=12_000,
    ring=(0.0, 0.999, 2 * math.pi), pooling="last", bidirectional=False, norm="layernorm")
CONFIG = replace(BASE, optim=replace(BASE.optim, grad_accum=16),
                 train=replace(BASE.train, rule="online_full"))
