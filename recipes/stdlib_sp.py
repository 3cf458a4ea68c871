"""stdlib-sp: the default corpus with the shipped SentencePiece tokenizer (BPE, 4096 pieces).

``tokenizers/stdlib-bpe-4k.model`` was made by ``python -m glrnn.tokenizer_train --source stdlib
--kind bpe --vocab-size 4096 --out tokenizers/stdlib-bpe-4k.model`` (3.11 bytes per token on the
standard library: ``python bench/tokenizer_bytes.py``), so windows of 128 tokens hold about 400
bytes, 1.6 times stdlib-bytes' 256.
Compare the two runs in bits per byte (``python -m glrnn.plot runs/A runs/B``).
"""

from pathlib import Path

from glrnn.config import Config, DataConfig, ModelConfig, OptimConfig, TrainConfig

TOKENIZER = Path(__file__).resolve().parents[1] / "tokenizers" / "stdlib-bpe-4k.model"

CONFIG = Config(
    model=ModelConfig(vocab_size=4096, d_model=192, n_layers=4, mixer="lru", d_state=192),
    data=DataConfig(source="stdlib", tokenizer=str(TOKENIZER), seq_len=128, batch_size=16),
    optim=OptimConfig(lr=2e-3, warmup_steps=100, min_lr_ratio=0.1, weight_decay=0.1),
    train=TrainConfig(steps=1000, eval_every=250, log_every=10, checkpoint_every=250),
)
