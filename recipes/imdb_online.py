"""imdb-online: LRA Text (byte-level IMDb sentiment, 4,096 bytes) learned online, as in table 2
of the online-learning paper (Zucchet et al. 2023, experiments/table2_IMDB.yaml).

    python train_lm.py imdb-online --task.source path/to/aclImdb      # online_full
    python train_lm.py imdb-online --task.source ... --train.rule bptt  # online_spatial, ...

Their settings: 4 LRU blocks of width 64 with N = 64 and a GLU, pre-norm LayerNorm, dropout 0.1,
batch 32, 35 epochs, Adam at 1e-3 with the recurrent parameters at half of it, weight decay
0.05, no warmup, cosine decay, ring r in [0, 0.999]; online_full accumulated over 32
micro-batches of 1. Prediction at the last real byte (pooling "last"; theirs: a running mean
with its gradient stopped).
"""

import math
from dataclasses import replace

from glrnn.task_config import TaskConfig
from glrnn.train.recipes import classifier_recipe

BASE = classifier_recipe(
    TaskConfig(name="imdb", source="aclImdb"), layers=4, width=64, state=64, batch=32,
    epochs=35, lr=1e-3, recurrent_lr_factor=0.5, weight_decay=0.05, dropout=0.1,
    warmup_steps=0, ring=(0.0, 0.999, 2 * math.pi), pooling="last", bidirectional=False,
    norm="layernorm")
CONFIG = replace(BASE, optim=replace(BASE.optim, grad_accum=32),
                 train=replace(BASE.train, rule="online_full"))
