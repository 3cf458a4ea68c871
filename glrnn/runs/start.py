"""The checks a run makes once, at its start, that building a config does not: those that read
a file or ask a registry above the config's floor.

* the tokenizer (``data.tokenizer``, a file for a trained one) is built, and its vocabulary
  checked against ``model.vocab_size`` (a continuous-input model has none: its data's
  normalisation takes the tokenizer's place, glrnn/frames.py);
* the learning rule is checked against the model (glrnn/online/rules.py).

The tokenizer comes back as a value, so the run builds it here and nowhere else.
"""

from __future__ import annotations

from glrnn.config import Config
from glrnn.errors import check
from glrnn.online.rules import check_online_config
from glrnn.tokenizer import Tokenizer, from_name


def start_checks(cfg: Config) -> Tokenizer | None:
    """``cfg``'s tokenizer (None for a continuous-input model); ConfigError naming the field if
    ``cfg`` cannot start a run."""
    tokenizer = None
    if not cfg.model.continuous:
        tokenizer = from_name(cfg.data.tokenizer)
        vocab = tokenizer.vocab_size
        check(cfg.model.vocab_size >= vocab, "model.vocab_size", cfg.model.vocab_size,
              f">= {vocab} (the {cfg.data.tokenizer} tokenizer's vocabulary)")
    check_online_config(cfg)
    return tokenizer
