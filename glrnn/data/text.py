"""Text corpora as one packed token stream, split into train and validation by document.

Pipeline (each step a pure function, :class:`TextData` ties them together for the loop):

1. documents: ``(key, text)`` pairs, ``key`` the file's path relative to the source, from the
   embedded corpus (the Python standard library's ``.py`` files) or a local file or folder;
2. split: a document goes to validation when a hash of ``(seed, key)`` falls below
   ``val_fraction``, so the split depends neither on file order nor on the other files;
3. pack: ``BOS doc EOS BOS doc EOS ...`` as one token array (uint16 when the vocabulary fits);
4. windows: training batches ``[B, L+1]`` at offsets drawn from ``default_rng((seed, step))``,
   so batch ``step`` is the same in a resumed run; validation is scored two ways: the loop's
   periodic *estimate* on a fixed set of ``val_windows`` contiguous, non-overlapping windows
   evenly spaced over the validation stream (``TextData.val``), and the *whole split*
   (``TextData.val_split``: windows of stride L from its start, the last one shorter, so every
   token but the first is a target exactly once) at the end of a run and in glrnn.evaluate.
"""

from __future__ import annotations

import codecs
import glob
import hashlib
import os
import sysconfig
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from glrnn.config import ConfigError, DataConfig
from glrnn.tokenizer import Tokenizer

STDLIB = "stdlib"
HUB = "hf:"
_STDLIB_SKIP = ("site-packages", "dist-packages")
_STDLIB_TESTS = ("test", "tests", "idle_test")


@dataclass(frozen=True)
class Document:
    key: str  # path relative to the source, '/'-separated
    text: str


def not_utf8(path: Path, offset: int, reason: str) -> ConfigError:
    """The one line for a file that is not UTF-8 text: the file, the first bad byte and, for a
    text file, the option that reads it anyway."""
    way_out = (" (json must be UTF-8)" if path.suffix in TABLES else
               "; encoding_errors=replace reads it with U+FFFD for each bad byte")
    return ConfigError(f"data.source: {path} is not UTF-8 text ({reason} at byte {offset})"
                       f"{way_out}")


def first_bad_byte(path: Path, block: int = 1 << 20) -> tuple[int, str] | None:
    """(offset, reason) of the first byte of ``path`` that is not UTF-8 (a sequence cut by the
    end of the file included), read ``block`` bytes at a time; None if the file is UTF-8."""
    offset, pending = 0, b""
    with path.open("rb") as f:
        while True:
            data = f.read(block)
            chunk = pending + data
            try:
                _, used = codecs.utf_8_decode(chunk, "strict", not data)
            except UnicodeDecodeError as e:
                return offset + e.start, e.reason
            if not data:
                return None
            offset, pending = offset + used, chunk[used:]


def _read(path: Path, errors: str = "strict") -> str:
    """The text of ``path``; ConfigError naming the file and the byte where it is not UTF-8,
    unless ``errors`` is "replace" (U+FFFD for each bad byte)."""
    try:
        return path.read_bytes().decode("utf-8", errors=errors)
    except UnicodeDecodeError as e:
        raise not_utf8(path, e.start, e.reason) from e


def stdlib_documents(include_tests: bool = False) -> list[Document]:
    """The standard library's own ``.py`` files, sorted by path, without site-packages."""
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = _STDLIB_SKIP if include_tests else _STDLIB_SKIP + _STDLIB_TESTS
    docs = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if not set(rel.parts[:-1]) & set(skip) and path.is_file():
            docs.append(Document(rel.as_posix(), _read(path, "replace")))  # not the user's
    if not docs:
        raise FileNotFoundError(f"no .py files found in the standard library at {root}")
    return docs


def _is_text(path: Path) -> bool:
    with path.open("rb") as f:
        return b"\0" not in f.read(1024)


TABLES = {".json": "json", ".jsonl": "json", ".parquet": "parquet"}  # datasets' loader names
FRAME_SUFFIXES = (".npy", ".npz")  # arrays of frames (glrnn/data/frames.py), never text


def text_files(files: list[Path]) -> list[Path]:
    """The files that may hold text: tables, and files with no NUL byte in their first KiB
    (binary files are passed over)."""
    return [p for p in files if p.suffix in TABLES or _is_text(p)]


def innermost(e: BaseException) -> BaseException:
    """The exception at the bottom of ``e``'s chain of causes."""
    while e.__cause__ is not None or e.__context__ is not None:
        e = e.__cause__ or e.__context__
    return e


