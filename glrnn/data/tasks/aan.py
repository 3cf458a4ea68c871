"""LRA Retrieval: do two ACL Anthology Network papers cite each other? Byte-level, two towers.

Sources: Radev et al., "The ACL Anthology Network Corpus" (2009/2013); Tay et al., "Long Range
Arena" (ICLR 2021): ``lra_release/lra_release/tsv_data/new_aan_pairs.{train,eval,test}.tsv``,
read by ``lra_benchmarks/matching/input_pipeline.py`` of github.com/google-research/
long-range-arena: no header, tab-separated, no quoting, columns
``label id1 id2 text1 text2`` (the label written as a float, 0.0 or 1.0), each text encoded as
bytes and cut to ``max_length`` 4000 (our ``task.seq_len`` default); the S4 loader
(``src/dataloaders/lra.py``, class ``AAN``) reads the same columns.

A folder holds ``*train*.tsv``, ``*test*.tsv`` and ``*eval*.tsv`` or ``*val*.tsv``. Ids are the
project's byte tokenizer's (bytes 0-255, padding 258, vocabulary 259); ``inputs``/``lengths``
are the first text, ``inputs2``/``lengths2`` the second.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from glrnn.config import ConfigError
from glrnn.data.tasks.arrays import assemble, pack
from glrnn.data.tasks.base import Split, TaskData, TaskInfo
from glrnn.data.tasks.sources import existing, split_files
from glrnn.task_config import TaskConfig
from glrnn.tokenizer import ByteTokenizer

FILE_WORDS = {"train": ("train",), "val": ("eval", "val"), "test": ("test",)}
LAYOUT = ("AAN files *train*.tsv, *test*.tsv and optionally *eval*.tsv (LRA: "
          "new_aan_pairs.train.tsv, new_aan_pairs.eval.tsv, new_aan_pairs.test.tsv)")
N_FIELDS = 5  # label, id1, id2, text1, text2


def read_tsv(path: Path) -> tuple[list[np.ndarray], list[np.ndarray], list[int]]:
    """(first texts, second texts as uint8 byte arrays, labels) of an AAN TSV file."""
    firsts, seconds, labels = [], [], []
    for number, line in enumerate(path.read_bytes().split(b"\n"), 1):
        line = line.rstrip(b"\r")
        if not line:
            continue
        fields = line.split(b"\t")
        where = f"{path}:{number}"
        if len(fields) != N_FIELDS:
            raise ConfigError(f"{where}: {len(fields)} tab-separated fields: expected "
                              f"{N_FIELDS} (label, id1, id2, text1, text2)")
        try:
            value = float(fields[0])
        except ValueError:
            raise ConfigError(f"{where}: label {fields[0].decode(errors='replace')!r}: "
                              "expected 0 or 1") from None
        if value not in (0.0, 1.0):
            raise ConfigError(f"{where}: label {value:g}: expected 0 or 1")
        firsts.append(np.frombuffer(fields[3], np.uint8))
        seconds.append(np.frombuffer(fields[4], np.uint8))
        labels.append(int(value))
    if not labels:
        raise ConfigError(f"{path}: no AAN rows")
    return firsts, seconds, labels


def load_aan(cfg: TaskConfig) -> TaskData:
    tok = ByteTokenizer()
    info = TaskInfo("aan", n_classes=2, seq_len=cfg.length(), vocab_size=tok.vocab_size,
                    pad_id=tok.pad_id, two_tower=True)
    files = split_files(existing(cfg.source, "task.source"), ".tsv", FILE_WORDS, LAYOUT)
    splits = {}
    for name, path in files.items():
        firsts, seconds, labels = read_tsv(path)
        where = f"task 'aan', split {name!r}"
        inputs, lengths = pack(firsts, info.seq_len, tok.pad_id, cfg.too_long, where)
        inputs2, lengths2 = pack(seconds, info.seq_len, tok.pad_id, cfg.too_long,
                                 where + " (second text)")
        splits[name] = Split(inputs, lengths, np.asarray(labels, np.int32), inputs2, lengths2)
    return assemble(info, splits, cfg)
