"""Streaming text for corpora larger than memory: documents flow from disk or the hub through a
shuffle buffer, are tokenised on the fly and packed into windows; nothing is held but the buffer.

``data.streaming = true`` selects it (``make_data``). The source is read with
``datasets.load_dataset(..., streaming=True)``: text files one document per file, json/jsonl/
parquet one per row, ``hf:NAME`` a hub split. Train/validation are split by a hash of each
document's text (``val_fraction``, seeded); the validation estimate is the first
``val_windows`` windows of the validation documents, fixed, and the whole split is streamed
again window by window when it is scored (``val_split``). Training windows are consecutive
``L + 1``-token slices of the packed stream ``BOS doc EOS BOS doc EOS ...`` of the shuffled
training documents; at the end of the stream the next epoch reshuffles (``set_epoch``).

Exact resume: :meth:`StreamingTextData.state` is (epoch, documents consumed, leftover tokens);
:meth:`restore` rebuilds the same shuffled stream (a function of seed and epoch), skips the
consumed documents and puts the leftover back, so the next batch is the one an uninterrupted
run would have drawn. Skipping re-reads the skipped documents (no tokenising): resuming deep
into an epoch costs a read of that part of the corpus.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np

from glrnn.config import ConfigError, DataConfig
from glrnn.data.text import (
    HUB,
    STDLIB,
    TABLES,
    first_bad_byte,
    innermost,
    not_utf8,
    read_error,
    source_files,
    split_windows,
    text_files,
)
from glrnn.tokenizer import Tokenizer


def _unit(seed: int, text: str) -> float:
    digest = hashlib.sha256(f"{seed}/".encode() + text.encode("utf-8", "replace")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def non_utf8_file(cfg: DataConfig) -> ConfigError | None:
    """The one line naming the first local source file that is not UTF-8 and its first bad
    byte; None if there is none (or the source is not local)."""
    if cfg.source.startswith(HUB) or cfg.source == STDLIB:
        return None
    for path in text_files(source_files(cfg.source)[1]):
        bad = first_bad_byte(path) if path.suffix != ".parquet" else None
        if bad is not None:
            return not_utf8(path, *bad)
    return None


def unreadable(cfg: DataConfig, e: Exception) -> ConfigError:
    """The one line for a source file that cannot be read (a malformed row, a torn file): which
    source, and the reader's own words; for text that is not UTF-8, the file and its first bad
    byte (the reader's error names neither)."""
    if isinstance(innermost(e), UnicodeDecodeError):
        named = non_utf8_file(cfg)
        if named is not None:
            return named
    return ConfigError(f"data.source={cfg.source!r}: a file cannot be read ({read_error(e)})")


def stream_source(cfg: DataConfig) -> Any:
    """An ``IterableDataset`` of rows with a ``text`` column (the documents, in file order)."""
    import datasets

    if cfg.source == STDLIB:
        raise ConfigError("data.streaming=true: the stdlib corpus fits in memory; stream a "
                          "file, folder, glob or hf:NAME source")
    if cfg.source.startswith(HUB):
        try:
            stream = datasets.load_dataset(cfg.source[len(HUB):], cfg.hub_config or None,
                                           split=cfg.hub_split, streaming=True)
        except Exception as e:
            raise ConfigError(f"data.source={cfg.source!r} could not be streamed: {e}") from e
    else:
        _, found = source_files(cfg.source)
        files = text_files(found)  # binary files are passed over, as in memory
        if not files:
            raise ConfigError(f"data.source={cfg.source!r}: no text in {len(found)} file(s)")
        kinds = {TABLES.get(p.suffix, "text") for p in files}
        if len(kinds) > 1:
            raise ConfigError(f"data.source={cfg.source!r}: streaming reads one kind of file at "
                              f"a time, found {', '.join(sorted(kinds))}")
        kind = kinds.pop()
        extra = ({"sample_by": "document", "encoding_errors": cfg.encoding_errors}
                 if kind == "text" else {})
        try:  # a table's schema is read here
            stream = datasets.load_dataset(kind, data_files=[str(p) for p in files],
                                           split="train", streaming=True, **extra)
        except Exception as e:
            raise unreadable(cfg, e) from e
    if cfg.text_field != "text":
        stream = stream.rename_column(cfg.text_field, "text")
    return stream.select_columns(["text"])


class StreamingTextData:
    """The training-data protocol over a stream: ``train_batch(step, rows)`` (consecutive steps),
    ``state()``, ``restore(state)``, ``val``, ``val_split()``, ``tokenizer``."""

    def __init__(self, cfg: DataConfig, tokenizer: Tokenizer) -> None:
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.shuffle_buffer = cfg.shuffle_buffer
        self.source = stream_source(cfg)
        self.val = self._validation_windows()
        self.restore({"epoch": 0, "docs": 0, "buffer": []})

    def _documents(self, train: bool) -> Any:
        seed, fraction = self.cfg.seed, self.cfg.val_fraction
        return self.source.filter(lambda row: (_unit(seed, row["text"]) >= fraction) == train)

    def _rows(self, stream: Any) -> Iterator[dict[str, str]]:
        """The rows of ``stream``; ConfigError naming the source and what is wrong where a file
        cannot be read (a malformed row, a torn file, text that is not UTF-8)."""
        try:
            yield from stream
        except Exception as e:
            raise unreadable(self.cfg, e) from e

    def _tokens(self, docs: Iterator[dict[str, str]]) -> Iterator[list[int]]:
        bos, eos = self.tokenizer.bos_id, self.tokenizer.eos_id
        for row in self._rows(docs):
            self.docs += 1
            self.seen_text = self.seen_text or bool(row["text"])
            yield [bos, *self.tokenizer.encode(row["text"]), eos]

    def _validation_tokens(self, seen_text: list[bool]) -> Iterator[list[int]]:
        """The packed documents of the validation split, in order; ``seen_text[0]`` turns true
        once one of them has text."""
        bos, eos = self.tokenizer.bos_id, self.tokenizer.eos_id
        for row in self._rows(self._documents(train=False)):
            seen_text[0] = seen_text[0] or bool(row["text"])
            yield [bos, *self.tokenizer.encode(row["text"]), eos]

    def _validation_windows(self) -> np.ndarray:
        window, text = self.cfg.seq_len + 1, [False]
        full = (w for w in split_windows(self._validation_tokens(text), self.cfg.seq_len)
                if len(w) == window)  # the estimate's windows are whole
        rows = list(itertools.islice(full, self.cfg.val_windows))
        if not rows:
            raise ConfigError(f"the validation split of {self.cfg.source!r} (val_fraction="
                              f"{self.cfg.val_fraction}) has fewer than one window of "
                              f"data.seq_len + 1 = {window} tokens")
        if not text[0]:
            raise ConfigError(f"data.source={self.cfg.source!r}: every document of the "
                              "validation split that was read is empty; expected some text")
        return np.asarray(rows, np.int32)

    def val_split(self) -> Iterator[np.ndarray]:
        """The windows of the whole validation split, streamed (glrnn.data.text.split_windows)."""
        return split_windows(self._validation_tokens([False]), self.cfg.seq_len)

    @functools.cached_property
    def n_val_targets(self) -> int:
        """The tokens the whole validation split scores (all but its first): one pass over it."""
        return sum(len(doc) for doc in self._validation_tokens([False])) - 1

    def _epoch_stream(self, epoch: int, skip: int) -> Iterator[list[int]]:
        stream = self._documents(train=True).shuffle(seed=self.cfg.seed,
                                                     buffer_size=self.shuffle_buffer)
        stream.set_epoch(epoch)
        return self._tokens(iter(stream.skip(skip)))

    def state(self) -> dict[str, Any]:
        """JSON-able position: epoch, documents consumed in it, tokens not yet batched."""
        return {"epoch": self.epoch, "docs": self.docs, "buffer": list(map(int, self.buffer))}

    def restore(self, state: dict[str, Any]) -> None:
        self.epoch, self.docs, self.buffer = state["epoch"], state["docs"], list(state["buffer"])
        # an epoch is judged empty only when read whole from its start in this process
        self.seen_text = self.docs > 0 or bool(self.buffer)
        self.pieces = self._epoch_stream(self.epoch, self.docs)

    def _window(self) -> list[int]:
        window = self.cfg.seq_len + 1
        while len(self.buffer) < window:
            piece = next(self.pieces, None)
            if piece is None:  # end of the epoch: reshuffle and go on
                if self.docs == 0:
                    raise ConfigError(f"the training split of {self.cfg.source!r} is empty")
                if not self.seen_text:
                    raise ConfigError(f"data.source={self.cfg.source!r}: every document of "
                                      "the training split is empty; expected some text")
                self.epoch, self.docs = self.epoch + 1, 0
                self.pieces = self._epoch_stream(self.epoch, 0)
                continue
            self.buffer += piece
        out, self.buffer = self.buffer[:window], self.buffer[window:]
        return out

    def train_batch(self, step: int, rows: slice = slice(None)) -> np.ndarray:
        """[batch_size, seq_len + 1] int32: the next windows (``step`` only names the batch);
        ``rows`` of them, but every window is read: a stream has no shortcut to its rows, and
        every process keeps the same position."""
        del step
        return np.asarray([self._window() for _ in range(self.cfg.batch_size)], np.int32)[rows]
