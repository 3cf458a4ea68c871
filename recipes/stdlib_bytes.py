"""stdlib-bytes: a byte-level LRU language model of the Python standard library's source.

The default recipe (`python train_lm.py`): it needs no network and finishes in 8 minutes
(``train.minutes``: the steps are measured on the machine it runs on), compilation and
evaluation included; ``--train.minutes 0`` trains the 1000 steps that were its length on a
2-core CPU (docs/RESULTS.md has their figures). Measured training steps (batch 16 x 256
bytes, 2-core CPU shared with other work): d_model/d_state 256 about 630 ms (too slow for 1000
steps in the budget), 192 about 390 ms, 128 about 220 ms.
"""

from glrnn.config import Config, DataConfig, ModelConfig, OptimConfig, TrainConfig

CONFIG = Config(
    model=ModelConfig(vocab_size=259, d_model=192, n_layers=4, mixer="lru", d_state=192),
    data=DataConfig(source="stdlib", tokenizer="byte", seq_len=256, batch_size=16),
    optim=OptimConfig(lr=2e-3, warmup_steps=100, min_lr_ratio=0.1, weight_decay=0.1),
    train=TrainConfig(minutes=8.0, steps=1000, eval_every=250, log_every=10,
                      checkpoint_every=250),
)
