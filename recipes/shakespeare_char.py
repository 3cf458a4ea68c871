"""shakespeare-char: a character-level LRU model of tiny Shakespeare, nanoGPT's benchmark.

    python train_lm.py shakespeare-char --data.source PATH/TO/tinyshakespeare/input.txt

The file is karpathy/char-rnn's ``input.txt`` (1,115,394 characters by ``wc -m``, 65
distinct); split as nanoGPT splits it: the first 90 % of the text trains, the last 10 %
validates. The character vocabulary ``tokenizers/shakespeare-char.json`` was made by
``python -m glrnn.tokenizer_train --source input.txt --kind char
--out tokenizers/shakespeare-char.json`` (65 characters + BOS/EOS/PAD/UNK). The validation loss
is in nats per character; nanoGPT's CPU recipe (a 4-layer, 128-wide transformer) reports 1.88.
A 10-minute budget (``train.minutes``): the steps are measured on the machine it runs on, the
whole validation split scored at the end; ``--train.minutes 0`` trains a fixed 2800 steps
instead. The learning rate (4e-3) and batch (8 windows of 256) are the best of
``bench/shakespeare_study.py``'s rows (docs/RESULTS.md has the study's figures).
"""

from pathlib import Path

from glrnn.config import Config, DataConfig, ModelConfig, OptimConfig, TrainConfig

TOKENIZER = Path(__file__).resolve().parents[1] / "tokenizers" / "shakespeare-char.json"

CONFIG = Config(
    model=ModelConfig(vocab_size=69, d_model=192, n_layers=4, mixer="lru", d_state=192,
                      dropout=0.1),
    data=DataConfig(source="input.txt", tokenizer=str(TOKENIZER), split="head",
                    val_fraction=0.1, seq_len=256, batch_size=8, val_windows=128),
    optim=OptimConfig(lr=4e-3, warmup_steps=100, min_lr_ratio=0.1, weight_decay=0.1),
    train=TrainConfig(minutes=10.0, steps=2800, eval_every=200, log_every=10,
                      checkpoint_every=200),
)
