"""scifar: sequential CIFAR-10 in colour, 1,024 steps of 3 channels (the LRU paper's sCIFAR;
glrnn/data/tasks/images.py). ``--task.image.no-colour`` gives LRA's grey Image task.

    python train_lm.py scifar --task.source path/to/cifar-10-batches-py   # or hf:cifar10

Settings: S5's LRA Image run (lindermanlab/S5, bin/run_experiments/run_lra_cifar.sh): 6
bidirectional BatchNorm blocks of width 512 with N = 384, batch 50, learning rate 0.0045 with
the recurrent parameters at 1/4.5 of it, weight decay 0.07, dropout 0.1, one epoch of warmup
(900 steps), mean pooling; 180 epochs as the minimal-LRU README runs the LRU paper's sCIFAR.
Ring r in [0.9, 0.999] with phases over the whole circle: glrnn's reading of the LRU paper.
"""

import math

from glrnn.task_config import ImageConfig, TaskConfig
from glrnn.train.recipes import classifier_recipe

CONFIG = classifier_recipe(
    TaskConfig(name="cifar", source="cifar-10-batches-py", image=ImageConfig(colour=True)),
    layers=6, width=512, state=384, batch=50, epochs=180, lr=4.5e-3,
    recurrent_lr_factor=1 / 4.5, weight_decay=0.07, dropout=0.1, warmup_steps=900,
    ring=(0.9, 0.999, 2 * math.pi))
