"""ListOps: nested lists of MAX, MIN, MED and SM (sum mod 10) over digits; the label is the value.

Sources:

* Nangia & Bowman, "ListOps: A Diagnostic Dataset for Latent Tree Learning" (NAACL SRW 2018);
  their files (github.com/nyu-mll/spinn, branch ``listops-release``,
  ``python/spinn/data/listops/{train,test}_d20s.tsv``) have no header and one
  ``label<TAB>expression`` per line.
* Tay et al., "Long Range Arena" (ICLR 2021); the generator ``lra_benchmarks/data/listops.py``
  of github.com/google-research/long-range-arena writes ``basic_{train,val,test}.tsv`` with a
  header ``Source<TAB>Target`` and ``expression<TAB>label`` rows.

Both write expressions as ``( ( [MAX 2 ) 9 ) ] )``: an operator opens with ``[MAX``, its
arguments follow, ``]`` closes it, and the parentheses only bracket the binary tree the
generator built. Tokenisation drops the parentheses and keeps ``]`` as a closing token, as the
S4 code does for LRA (``listops_tokenizer`` in ``src/dataloaders/lra.py`` of
github.com/state-spaces/s4; LRA's own tokenizer kept alphanumerics only); ids below.

The generator follows LRA's ``generate_tree``: from depth 1, a node below ``max_depth`` is an
operator with probability 0.25 (else a digit 0-9, uniform), an operator has 2..``max_args``
arguments and a uniformly chosen operator, a node at ``max_depth`` is a digit; a tree's length
is its number of tokens (digits, operators and ``]``s) and it is kept when
``min_length < length < max_length`` (LRA: 500 and 2000, depth 10, 10 arguments, 96,000 /
2,000 / 2,000 distinct examples). MED is ``int(numpy.median(args))`` as in LRA (the lower mean
of the two middle values for an even count, rounded down). Trees are drawn in one seeded stream,
test first, then validation, then train, and a tree already drawn is drawn again, so the splits
are disjoint and the test split does not depend on ``n_train``. A tree that grows past
``max_length`` is abandoned as soon as it does (LRA would reject it once complete): the accepted
trees have the same distribution, found faster.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from glrnn.config import ConfigError
from glrnn.data.tasks.arrays import GENERATE, SPLITS, assemble, pack, stream
from glrnn.data.tasks.base import Split, TaskData, TaskInfo
from glrnn.data.tasks.sources import existing, split_files
from glrnn.task_config import TaskConfig

PAD = 0
DIGITS = tuple(str(d) for d in range(10))
OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
CLOSE = "]"
TOKENS = ("<pad>", *DIGITS, *OPERATORS, CLOSE)  # id -> token
IDS = {t: i for i, t in enumerate(TOKENS)}
DIGIT0, OP0, CLOSE_ID = IDS["0"], IDS[OPERATORS[0]], IDS[CLOSE]
VALUE_P = 0.25  # LRA: a node below max_depth is an operator with this probability
DEFAULT_SIZES = (96_000, 2_000, 2_000)  # LRA's train / validation / test counts
N_CLASSES = 10
MAX_MISSES = 100_000
FILE_WORDS = {"train": ("train",), "val": ("val",), "test": ("test",)}
LAYOUT = ("ListOps files *train*.tsv and *test*.tsv, optionally *val*.tsv (LRA: basic_train.tsv, "
          "basic_val.tsv, basic_test.tsv; NYU: train_d20s.tsv, test_d20s.tsv)")


def apply(op: str, args: list[int]) -> int:
    """The value of operator ``op`` (one of OPERATORS) on digit arguments."""
    if op == "[MIN":
        return min(args)
    if op == "[MAX":
        return max(args)
    if op == "[SM":
        return sum(args) % 10
    s = sorted(args)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) // 2


class _TooLong(Exception):
    pass


def _tree(r: random.Random, depth: int, max_depth: int, max_args: int, limit: int,
          out: list[int]) -> int:
    """Append one LRA tree's token ids to ``out``; its value. Raises _TooLong once ``out`` has
    ``limit`` tokens."""
    if len(out) >= limit:
        raise _TooLong
    if depth >= max_depth or r.random() > VALUE_P:
        value = r.randrange(10)
        out.append(DIGIT0 + value)
        return value
    n_args = r.randint(2, max_args)
    op = r.randrange(len(OPERATORS))
    out.append(OP0 + op)
    args = [_tree(r, depth + 1, max_depth, max_args, limit, out) for _ in range(n_args)]
    out.append(CLOSE_ID)
    return apply(OPERATORS[op], args)


def generate_examples(r: random.Random, n: int, max_depth: int, max_args: int, min_length: int,
                      max_length: int, seen: set[tuple[int, ...]]) -> tuple[list[list[int]],
                                                                             list[int]]:
    """``n`` distinct trees not in ``seen`` (which grows): (token id lists, values).

    ``ConfigError`` after MAX_MISSES draws in a row without a new tree (LRA's limits need about
    12 draws per tree, at worst about 100): the limits admit too few distinct trees.
    """
    seqs, labels = [], []
    misses = 0
    while len(seqs) < n:
        if misses >= MAX_MISSES:
            raise ConfigError(f"task 'listops': {MAX_MISSES} trees in a row were too short, too "
                              f"long or repeats after {len(seen)} distinct ones: expected limits "
                              "(task.listops.max_depth, max_args, min_length, max_length) that "
                              "admit more trees, or fewer examples")
        misses += 1
        out: list[int] = []
        try:
            value = _tree(r, 1, max_depth, max_args, max_length, out)
        except _TooLong:
            continue
        key = tuple(out)
        if min_length < len(out) < max_length and key not in seen:
            seen.add(key)
            seqs.append(out)
            labels.append(value)
            misses = 0
    return seqs, labels


def tokenize(expression: str) -> list[str]:
    """Tokens of a ListOps expression: parentheses dropped, ``]`` kept."""
    return expression.replace("(", " ").replace(")", " ").split()


def read_tsv(path: Path) -> tuple[list[list[int]], list[int]]:
    """(token id lists, labels) of a ListOps TSV: LRA's ``Source<TAB>Target`` with that header
    (either column order) or NYU's headerless ``label<TAB>expression``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    label_col, expr_col, start = 0, 1, 0
    header = lines[0].split("\t") if lines else []
    if sorted(header) == ["Source", "Target"]:
        label_col, expr_col, start = header.index("Target"), header.index("Source"), 1
    seqs, labels = [], []
    for number, line in enumerate(lines[start:], start + 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        where = f"{path}:{number}"
        if len(fields) != 2:
            raise ConfigError(f"{where}: {len(fields)} tab-separated fields: expected 2 "
                              "(label and expression, or Source and Target under a header)")
        try:
            label = int(fields[label_col])
        except ValueError:
            raise ConfigError(f"{where}: label {fields[label_col]!r}: expected an integer "
                              f"0-{N_CLASSES - 1}") from None
        if not 0 <= label < N_CLASSES:
            raise ConfigError(f"{where}: label {label}: expected 0 <= label < {N_CLASSES}")
        tokens = tokenize(fields[expr_col])
        unknown = [t for t in tokens if t not in IDS or t == TOKENS[PAD]]
        if unknown:
            raise ConfigError(f"{where}: unknown token {unknown[0]!r}: expected digits, "
                              f"{', '.join(OPERATORS)} or {CLOSE}")
        seqs.append([IDS[t] for t in tokens])
        labels.append(label)
    if not seqs:
        raise ConfigError(f"{path}: no ListOps rows")
    return seqs, labels


def _split(seqs: list[list[int]], labels: list[int], cfg: TaskConfig, where: str) -> Split:
    inputs, lengths = pack(seqs, cfg.length(), PAD, cfg.too_long, where)
    return Split(inputs, lengths, np.asarray(labels, np.int32))


def load_listops(cfg: TaskConfig) -> TaskData:
    """Generated splits (no ``task.source``) or the TSV files of a folder; the rows of
    ``task.listops.test_file`` replace the test split when given."""
    info = TaskInfo("listops", n_classes=N_CLASSES, seq_len=cfg.length(),
                    vocab_size=len(TOKENS), pad_id=PAD, class_names=DIGITS)
    test_file = cfg.listops.test_file
    test = (_split(*read_tsv(existing(test_file, "task.listops.test_file")), cfg,
                   _where("test")) if test_file else None)
    if cfg.source:
        files = split_files(existing(cfg.source, "task.source"), ".tsv", FILE_WORDS, LAYOUT)
        splits = {name: _split(*read_tsv(path), cfg, _where(name))
                  for name, path in files.items()}
        if test is not None:
            splits["test"] = test
        return assemble(info, splits, cfg)
    splits = generate_splits(cfg, skip_test=test is not None)
    if test is not None:
        splits["test"] = test
    return TaskData(info, {name: splits[name] for name in SPLITS})


def generate_splits(cfg: TaskConfig, skip_test: bool = False) -> dict[str, Split]:
    """LRA-generated splits of the sizes asked for (0: LRA's), drawn test first."""
    l = cfg.listops
    r = random.Random(int(stream(cfg.seed, GENERATE).integers(2**63)))
    seen: set[tuple[int, ...]] = set()
    sizes = (cfg.n_train, cfg.n_val, cfg.n_test)
    splits = {}
    for i in (2, 1, 0):  # test, val, train: the test split does not depend on n_train
        if skip_test and i == 2:
            continue
        examples = generate_examples(r, sizes[i] or DEFAULT_SIZES[i], l.max_depth, l.max_args,
                                     l.min_length, l.max_length, seen)
        splits[SPLITS[i]] = _split(*examples, cfg, _where(SPLITS[i]))
    return splits


def _where(split: str) -> str:
    return f"task 'listops', split {split!r}"
