"""Tokenizers behind one small interface: text <-> ids, the special ids, and a description.

A run directory records ``tokenizer.describe()`` so that ``from_description`` rebuilds the same
tokenizer for generation. Later tokenizers (SentencePiece, mu-law audio) fill the same
:class:`Tokenizer` protocol and register a factory in ``TOKENIZERS``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from glrnn.config import ConfigError


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


TOKENIZERS: dict[str, Callable[[], Tokenizer]] = {"byte": ByteTokenizer}


def from_name(name: str) -> Tokenizer:
    """The tokenizer registered as ``name``."""
    if name not in TOKENIZERS:
        raise ConfigError(f"tokenizer {name!r}: expected one of {', '.join(sorted(TOKENIZERS))}")
    return TOKENIZERS[name]()


def from_description(description: dict[str, Any]) -> Tokenizer:
    """Rebuild a tokenizer from ``describe()``'s output (as read from a run's config.json)."""
    tokenizer = from_name(description["name"])
    if tokenizer.describe() != description:
        raise ValueError(f"tokenizer description {description} does not match this version's "
                         f"{tokenizer.describe()}")
    return tokenizer
