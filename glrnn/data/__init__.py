"""Data sources: text corpora packed into token windows, in memory (text.py) or streamed
(stream.py); tasks come later."""

from __future__ import annotations

from glrnn.config import DataConfig
from glrnn.data.stream import StreamingTextData
from glrnn.data.text import TextData
from glrnn.tokenizer import Tokenizer


def make_data(cfg: DataConfig, tokenizer: Tokenizer | None = None) -> TextData | StreamingTextData:
    """The training data of ``cfg``: streamed when ``cfg.streaming``, else in memory."""
    return (StreamingTextData if cfg.streaming else TextData)(cfg, tokenizer)


__all__ = ["StreamingTextData", "TextData", "make_data"]
