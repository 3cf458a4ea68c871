"""scifar-online: sequential CIFAR-10 (1,024 steps of 3 channels) learned online, as in table 2
of the online-learning paper (Zucchet et al. 2023, experiments/table2_sCIFAR.yaml).

    python train_lm.py scifar-online --task.source path/to/cifar-10-batches-py   # online_full
    python train_lm.py scifar-online --task.source ... --train.rule bptt  # online_spatial, ...

Their settings: 4 LRU blocks of width 256 with N = 128 and a GLU, pre-norm LayerNorm, dropout
0.1, batch 100, 180 epochs, Adam at 1e-3 with the recurrent parameters at half of it, weight
decay 0.1, 18 epochs of warmup (8,100 steps), cosine decay, ring r in [0.9, 0.999]; online_full
accumulated over 20 micro-batches of 5 (its sensitivities are per example). Their readout is a
running mean of the features with its gradient stopped ("pool_st"); here the prediction at the
last pixel (pooling "last"), since a mean over the whole sequence has its error only at the end.
"""

import math
from dataclasses import replace

from glrnn.task_config import ImageConfig, TaskConfig
from glrnn.train.recipes import classifier_recipe

BASE = classifier_recipe(
    TaskConfig(name="cifar", source="cifar-10-batches-py", image=ImageConfig(colour=True)),
    layers=4, width=256, state=128, batch=100, epochs=180, lr=1e-3, recurrent_lr_factor=0.5,
    weight_decay=0.1, dropout=0.1, warmup_steps=8100, ring=(0.9, 0.999, 2 * math.pi),
    pooling="last", bidirectional=False, norm="layernorm")
CONFIG = replace(BASE, optim=replace(BASE.optim, grad_accum=20),
                 train=replace(BASE.train, rule="online_full"))
