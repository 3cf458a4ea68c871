"""Audio corpora: a folder (or glob) of WAV files as μ-law token streams, one document per file.

Files are split into train/validation by a hash of their relative path (as text documents
are), each is resampled to the tokenizer's rate if needed, encoded to 8-bit μ-law tokens and
packed ``BOS clip EOS BOS clip EOS ...``; windows are drawn exactly as for text (a function of
seed and step), so training, resuming and evaluation treat audio and text alike.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from glrnn.audio import MuLawTokenizer, read_wav
from glrnn.config import ConfigError, DataConfig
from glrnn.data.text import (
    Document,
    source_files,
    split_documents,
    split_windows,
    train_batch,
    validation_windows,
    window_count,
)


class AudioData:
    """The training-data protocol (``train_batch``, ``val``, ``val_split``, ``state``,
    ``restore``, ``tokenizer``) over the WAV files of ``cfg.source``."""

    def __init__(self, cfg: DataConfig, tokenizer: MuLawTokenizer) -> None:
        self.cfg = cfg
        self.tokenizer = tokenizer
        root, files = source_files(cfg.source)
        wavs = {p.relative_to(root).as_posix(): p for p in files if p.suffix.lower() == ".wav"}
        if not wavs:
            raise ConfigError(f"data.source={cfg.source!r}: no .wav files among {len(files)}")
        train, val = split_documents([Document(key, "") for key in sorted(wavs)],
                                     cfg.val_fraction, cfg.seed)
        self.train_tokens = self._pack([wavs[d.key] for d in train])
        val_tokens = self._pack([wavs[d.key] for d in val])
        if window_count(len(val_tokens), cfg.seq_len) < 1 or len(self.train_tokens) <= cfg.seq_len:
            raise ConfigError(f"data.source={cfg.source!r}: {len(self.train_tokens)} training and "
                              f"{len(val_tokens)} validation samples, fewer than one window of "
                              f"data.seq_len + 1 = {cfg.seq_len + 1} in a split")
        self.val_tokens = val_tokens
        self.val = validation_windows(val_tokens, cfg.seq_len, cfg.val_windows)
        self.n_train_docs, self.n_val_docs = len(train), len(val)

    def _pack(self, paths: list) -> np.ndarray:
        tok = self.tokenizer
        parts = []
        for path in paths:
            samples, rate = read_wav(path)
            parts.append(np.asarray([tok.bos_id, *tok.encode_audio(samples, rate), tok.eos_id],
                                    np.uint16))
        return np.concatenate(parts) if parts else np.zeros(0, np.uint16)

    def train_batch(self, step: int, rows: slice = slice(None)) -> np.ndarray:
        return train_batch(self.train_tokens, self.cfg.batch_size, self.cfg.seq_len,
                           self.cfg.seed, step, rows)

    def val_split(self) -> Iterator[np.ndarray]:
        """The windows of the whole validation split (glrnn.data.text.split_windows)."""
        return split_windows([self.val_tokens], self.cfg.seq_len)

    @property
    def n_val_targets(self) -> int:
        """The tokens the whole validation split scores (all but its first)."""
        return len(self.val_tokens) - 1

    def state(self) -> dict:
        return {}

    def restore(self, state: dict) -> None:
        """Nothing to restore: batches are a function of the step."""