def read_error(e: BaseException) -> str:
    """The innermost cause of a reader's exception, on one line (``datasets`` wraps the
    parser's own error, which says what is wrong)."""
    e = innermost(e)
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:300]}" if text else type(e).__name__


def source_files(source: str | Path) -> tuple[Path, list[Path]]:
    """(root, files) of a local source: a file, a folder (every non-hidden file below it) or a
    glob; FileNotFoundError naming the source when nothing matches."""
    text = str(Path(source).expanduser())
    if glob.has_magic(text):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        root = Path(os.path.commonpath([f.parent for f in files])) if files else Path()
    else:
        root = Path(text)
        if root.is_file():
            return root.parent, [root]
        if not root.is_dir():
            raise FileNotFoundError(f"data.source={str(source)!r}: no such file or directory")
        files = [p for p in sorted(root.rglob("*")) if p.is_file() and not any(
            part.startswith(".") for part in p.relative_to(root).parts)]
    if not files:
        raise FileNotFoundError(f"data.source={str(source)!r}: no files match")
    return root, files


def table_documents(path: Path, key: str, text_field: str) -> list[Document]:
    """One document per row of a json/jsonl/parquet file, its text in ``text_field``; a json
    file that is not UTF-8 is named with its first bad byte."""
    import datasets

    bad = first_bad_byte(path) if path.suffix != ".parquet" else None
    if bad is not None:
        raise not_utf8(path, *bad)
    try:
        table = datasets.load_dataset(TABLES[path.suffix], data_files=str(path), split="train")
    except Exception as e:  # malformed rows, a torn file: name the file and what is wrong
        raise ConfigError(f"data.source: {path} is not a readable {path.suffix[1:]} file "
                          f"({read_error(e)})") from e
    if text_field not in table.column_names:
        raise ConfigError(f"data.text_field={text_field!r}: {path} has the fields "
                          f"{', '.join(table.column_names)}")
    return [Document(f"{key}#{i}", text) for i, text in enumerate(table[text_field])
            if isinstance(text, str)]


def local_documents(source: str | Path, text_field: str = "text",
                    encoding_errors: str = "strict") -> list[Document]:
    """Text files are one document each (read with ``encoding_errors``: "strict" refuses text
    that is not UTF-8, "replace" reads U+FFFD), json/jsonl/parquet files one document per row;
    ConfigError when there is no text, or every document is empty."""
    root, files = source_files(source)
    docs = []
    for path in text_files(files):
        key = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        if path.suffix in TABLES:
            docs += table_documents(path, key, text_field)
        else:
            docs.append(Document(key, _read(path, encoding_errors)))
    if not docs:
        frames = sum(p.suffix in FRAME_SUFFIXES for p in files)
        raise ConfigError(f"data.source={str(source)!r}: no text in {len(files)} file(s)" + (
            f" ({frames} .npy/.npz arrays: frames are read by model.input=continuous with "
            "model.frame_width)" if frames else ""))
    if not any(d.text for d in docs):
        raise ConfigError(f"data.source={str(source)!r}: every document is empty "
                          f"({len(docs)} document(s)); expected some text")
    return docs


def hub_documents(name: str, config: str, split: str, text_field: str) -> list[Document]:
    """Rows of a Hugging Face hub dataset split (needs the network, or the datasets cache)."""
    import datasets

    try:
        table = datasets.load_dataset(name, config or None, split=split)
    except Exception as e:  # offline, unknown name, unknown split: say which and why
        raise ConfigError(f"data.source='hf:{name}' (config {config or 'default'}, split "
                          f"{split}) could not be loaded: {e}") from e
    if text_field not in table.column_names:
        raise ConfigError(f"data.text_field={text_field!r}: hf:{name} has the fields "
                          f"{', '.join(table.column_names)}")
    return [Document(f"{split}#{i}", text) for i, text in enumerate(table[text_field])
            if isinstance(text, str) and text]


def load_documents(source: str, include_tests: bool = False, text_field: str = "text",
                   hub_config: str = "", hub_split: str = "train",
                   encoding_errors: str = "strict") -> list[Document]:
    """``stdlib`` for the embedded corpus, ``hf:NAME`` for a hub dataset, else local files
    (text files read with ``encoding_errors``, see :func:`local_documents`)."""
    if source == STDLIB:
        return stdlib_documents(include_tests)
    if source.startswith(HUB):
        return hub_documents(source[len(HUB):], hub_config, hub_split, text_field)
    return local_documents(source, text_field, encoding_errors)


