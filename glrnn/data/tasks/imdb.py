"""LRA Text: byte-level IMDb sentiment classification (2 classes: neg 0, pos 1).

Sources: Maas et al., "Learning Word Vectors for Sentiment Analysis" (ACL 2011), the
``aclImdb`` release: ``{train,test}/{pos,neg}/<id>_<rating>.txt``, one review per file (UTF-8
with ``<br />`` markup, kept as LRA keeps it); or the hub dataset ``hf:imdb`` (splits train and
test, columns text and label). LRA (Tay et al. 2021, ``lra_benchmarks/text_classification/
input_pipeline.py``) reads ``imdb_reviews`` through tfds, encodes bytes and cuts each review
to its maximum length, 4096 for the Text task (our ``task.seq_len`` default). LRA validates on
the test set; here a validation split is carved from train (``task.val_fraction``).

Ids are the project's byte tokenizer's (``glrnn.tokenizer.ByteTokenizer``): bytes 0-255, padding
258, vocabulary 259. Reviews longer than L are truncated with a warning, or refused with
``task.too_long=refuse``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from glrnn.data.tasks.arrays import assemble, class_labels, pack
from glrnn.data.tasks.base import Split, TaskData, TaskInfo
from glrnn.data.tasks.sources import existing, hub_column, hub_split, is_hub, layout_error
from glrnn.task_config import TaskConfig
from glrnn.tokenizer import ByteTokenizer

CLASSES = ("neg", "pos")
LAYOUT = ("an aclImdb folder: train/pos, train/neg, test/pos, test/neg, each with one review "
          "per .txt file")


def read_folder(root: Path, split: str) -> tuple[list[np.ndarray], list[int]]:
    """(reviews as uint8 byte arrays, labels) of ``root/split/{neg,pos}/*.txt``, by file name."""
    texts, labels = [], []
    for label, name in enumerate(CLASSES):
        folder = root / split / name
        files = sorted(folder.glob("*.txt")) if folder.is_dir() else []
        if not files:
            raise layout_error(root, f"{LAYOUT} (no .txt files in {split}/{name})")
        texts += [np.frombuffer(f.read_bytes(), np.uint8) for f in files]
        labels += [label] * len(files)
    return texts, labels


def read_hub(source: str, split: str) -> tuple[list[np.ndarray], list[int]]:
    table = hub_split(source, split)
    text, label = hub_column(table, source, ("text",)), hub_column(table, source, ("label",))
    return ([np.frombuffer(t.encode("utf-8"), np.uint8) for t in table[text]],
            [int(y) for y in table[label]])


def load_imdb(cfg: TaskConfig) -> TaskData:
    tok = ByteTokenizer()
    info = TaskInfo("imdb", n_classes=len(CLASSES), seq_len=cfg.length(),
                    vocab_size=tok.vocab_size, pad_id=tok.pad_id, class_names=CLASSES)
    hub = is_hub(cfg.source)
    root = None if hub else existing(cfg.source, "task.source")
    splits = {}
    for split in ("train", "test"):
        texts, labels = read_hub(cfg.source, split) if hub else read_folder(root, split)
        where = f"task 'imdb', split {split!r}"
        inputs, lengths = pack(texts, info.seq_len, tok.pad_id, cfg.too_long, where)
        splits[split] = Split(inputs, lengths, class_labels(labels, info.n_classes, where))
    return assemble(info, splits, cfg)
