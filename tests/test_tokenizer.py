"""Tokenizers: byte, character and SentencePiece (BPE, unigram) trained by the project command;
exact round trips, bytes per id, unknown text, and runs that refuse a changed tokenizer file."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_lm import tiny_config

from glrnn.config import ConfigError
from glrnn.runs.run import read_config, write_config
from glrnn.tokenizer import from_description, from_name
from glrnn.tokenizer_train import main as train_tokenizer

TEXT = "def f(x):\n    return x + 1  # ünïcode\n\tzz"
UNSEEN = "漢字 and emoji 🙂"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Files of lines drawn from 300 made-up words (enough distinct text for a unigram model)."""
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), rng.integers(2, 9)))
             for _ in range(300)]
    directory = tmp_path_factory.mktemp("tok") / "corpus"
    directory.mkdir()
    for i in range(6):
        lines = (" ".join(rng.choice(words, 8)) for _ in range(200))
        (directory / f"doc{i:02d}.txt").write_text("\n".join(lines) + "\n")
    return directory


@pytest.mark.parametrize(("kind", "suffix", "vocab"), [("bpe", ".model", 320),
                                                       ("unigram", ".model", 320),
                                                       ("char", ".json", 0)])
def test_trained_tokenizer_round_trips_and_counts_bytes(corpus, tmp_path, kind, suffix, vocab):
    out = tmp_path / f"t{suffix}"
    assert train_tokenizer(["--source", str(corpus), "--kind", kind, "--out", str(out),
                            "--vocab-size", str(vocab or 100)]) == 0
    tok = from_name(str(out))
    if kind != "char":
        assert tok.vocab_size == vocab
    text = (corpus / "doc01.txt").read_text()[:200]
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert tok.byte_lengths()[ids].sum() == len(text.encode())
    assert len(ids) < len(text.encode()) or kind == "char"  # it compresses
    # text outside the training alphabet never crashes
    unseen = tok.encode(UNSEEN)
    assert all(0 <= i < tok.vocab_size for i in unseen)
    if kind != "char":  # byte fallback: even unseen text comes back whole
        assert tok.decode(unseen) == UNSEEN
    assert {tok.bos_id, tok.eos_id, tok.pad_id} <= set(range(tok.vocab_size))
    assert tok.byte_lengths()[[tok.bos_id, tok.eos_id, tok.pad_id]].sum() == 0


def test_byte_tokenizer_counts_every_byte():
    tok = from_name("byte")
    ids = tok.encode(TEXT)
    assert tok.decode(ids) == TEXT and tok.byte_lengths()[ids].sum() == len(TEXT.encode())


def test_bad_tokenizer_names_and_commands(tmp_path, capsys):
    with pytest.raises(ConfigError, match="no such file"):
        from_name(str(tmp_path / "missing.model"))
    with pytest.raises(ConfigError, match="expected 'byte', 'mulaw:RATE' or a tokenizer file"):
        from_name("gpt2")
    assert train_tokenizer(["--kind", "char", "--out", str(tmp_path / "x.model")]) == 2
    assert "a .json file for --kind char" in capsys.readouterr().err


def test_run_refuses_a_changed_tokenizer_file(corpus, tmp_path):
    out = tmp_path / "chars.json"
    assert train_tokenizer(["--source", str(corpus), "--kind", "char", "--out", str(out)]) == 0
    cfg = tiny_config(tmp_path)
    run_dir = tmp_path / "run"
    write_config(run_dir, cfg, from_name(str(out)))
    assert read_config(run_dir)[1].describe() == from_name(str(out)).describe()
    out.write_text(out.read_text().replace("a", "", 1))  # the artifact changes afterwards
    with pytest.raises(ConfigError, match="has changed since the run was trained"):
        read_config(run_dir)
    out.unlink()
    with pytest.raises(ConfigError, match="is missing"):
        from_description({"name": "char", "path": str(out), "sha256": "0"})
