"""Data sources: text corpora packed into token windows, in memory (text.py) or streamed
(stream.py), WAV clips for a μ-law run (audio.py); :func:`make_data` picks one. The
classification tasks' arrays are in tasks/."""

from __future__ import annotations

from glrnn.config import DataConfig
from glrnn.data.audio import AudioData
from glrnn.data.stream import StreamingTextData
from glrnn.data.text import TextData
from glrnn.tokenizer import Tokenizer


def make_data(cfg: DataConfig, tokenizer: Tokenizer) -> TextData | StreamingTextData | AudioData:
    """The training data of ``cfg`` read with ``tokenizer`` (the run's, built once at its
    start: glrnn/runs/start.py): WAV files for a μ-law tokenizer, else text, streamed when
    ``cfg.streaming``, else in memory."""
    if cfg.tokenizer.startswith("mulaw:"):
        return AudioData(cfg, tokenizer)
    return (StreamingTextData if cfg.streaming else TextData)(cfg, tokenizer)


__all__ = ["AudioData", "StreamingTextData", "TextData", "make_data"]
