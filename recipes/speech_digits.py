"""speech-digits: an LRU language model of spoken digits as 8-bit μ-law samples (8 kHz).

    python train_lm.py speech-digits --data.source path/to/free-spoken-digit-dataset/recordings
    python generate.py --run runs/latest --audio digits.wav --max-new-tokens 8000

The source is a folder of WAV files (the Free Spoken Digit Dataset's ``recordings/``: 8 kHz,
16-bit mono; other rates are resampled to 8 kHz); each file is one document, split by a hash of
its name. One token per sample, windows of 2048 samples (a quarter of a second). An 8.5-minute
budget (``train.minutes``: the steps are measured on the machine it runs on); ``--train.minutes
0`` trains the 600 steps that took 8 min 30 s on a 2-core CPU (docs/recipes.md).
"""

from glrnn.config import Config, DataConfig, ModelConfig, OptimConfig, TrainConfig

CONFIG = Config(
    model=ModelConfig(vocab_size=259, d_model=192, n_layers=4, mixer="lru", d_state=192),
    data=DataConfig(source="recordings", tokenizer="mulaw:8000", seq_len=2048, batch_size=4,
                    val_fraction=0.05, val_windows=32),
    optim=OptimConfig(lr=2e-3, warmup_steps=50, min_lr_ratio=0.1, weight_decay=0.1),
    train=TrainConfig(minutes=8.5, steps=600, eval_every=200, log_every=10,
                      checkpoint_every=200),
)
