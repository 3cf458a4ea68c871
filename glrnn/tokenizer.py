"""Tokenizers behind one small interface: text <-> ids, the special ids, and a description.

Three kinds, named by ``data.tokenizer``:

* ``byte``: UTF-8 bytes 0-255 and BOS/EOS/PAD (vocabulary 259), nothing to train;
* a ``.json`` file: characters (``CharTokenizer``), the set seen in a training text, plus
  BOS/EOS/PAD/UNK (nanoGPT's ``shakespeare-char`` vocabulary);
* a ``.model`` file: SentencePiece, BPE or unigram (``SentencePieceTokenizer``).

Artifacts are made by ``python -m glrnn.tokenizer_train`` and live in ``tokenizers/``. A run
directory records ``tokenizer.describe()``: the kind, the artifact's path and the SHA-256 of its
content, so a run whose tokenizer file has changed since is refused (``from_description``).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from glrnn.audio import MuLawTokenizer
from glrnn.errors import ConfigError
from glrnn.files import write_text_atomic
from glrnn.frames import FrameCodec


class Tokenizer(Protocol):
    name: str
    vocab_size: int
    bos_id: int
    eos_id: int
    pad_id: int

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no BOS/EOS added)."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``; special ids are dropped, malformed bytes become U+FFFD."""
        ...

    def byte_lengths(self) -> np.ndarray:
        """[vocab_size] int: how many bytes of text each id decodes to (0 for specials).

        Summed over target ids this is the byte count that bits per byte divides by.
        """
        ...

    def describe(self) -> dict[str, Any]:
        """A JSON-able description; ``from_description`` turns it back into the tokenizer."""
        ...


class ByteTokenizer:
    """UTF-8 bytes as ids 0-255, then BOS=256, EOS=257, PAD=258 (vocab_size 259)."""

    name = "byte"
    bos_id = 256
    eos_id = 257
    pad_id = 258
    vocab_size = 259

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: Sequence[int]) -> str:
        return bytes(int(i) for i in ids if 0 <= int(i) < 256).decode("utf-8", errors="replace")

    def byte_lengths(self) -> np.ndarray:
        lengths = np.zeros(self.vocab_size, np.int64)
        lengths[:256] = 1
        return lengths

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "vocab_size": self.vocab_size}


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class CharTokenizer:
    """Characters of a fixed alphabet as ids 0..n-1, then BOS, EOS, PAD and UNK (for characters
    outside the alphabet). The artifact is ``{"kind": "char", "chars": "..."}``."""

    name = "char"

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            self.chars = json.loads(Path(path).read_text())["chars"]
        except (ValueError, KeyError, TypeError) as e:  # not JSON, not UTF-8, no "chars"
            raise ConfigError(f"data.tokenizer={self.path!r}: not a character tokenizer file "
                              f"({type(e).__name__}: {e})") from e
        if not isinstance(self.chars, str) or not self.chars:
            raise ConfigError(f"data.tokenizer={self.path!r}: its alphabet is "
                              f"{self.chars!r}, expected a non-empty string of characters")
        self.index = {c: i for i, c in enumerate(self.chars)}
        if len(self.index) < len(self.chars):  # two ids for one character
            twice = next(c for i, c in enumerate(self.chars) if self.index[c] != i)
            raise ConfigError(f"data.tokenizer={self.path!r}: {twice!r} appears twice in its "
                              "alphabet, expected each character once")
        n = len(self.chars)
        self.bos_id, self.eos_id, self.pad_id, self.unk_id = n, n + 1, n + 2, n + 3
        self.vocab_size = n + 4

    def encode(self, text: str) -> list[int]:
        return [self.index.get(c, self.unk_id) for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.chars[int(i)] if 0 <= int(i) < len(self.chars) else
                       ("\ufffd" if int(i) == self.unk_id else "") for i in ids)

    def byte_lengths(self) -> np.ndarray:
        lengths = np.zeros(self.vocab_size, np.int64)
        lengths[:len(self.chars)] = [len(c.encode()) for c in self.chars]
        lengths[self.unk_id] = 1  # unknown: at least one byte of text
        return lengths

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "sha256": file_sha256(self.path),
                "vocab_size": self.vocab_size}


