"""selective-copy: reproduce 16 tokens scattered among noise, in order, after a marker (the Mamba
paper's selective copying, Gu & Dao 2023, section 4.1.1; glrnn/data/tasks/selective_copy.py).

    python train_lm.py selective-copy --model.mixer gateloop

Length 4096 and 16 data tokens from a vocabulary of 16 as in the paper; 2 layers of width 64
(the paper's selective-copy models). A data-controlled gate (GateLoop) can skip the noise; the
LRU's fixed decay cannot, which is the paper's point.
"""

import math

from glrnn.task_config import TaskConfig
from glrnn.train.recipes import classifier_recipe

CONFIG = classifier_recipe(
    TaskConfig(name="selective_copy", n_train=20_000), layers=2, width=64, state=64,
    batch=32, epochs=8, lr=2e-3, recurrent_lr_factor=1.0, weight_decay=0.1, dropout=0.0,
    warmup_steps=100, ring=(0.9, 0.999, math.pi / 10), pooling="none", bidirectional=False,
    norm="rmsnorm", mixer="gateloop", eval_every=200)
