"""Byte tokenizer and the text pipeline: documents, split, packing, windows, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_lm import tiny_config, write_corpus

from glrnn.config import ConfigError, DataConfig
from glrnn.data import StreamingTextData, TextData, make_data
from glrnn.data.text import (
    Document,
    local_documents,
    pack,
    segment_ids,
    split_documents,
    train_batch,
    validation_windows,
)
from glrnn.tokenizer import ByteTokenizer, from_description, from_name


def test_byte_tokenizer_round_trip():
    tok = from_name("byte")
    text = "héllo, wörld ∑ 🐍\n"
    ids = tok.encode(text)
    assert max(ids) < 256 and len(ids) == len(text.encode())
    assert tok.decode([tok.bos_id, *ids, tok.eos_id, tok.pad_id]) == text
    assert tok.decode(ids[:2]) == "h\ufffd"  # a cut multi-byte character is replaced
    assert tok.byte_lengths().sum() == 256 and tok.vocab_size == 259
    assert isinstance(from_description(tok.describe()), ByteTokenizer)
    with pytest.raises(ConfigError, match="expected 'byte', 'mulaw:RATE' or a tokenizer file"):
        from_name("nope")


def test_split_is_by_document_and_independent_of_order():
    docs = [Document(f"d{i}.txt", "x") for i in range(200)]
    train, val = split_documents(docs, 0.1, seed=0)
    train_r, val_r = split_documents(docs[::-1], 0.1, seed=0)
    assert {d.key for d in val} == {d.key for d in val_r}
    assert {d.key for d in train} == {d.key for d in train_r}
    assert 5 < len(val) < 40 and len(train) + len(val) == 200
    assert {d.key for d in split_documents(docs, 0.1, seed=1)[1]} != {d.key for d in val}
    # a document keeps its side when others are added
    more = docs + [Document(f"e{i}.txt", "x") for i in range(50)]
    assert {d.key for d in val} <= {d.key for d in split_documents(more, 0.1, seed=0)[1]}


def test_pack_and_windows():
    tok = ByteTokenizer()
    tokens = pack([Document("a", "ab"), Document("b", "c")], tok)
    assert tokens.tolist() == [256, 97, 98, 257, 256, 99, 257]
    stream = np.arange(100, dtype=np.uint16)
    batch = train_batch(stream, 4, 8, seed=0, step=3)
    assert batch.shape == (4, 9) and batch.dtype == np.int32
    assert (np.diff(batch, axis=1) == 1).all()
    np.testing.assert_array_equal(batch, train_batch(stream, 4, 8, seed=0, step=3))
    assert not np.array_equal(batch, train_batch(stream, 4, 8, seed=0, step=4))
    val = validation_windows(stream, 8, max_windows=5)
    assert val.shape == (5, 9)
    assert len(np.unique(val[:, 1:])) == val[:, 1:].size  # targets never overlap
    assert validation_windows(stream, 8, max_windows=100).shape == (12, 9)  # (100 - 1) // 8


def test_text_data(tmp_path):
    cfg = tiny_config(tmp_path).data
    data = TextData(cfg, ByteTokenizer())
    assert data.train_batch(1).shape == (cfg.batch_size, cfg.seq_len + 1)
    assert len(data.val) <= cfg.val_windows
    assert data.n_train_docs + data.n_val_docs == 12


def test_local_source_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        local_documents(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no files match"):
        local_documents(tmp_path / "empty")
    (tmp_path / "empty" / "blob.bin").write_bytes(b"\0\1\2")
    with pytest.raises(ConfigError, match=r"no text in 1 file"):
        local_documents(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no files match"):
        local_documents(tmp_path / "*.nothing")
    (tmp_path / "one.txt").write_text("abc")
    with pytest.raises(ConfigError, match="needs at least 2"):
        TextData(DataConfig(source=str(tmp_path / "one.txt")), ByteTokenizer())
    corpus = write_corpus(tmp_path / "c", n_docs=3)
    with pytest.raises(ConfigError, match=r"validation split.*fewer than one window"):
        TextData(DataConfig(source=str(corpus), seq_len=2000, val_fraction=0.1),
                 ByteTokenizer())


def test_json_jsonl_parquet_and_glob_sources(tmp_path):
    import datasets

    rows = [{"text": f"row {i} " * 5, "id": i} for i in range(4)]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "b.json").write_text(json.dumps(rows[:2]))
    datasets.Dataset.from_list(rows[:3]).to_parquet(str(tmp_path / "c.parquet"))
    (tmp_path / "d.txt").write_text("plain text file")
    docs = local_documents(tmp_path)
    assert [d.key for d in docs] == ["a.jsonl#0", "a.jsonl#1", "a.jsonl#2", "a.jsonl#3",
                                     "b.json#0", "b.json#1", "c.parquet#0", "c.parquet#1",
                                     "c.parquet#2", "d.txt"]
    assert docs[5].text == rows[1]["text"] and docs[-1].text == "plain text file"
    assert [d.key for d in local_documents(tmp_path / "*.j*")] == [d.key for d in docs[:6]]
    with pytest.raises(ConfigError, match=r"data.text_field='body'.*has the fields text, id"):
        local_documents(tmp_path / "a.jsonl", text_field="body")


def test_head_split_takes_the_first_part_for_training():
    docs = [Document("x", "a" * 90), Document("y", "b" * 10)]
    train, val = split_documents(docs, 0.1, seed=0, mode="head")
    assert train[0].text == "a" * 90 and val[0].text == "b" * 10


def test_packing_marks_documents_for_the_model():
    tok = ByteTokenizer()
    tokens = pack([Document("a", "hi"), Document("b", "yo!")], tok)
    assert tokens.tolist() == [256, 104, 105, 257, 256, 121, 111, 33, 257]
    ids = np.asarray(segment_ids(tokens[None, :], tok.bos_id))[0]
    assert ids.tolist() == [1, 1, 1, 1, 2, 2, 2, 2, 2]  # a new id exactly at each BOS


def test_streaming_resumes_exactly_across_epochs(tmp_path):
    """Batches after a saved position equal an uninterrupted stream's, through an epoch end."""
    rows = [{"body": f"document {i} " + "abc " * (5 + i % 7)} for i in range(40)]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = DataConfig(source=str(tmp_path / "rows.jsonl"), text_field="body", streaming=True,
                     seq_len=15, batch_size=4, val_fraction=0.2, val_windows=3,
                     shuffle_buffer=8)
    straight = make_data(cfg, ByteTokenizer())
    assert isinstance(straight, StreamingTextData) and straight.val.shape == (3, 16)
    batches = [straight.train_batch(step) for step in range(1, 31)]
    assert straight.epoch >= 1  # the 30 batches went past the end of the first epoch
    first = make_data(cfg, ByteTokenizer())
    for step in range(1, 18):
        np.testing.assert_array_equal(first.train_batch(step), batches[step - 1])
    saved = json.loads(json.dumps(first.state()))  # what a checkpoint stores
    resumed = make_data(cfg, ByteTokenizer())
    resumed.restore(saved)
    for step in range(18, 31):
        np.testing.assert_array_equal(resumed.train_batch(step), batches[step - 1])
    np.testing.assert_array_equal(resumed.val, straight.val)
    assert not np.array_equal(batches[0], batches[1])