def _unit_hash(seed: int, key: str) -> float:
    """A number in [0, 1) fixed by (seed, key)."""
    digest = hashlib.sha256(f"{seed}/{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_documents(docs: list[Document], val_fraction: float, seed: int,
                    mode: str = "hash") -> tuple[list[Document], list[Document]]:
    """(train, validation). ``hash``: a document goes to validation when a hash of
    ``(seed, key)`` falls below ``val_fraction`` (at least the lowest-hash one does). ``head``:
    the documents' text in order, the first ``1 - val_fraction`` of it to train and the rest
    to validation (nanoGPT's split of a single file)."""
    if mode == "head":
        text = "".join(d.text for d in docs)
        cut = int(len(text) * (1 - val_fraction))
        return [Document("head", text[:cut])], [Document("tail", text[cut:])]
    if len(docs) < 2:
        keys = ", ".join(d.key for d in docs)
        raise ConfigError(f"{len(docs)} document ({keys}): the train/validation split is by "
                          "document and needs at least 2 (give a folder of files, or "
                          "data.split=head)")
    hashes = [_unit_hash(seed, d.key) for d in docs]
    threshold = max(val_fraction, min(hashes) + 1e-12)
    train = [d for d, h in zip(docs, hashes, strict=True) if h >= threshold]
    val = [d for d, h in zip(docs, hashes, strict=True) if h < threshold]
    if not train:
        raise ConfigError(f"val_fraction={val_fraction} leaves no training document")
    return train, val


def pack(docs: list[Document], tokenizer: Tokenizer) -> np.ndarray:
    """[T] tokens ``BOS d0 EOS BOS d1 EOS ...`` (uint16 if the vocabulary fits, else int32),
    tokenised with a batched ``datasets`` map."""
    import datasets

    dtype = np.uint16 if tokenizer.vocab_size <= 2**16 else np.int32
    bos, eos = tokenizer.bos_id, tokenizer.eos_id

    def encode(batch: dict[str, list[str]]) -> dict[str, list[np.ndarray]]:
        return {"ids": [np.asarray([bos, *tokenizer.encode(text), eos], dtype)
                        for text in batch["text"]]}

    table = datasets.Dataset.from_dict({"text": [d.text for d in docs]})
    table = table.map(encode, batched=True, batch_size=64, remove_columns=["text"],
                      desc="tokenising", keep_in_memory=True)
    table.set_format("numpy")
    return np.concatenate(list(table["ids"])).astype(dtype)


def segment_ids(tokens: np.ndarray | jax.Array, bos_id: int) -> jax.Array:
    """int32 [B, L] from tokens [B, L] packed as ``BOS doc EOS BOS doc EOS ...``: the number of
    BOS tokens up to and including each position, so the id changes exactly where a document
    starts (the model clears its recurrent state there)."""
    return jnp.cumsum(jnp.asarray(tokens) == bos_id, axis=1, dtype=jnp.int32)


