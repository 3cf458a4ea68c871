"""copy-online: the copy task learned online, as in figure 2 of the online-learning paper
(Zucchet et al. 2023, experiments/figure2_AB.yaml of their repository): recall a 7-bit pattern
of 20 steps after a delay (glrnn/data/tasks/copy.py), a prediction at every step.

    python train_lm.py copy-online                       # online_full (exact RTRL per layer)
    python train_lm.py copy-online --train.rule bptt     # or online_spatial, online_1truncated

Their settings: LRU blocks of width 128 with N = 64 and a GLU (2 layers here; they vary 1-5),
pre-norm LayerNorm, dropout 0.1, batch 50, 25 epochs of 20,000 sequences, Adam at 1e-3 with the
recurrent parameters at half of it, cosine decay, no warmup, no weight decay. Causal, no pooling.
The ring r in [0, 0.999], phases over the whole circle (theirs: r in [0, 1)). Online rules run
one position at a time (glrnn/online), so BatchNorm and bidirectional blocks are not offered.
"""

import math
from dataclasses import replace

from glrnn.task_config import TaskConfig
from glrnn.train.recipes import classifier_recipe

BASE = classifier_recipe(
    TaskConfig(name="copy"), layers=2, width=128, state=64, batch=50, epochs=25, lr=1e-3,
    recurrent_lr_factor=0.5, weight_decay=0.0, dropout=0.1, warmup_steps=0,
    ring=(0.0, 0.999, 2 * math.pi), pooling="none", bidirectional=False, norm="layernorm",
    eval_every=200)
CONFIG = replace(BASE, train=replace(BASE.train, rule="online_full"))
