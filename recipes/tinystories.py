"""tinystories: byte-level LRU LM on TinyStories from the Hugging Face hub (needs the network
the first time). Sized for one GPU: ~20M parameters, 512-byte windows, bf16 compute."""

from glrnn.config import Config, DataConfig, ModelConfig, OptimConfig, TrainConfig

CONFIG = Config(
    model=ModelConfig(vocab_size=259, d_model=512, n_layers=6, mixer="lru", d_state=512,
                      dtype="bfloat16"),
    data=DataConfig(source="hf:roneneldan/TinyStories", hub_split="train", tokenizer="byte",
                    seq_len=512, batch_size=64, val_fraction=0.002),
    optim=OptimConfig(lr=1e-3, warmup_steps=1000, min_lr_ratio=0.1, weight_decay=0.1,
                      recurrent_lr_factor=0.5),
    train=TrainConfig(steps=30_000, eval_every=1000, log_every=50, checkpoint_every=1000),
)