def save_char_vocabulary(text: str, path: str | Path) -> Path:
    """Write the character artifact for the alphabet of ``text``."""
    return write_text_atomic(path, json.dumps({"kind": "char",
                                               "chars": "".join(sorted(set(text)))}) + "\n")


class SentencePieceTokenizer:
    """A SentencePiece model (BPE or unigram) with its own BOS/EOS/PAD ids; text outside its
    vocabulary goes to byte pieces (models trained with byte fallback) or the unknown piece."""

    name = "sentencepiece"

    def __init__(self, path: str | Path) -> None:
        import sentencepiece as spm

        self.path = str(path)
        try:
            self.sp = spm.SentencePieceProcessor(model_file=self.path)
        except (RuntimeError, OSError) as e:
            raise ConfigError(f"data.tokenizer={self.path!r}: not a SentencePiece model "
                              f"({' '.join(str(e).split())})") from e
        self.vocab_size = self.sp.get_piece_size()
        self.bos_id, self.eos_id, self.pad_id = self.sp.bos_id(), self.sp.eos_id(), self.sp.pad_id()

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(text)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self.sp.encode(texts)

    def decode(self, ids: Sequence[int]) -> str:
        return self.sp.decode([int(i) for i in ids if 0 <= int(i) < self.vocab_size])

    def byte_lengths(self) -> np.ndarray:
        lengths = np.zeros(self.vocab_size, np.int64)
        for i in range(self.vocab_size):
            if self.sp.is_control(i) or self.sp.is_unknown(i):
                continue
            piece = self.sp.id_to_piece(i)
            lengths[i] = 1 if self.sp.is_byte(i) else len(piece.replace("\u2581", " ").encode())
        return lengths

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "sha256": file_sha256(self.path),
                "vocab_size": self.vocab_size}


FILE_KINDS = {".json": CharTokenizer, ".model": SentencePieceTokenizer}


def from_name(name: str) -> Tokenizer:
    """``byte``, or the artifact at path ``name`` (``.json`` characters, ``.model``
    SentencePiece); ConfigError naming what is wrong otherwise."""
    if name == "byte":
        return ByteTokenizer()
    if name.startswith("mulaw:"):
        rate = name.split(":", 1)[1]
        if not rate.isdigit() or int(rate) <= 0:
            raise ConfigError(f"data.tokenizer={name!r}: expected mulaw:RATE with a sample "
                              "rate in Hz, e.g. mulaw:8000")
        return MuLawTokenizer(int(rate))
    suffix = Path(name).suffix
    if suffix not in FILE_KINDS:
        raise ConfigError(f"data.tokenizer={name!r}: expected 'byte', 'mulaw:RATE' or a "
                          "tokenizer file (.json characters, .model SentencePiece) made by "
                          "python -m glrnn.tokenizer_train")
    if not Path(name).is_file():
        raise ConfigError(f"data.tokenizer={name!r}: no such file")
    return _load(str(Path(name)), Path(name).stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int) -> Tokenizer:
    del mtime_ns  # part of the cache key only: an edited file is loaded again
    return FILE_KINDS[Path(path).suffix](path)


def from_description(description: dict[str, Any]) -> Tokenizer | FrameCodec:
    """Rebuild the tokenizer a run recorded (a continuous-input run's: its frame normalisation);
    ConfigError if its artifact is gone or changed."""
    if description["name"] == FrameCodec.name:
        return FrameCodec.from_description(description)
    if description["name"] == "byte":
        return ByteTokenizer()
    if description["name"] == "mulaw":
        return from_name(f"mulaw:{description['rate']}")
    path = description["path"]
    if not Path(path).is_file():
        raise ConfigError(f"the run's tokenizer file {path} is missing")
    if (sha := file_sha256(path)) != description["sha256"]:
        raise ConfigError(f"the run's tokenizer file {path} has changed since the run was "
                          f"trained (sha256 {sha[:12]}… now, {description['sha256'][:12]}… "
                          "then): restore that file or retrain")
    return from_name(path)
