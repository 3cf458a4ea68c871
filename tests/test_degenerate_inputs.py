"""Degenerate inputs are refused, not trained on: text that is not UTF-8 (the file and the first
bad byte named, unless ``encoding_errors=replace`` is asked for), sources whose documents are all
empty, a tokenizer without a usable alphabet; in memory, streaming, and in tokenizer training.
Each is one line from the CLIs (exit status 2), never a traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_lm import load_script

from glrnn.config import ConfigError, DataConfig
from glrnn.data.stream import StreamingTextData
from glrnn.data.text import TextData, first_bad_byte, load_documents
from glrnn.tokenizer import ByteTokenizer, from_name
from glrnn.tokenizer_train import main as tokenizer_train_main

train_cli = load_script("train_lm")

GOOD = "plain text that any tokenizer reads, again and again. " * 8
BAD_AT = len(GOOD.encode()) + 3  # "abc" then a byte that starts no UTF-8 sequence
NAMED = rf"b\.txt is not UTF-8 text \(invalid start byte at byte {BAD_AT}\)"


def corpus(folder: Path, bad: bytes | None = None, n: int = 8) -> Path:
    """``n`` UTF-8 text files, and ``b.txt`` holding ``bad`` if given."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"doc{i}.txt").write_text(f"{i} {GOOD}")
    if bad is not None:
        (folder / "b.txt").write_bytes(bad)
    return folder


def bad_text() -> bytes:
    return GOOD.encode() + b"abc\xffdef " + GOOD.encode()


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    return err


def stream_config(source: Path, **fields: object) -> DataConfig:
    return DataConfig(source=str(source), streaming=True, seq_len=8, batch_size=2,
                      val_fraction=0.3, val_windows=4, shuffle_buffer=4, **fields)


@pytest.mark.parametrize(("data", "where"), [
    (b"\xff", (0, "invalid start byte")), (b"ok \xc3(", (3, "invalid continuation byte")),
    ("é€".encode() + b"\xe2\x82", (5, "unexpected end of data")),  # cut by the end of the file
    ("é€😀".encode() * 5, None), (b"", None)],
    ids=["start", "continuation", "cut", "utf8", "empty"])
@pytest.mark.parametrize("block", [1, 2, 3, 1 << 20])
def test_first_bad_byte_across_block_edges(tmp_path, data, where, block):
    """Sequences cut by the edge of a read block are neither errors nor missed."""
    path = tmp_path / "t.txt"
    path.write_bytes(data)
    assert first_bad_byte(path, block) == where


def test_in_memory_text_that_is_not_utf8_is_named_or_replaced(tmp_path):
    folder = corpus(tmp_path / "c", bad_text())
    with pytest.raises(ConfigError, match=NAMED + "; encoding_errors=replace"):
        load_documents(str(folder))
    docs = {d.key: d.text for d in load_documents(str(folder), encoding_errors="replace")}
    assert "abc\ufffddef" in docs["b.txt"] and docs["doc1.txt"].startswith("1 plain")
    data = TextData(DataConfig(source=str(folder), seq_len=8, val_fraction=0.3,
                               encoding_errors="replace"), ByteTokenizer())
    assert data.n_train_docs + data.n_val_docs == 9
    with pytest.raises(ConfigError, match=r"data.encoding_errors='latin-1': expected one of "
                                          r"replace, strict"):
        DataConfig(encoding_errors="latin-1")


def test_a_json_file_that_is_not_utf8_is_named(tmp_path):
    (tmp_path / "rows.jsonl").write_bytes(b'{"text": "fine"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(ConfigError, match=r"rows\.jsonl is not UTF-8 text \(invalid "
                                          r"continuation byte at byte 30\) \(json must be"):
        load_documents(str(tmp_path))


def test_the_training_cli_refuses_before_making_anything(tmp_path, capsys):
    folder = corpus(tmp_path / "c", bad_text())
    out = tmp_path / "runs"
    argv = ["--data.source", str(folder), "--train.out-dir", str(out), "--train.name", "r"]
    assert train_cli.main(argv) == 2
    err = one_line(capsys.readouterr().err)
    assert str(folder / "b.txt") in err and f"at byte {BAD_AT}" in err
    assert not out.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    for i in range(4):
        (empty / f"e{i}.txt").write_text("")
    assert train_cli.main([*argv[:1], str(empty), *argv[2:]]) == 2
    assert "every document is empty (4 document(s)); expected some text" in one_line(
        capsys.readouterr().err)


def test_streaming_text_that_is_not_utf8_is_named_or_replaced(tmp_path):
    folder = corpus(tmp_path / "c", bad_text())
    with pytest.raises(ConfigError, match=NAMED):
        data = StreamingTextData(stream_config(folder), ByteTokenizer())
        for step in range(300):  # wherever b.txt falls, training reads it within an epoch
            data.train_batch(step)
    data = StreamingTextData(stream_config(folder, encoding_errors="replace"), ByteTokenizer())
    seen = np.concatenate([data.val.ravel()] + [data.train_batch(s).ravel() for s in range(200)])
    assert {0xEF, 0xBF, 0xBD} <= set(seen.tolist())  # U+FFFD in the byte stream


def test_streaming_refuses_sources_whose_documents_are_all_empty(tmp_path):
    for i in range(40):
        (tmp_path / f"e{i:02d}.txt").write_text("")
    with pytest.raises(ConfigError, match=r"every document of the (validation|training) split"):
        data = StreamingTextData(stream_config(tmp_path), ByteTokenizer())
        for step in range(100):
            data.train_batch(step)


def test_tokenizer_training_refuses_bad_text_and_empty_alphabets(tmp_path, capsys):
    folder = corpus(tmp_path / "c", bad_text(), n=2)
    out = tmp_path / "t.json"
    argv = ["--source", str(folder), "--kind", "char", "--out", str(out)]
    assert tokenizer_train_main(argv) == 2
    assert str(folder / "b.txt") in one_line(capsys.readouterr().err) and not out.exists()
    assert tokenizer_train_main([*argv, "--encoding-errors", "replace"]) == 0
    assert "\ufffd" in from_name(str(out)).chars
    assert tokenizer_train_main([*argv, "--encoding-errors", "ignore"]) == 2
    assert "--encoding-errors='ignore': expected one of replace, strict" in one_line(
        capsys.readouterr().err)
    for chars, match in [("", "expected a non-empty string"),
                         ("abca", "'a' appears twice")]:
        path = tmp_path / f"alphabet{len(chars)}.json"
        path.write_text(f'{{"kind": "char", "chars": "{chars}"}}')
        with pytest.raises(ConfigError, match=match):
            from_name(str(path))
