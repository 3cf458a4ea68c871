"""mqar: multi-query associative recall, Zoology's (length, pairs) = (64, 4), vocabulary 8192
(Arora et al. 2023; glrnn/data/tasks/mqar.py).

    python train_lm.py mqar
    python train_lm.py mqar --task.seq-len 256 --task.mqar.pairs 16

Zoology's protocol: 100,000 training sequences, causal models, a prediction at every position
scored at the queries, AdamW with linear warmup and cosine decay. Model: 2 GateLoop blocks of
width 128 with a state of 128 per block (data-controlled gates are what recall needs).
"""

import math

from glrnn.data.tasks.config import MQARConfig, TaskConfig
from glrnn.train.recipes import classifier_recipe

CONFIG = classifier_recipe(
    TaskConfig(name="mqar", seq_len=64, mqar=MQARConfig(pairs=4)), layers=2, width=128,
    state=128, batch=64, epochs=8, lr=3e-3, recurrent_lr_factor=1.0, weight_decay=0.1,
    dropout=0.0, warmup_steps=200, ring=(0.9, 0.999, math.pi / 10), pooling="none",
    bidirectional=False, norm="rmsnorm", mixer="gateloop", eval_every=500)
