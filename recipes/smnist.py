"""smnist: sequential MNIST, 784 grey pixels one at a time (glrnn/data/tasks/images.py);
``--task.image.permute`` is psMNIST (one fixed permutation of the pixels from task.seed).

    python train_lm.py smnist --task.source path/to/mnist          # IDX files, .npz or hf:mnist

Settings: minimal-LRU's defaults (github.com/NicolasZucchet/minimal-LRU ``run_train.py``, whose
default dataset is sMNIST): 4 layers, H = 256, N = 128, BatchNorm, dropout 0.1, batch 64, lr
1e-3 with the recurrent parameters at half of it, weight decay 0.05, mean pooling, causal; 100
epochs is its default length.
"""

import math

from glrnn.task_config import TaskConfig
from glrnn.train.recipes import classifier_recipe

CONFIG = classifier_recipe(
    TaskConfig(name="mnist", source="mnist"), layers=4, width=256, state=128, batch=64,
    epochs=100, lr=1e-3, recurrent_lr_factor=0.5, weight_decay=0.05, dropout=0.1,
    warmup_steps=0, ring=(0.0, 0.999, 2 * math.pi), bidirectional=False)
