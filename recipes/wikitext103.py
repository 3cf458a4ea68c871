"""wikitext103: byte-level GateLoop LM on WikiText-103 from the Hugging Face hub (needs the
network the first time; the datasets cache afterwards). Sized for one GPU: ~40M parameters,
1024-byte windows; ``--train.fsdp`` and more devices scale it out (docs/sharding.md)."""

from glrnn.config import Config, DataConfig, ModelConfig, OptimConfig, TrainConfig

CONFIG = Config(
    model=ModelConfig(vocab_size=259, d_model=768, n_layers=8, mixer="gateloop", d_state=768,
                      dtype="bfloat16", dropout=0.1),
    data=DataConfig(source="hf:wikitext", hub_config="wikitext-103-raw-v1", hub_split="train",
                    tokenizer="byte", seq_len=1024, batch_size=32, val_fraction=0.005),
    optim=OptimConfig(lr=1e-3, warmup_steps=2000, min_lr_ratio=0.1, weight_decay=0.1),
    train=TrainConfig(steps=100_000, eval_every=2000, log_every=50, checkpoint_every=2000),
)