def window_count(n_tokens: int, seq_len: int) -> int:
    """How many windows of ``seq_len + 1`` tokens with stride ``seq_len`` fit in ``n_tokens``."""
    return max(0, (n_tokens - 1) // seq_len)


def train_offsets(n: int, batch_size: int, seq_len: int, seed: int, step: int,
                  rows: slice = slice(None)) -> np.ndarray:
    """int64 [batch_size][rows]: where the training windows of step ``step`` start in a stream
    of ``n`` positions, drawn by an RNG of (seed, step)."""
    rng = np.random.default_rng((seed, step))
    return rng.integers(0, n - seq_len, size=batch_size)[rows]


def validation_starts(n: int, seq_len: int, max_windows: int) -> np.ndarray:
    """int64 [N]: N = min(max_windows, all) starts of contiguous windows with stride
    ``seq_len`` (every target counted once), evenly spaced over a stream of ``n`` positions."""
    available = window_count(n, seq_len)
    starts = np.linspace(0, available - 1, num=min(max_windows, available)).round()
    return starts.astype(np.int64) * seq_len


def windows_at(stream: np.ndarray, starts: np.ndarray, seq_len: int) -> np.ndarray:
    """[N, seq_len + 1, ...]: the windows of ``stream`` [T, ...] at ``starts`` [N]."""
    return stream[starts[:, None] + np.arange(seq_len + 1)]


def train_batch(tokens: np.ndarray, batch_size: int, seq_len: int, seed: int,
                step: int, rows: slice = slice(None)) -> np.ndarray:
    """[batch_size, seq_len + 1] int32 windows of ``tokens`` at random offsets fixed by
    (seed, step); only the windows ``rows`` of them are read (a process's share)."""
    offsets = train_offsets(len(tokens), batch_size, seq_len, seed, step, rows)
    return windows_at(tokens, offsets, seq_len).astype(np.int32)


def validation_windows(tokens: np.ndarray, seq_len: int, max_windows: int) -> np.ndarray:
    """[N, seq_len + 1] int32: N = min(max_windows, all) contiguous windows with stride
    ``seq_len`` (every target token counted once), evenly spaced over ``tokens``."""
    starts = validation_starts(len(tokens), seq_len, max_windows)
    return windows_at(tokens, starts, seq_len).astype(np.int32)


def split_windows(pieces: Iterable[np.ndarray], seq_len: int) -> Iterator[np.ndarray]:
    """The windows that score a whole token stream, given in consecutive ``pieces``: int32
    ``[seq_len + 1]`` windows with stride ``seq_len`` from its start (window k holds tokens
    kL .. kL + L and predicts kL + 1 .. kL + L), then the tail, shorter (its n + 1 tokens predict
    the last n); every token but the first is a target exactly once. Each window starts from a
    zero state, as a training window does."""
    buffer = np.zeros(0, np.int32)
    for piece in pieces:
        buffer = np.concatenate([buffer, np.asarray(piece, np.int32)])
        count = window_count(len(buffer), seq_len)
        for k in range(count):
            yield buffer[k * seq_len:(k + 1) * seq_len + 1]
        buffer = buffer[count * seq_len:]
    if len(buffer) > 1:
        yield buffer


class TextData:
    """The packed train and validation streams of one :class:`DataConfig`; ``val``: the
    validation estimate's windows [N, seq_len + 1]."""

    def __init__(self, cfg: DataConfig, tokenizer: Tokenizer) -> None:
        self.cfg = cfg
        self.tokenizer = tokenizer
        docs = load_documents(cfg.source, cfg.include_tests, cfg.text_field, cfg.hub_config,
                              cfg.hub_split, cfg.encoding_errors)
        train_docs, val_docs = split_documents(docs, cfg.val_fraction, cfg.seed, cfg.split)
        self.train_tokens = pack(train_docs, self.tokenizer)
        val_tokens = pack(val_docs, self.tokenizer)
        window = cfg.seq_len + 1
        if len(self.train_tokens) < window:
            raise ConfigError(f"the training split of {cfg.source!r} has "
                              f"{len(self.train_tokens)} tokens, fewer than one window of "
                              f"data.seq_len + 1 = {window}")
        if window_count(len(val_tokens), cfg.seq_len) < 1:
            raise ConfigError(f"the validation split of {cfg.source!r} ({len(val_docs)} "
                              f"documents) has {len(val_tokens)} tokens, fewer than one window "
                              f"of data.seq_len + 1 = {window}: raise data.val_fraction or "
                              "lower data.seq_len")
        self.val_tokens = val_tokens
        self.val = validation_windows(val_tokens, cfg.seq_len, cfg.val_windows)
        self.n_train_docs, self.n_val_docs = len(train_docs), len(val_docs)

    def train_batch(self, step: int, rows: slice = slice(None)) -> np.ndarray:
        """[batch_size, seq_len + 1] int32: the batch of training step ``step`` (its ``rows``)."""
        return train_batch(self.train_tokens, self.cfg.batch_size, self.cfg.seq_len,
                           self.cfg.seed, step, rows)

    def state(self) -> dict:
        """The data position: nothing beyond the step (batches are a function of it)."""
        return {}

    def restore(self, state: dict) -> None:
        """Nothing to restore (see ``state``)."""

    def val_split(self) -> Iterator[np.ndarray]:
        """The windows of the whole validation split (:func:`split_windows`)."""
        return split_windows([self.val_tokens], self.cfg.seq_len)

    @property
    def n_val_targets(self) -> int:
        """The tokens the whole validation split scores (all but its first)."""
        return len(self.val_tokens) - 1
