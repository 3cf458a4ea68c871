"""Parameters of a recipe's language model, with any flags of train_lm.py applied.

    python bench/param_count.py stdlib-bytes
    python bench/param_count.py shakespeare-char --model.mixer gateloop_qkv

Builds the model for the recipe's vocabulary (its tokenizer file, if any, is read) and prints
the number of parameters (tied embeddings counted once).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import jax
import jax.numpy as jnp

from glrnn.models import LanguageModel
from glrnn.params import init_params
from glrnn.tokenizer import from_name

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    spec = importlib.util.spec_from_file_location("train_lm", ROOT / "train_lm.py")
    train_lm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_lm)
    cfg = train_lm.parse(sys.argv[1:])
    vocab = from_name(cfg.data.tokenizer).vocab_size
    model = LanguageModel(cfg.model.__class__(**{**vars(cfg.model), "vocab_size": vocab}))
    params, _ = init_params(model, jax.random.key(0), jnp.zeros((1, 8), jnp.int32))
    n = sum(x.size for x in jax.tree.leaves(params))
    print(f"{' '.join(sys.argv[1:]) or 'default recipe'}: {n:,} parameters ({n / 1e6:.2f}M), "
          f"vocabulary {vocab}")


if __name__ == "__main__":
    main()
