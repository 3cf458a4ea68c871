"""``TaskConfig``: which classification task, where its data come from, and its settings.

Frozen dataclasses like the rest of ``glrnn.config``; every range check is in
``__post_init__`` and raises ``ConfigError`` naming the dotted field (``task.copy.delay``) and
what is allowed, before any data are read. Per-task settings are nested dataclasses so that tyro
turns them into flags (``--task.copy.delay 100``, ``--task.image.colour``).

Lengths: ``seq_len`` 0 means the task's own length (``TaskConfig.length()``): the length the
paper or benchmark uses (LRA: ListOps 2000, Text 4096, Retrieval 4000 per document; Mamba's
selective copy 4096; Zoology's MQAR 64), or the one the task's shape fixes (copy 2P + delay + 1,
images H x W). For generated tasks whose length is a free parameter (selective copy, MQAR)
``seq_len`` sets it; for loaded sequences it is the maximum, and a longer one is truncated with a
warning or refused (``too_long``).

Sizes: ``n_train``/``n_val``/``n_test`` 0 mean the task's default (generated tasks: the paper's
counts) or everything (loaded tasks); a positive value is the number generated, or a cap on a
loaded split (its first n after a seeded shuffle, e.g. a Path-X subset that fits in memory).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from glrnn.errors import check, check_choice

# the tasks: the names of glrnn.data.tasks.TASKS (tests/test_layering.py checks they agree)
TASK_NAMES = ("copy", "selective_copy", "mqar", "listops", "imdb", "aan", "cifar", "mnist",
              "pathfinder")
TOO_LONG = ("truncate", "refuse")
HUB = "hf:"
HUB_TASKS = ("imdb", "cifar", "mnist")  # tasks that can read a Hugging Face hub dataset
GENERATED = ("copy", "selective_copy", "mqar")  # never read a source
# The task's own maximum length where seq_len is 0 and the task does not fix it by its shape.
OWN_LENGTH = {"selective_copy": 4096, "mqar": 64, "listops": 2000, "imdb": 4096, "aan": 4000}
IMAGE_SIDE = {"cifar": 32, "mnist": 28}
PATHFINDER_DIFFICULTY = ("easy", "intermediate", "hard")


def _positive(name: str, value: object) -> None:
    check(isinstance(value, int) and value > 0, name, value, "a positive integer")


def _non_negative(name: str, value: object) -> None:
    check(isinstance(value, int) and value >= 0, name, value, "an integer >= 0")


@dataclass(frozen=True)
class CopyConfig:
    """The copy task of Zucchet et al. 2023 (glrnn/data/tasks/copy.py)."""

    pattern: int = 20  # P, steps of the pattern to recall
    bits: int = 7  # bits per step
    delay: int = 7  # blank steps between the pattern and the recall marker

    def __post_init__(self) -> None:
        _positive("task.copy.pattern", self.pattern)
        _positive("task.copy.bits", self.bits)
        _non_negative("task.copy.delay", self.delay)


@dataclass(frozen=True)
class SelectiveCopyConfig:
    """Mamba's selective copying (glrnn/data/tasks/selective_copy.py)."""

    tokens: int = 16  # data tokens to memorise and reproduce
    vocab: int = 16  # ids: 0 noise, 1..vocab-2 data, vocab-1 the marker

    def __post_init__(self) -> None:
        _positive("task.selective_copy.tokens", self.tokens)
        check(isinstance(self.vocab, int) and self.vocab >= 3, "task.selective_copy.vocab",
              self.vocab, "an integer >= 3 (noise, marker and at least one data token)")


@dataclass(frozen=True)
class MQARConfig:
    """Zoology's multi-query associative recall (glrnn/data/tasks/mqar.py)."""

    pairs: int = 4  # key-value pairs, each queried once
    vocab: int = 8192  # keys from [1, vocab/2), values from [vocab/2, vocab)
    power_a: float = 0.01  # query gaps drawn with p(g) ~ g^(power_a - 1); 1 is uniform
    random_non_queries: bool = False  # fill non-query positions with random tokens, not 0

    def __post_init__(self) -> None:
        _positive("task.mqar.pairs", self.pairs)
        check(isinstance(self.vocab, int) and self.vocab >= 4, "task.mqar.vocab", self.vocab,
              "an integer >= 4")
        check(0.0 < self.power_a <= 1.0, "task.mqar.power_a", self.power_a, "0 < power_a <= 1")


@dataclass(frozen=True)
class ListOpsConfig:
    """The LRA ListOps generator's limits and an optional test file (glrnn/data/tasks/listops.py).

    Defaults are LRA's (lra_benchmarks/data/listops.py): depth <= 10, 2-10 arguments per
    operator, accepted lengths strictly between 500 and 2000.
    """

    max_depth: int = 10  # the deepest nesting of operators
    max_args: int = 10  # the most arguments of one operator (at least 2)
    min_length: int = 500  # generated expressions are longer than this many tokens
    max_length: int = 2000  # generated expressions are shorter than this many tokens
    test_file: str = ""  # a ListOps TSV whose rows replace the test split (e.g. the NYU test set)

    def __post_init__(self) -> None:
        _positive("task.listops.max_depth", self.max_depth)
        check(isinstance(self.max_args, int) and self.max_args >= 2, "task.listops.max_args",
              self.max_args, "an integer >= 2")
        _non_negative("task.listops.min_length", self.min_length)
        check(isinstance(self.max_length, int) and self.max_length > self.min_length + 1,
              "task.listops.max_length", self.max_length,
              f"an integer > min_length + 1 ({self.min_length + 1}): lengths are strictly between")


@dataclass(frozen=True)
class ImageConfig:
    """Sequential images, one pixel per step (cifar, mnist: glrnn/data/tasks/images.py)."""

    colour: bool = False  # cifar: RGB channels (the LRU paper) instead of LRA's grey
    permute: bool = False  # a fixed pixel permutation drawn from task.seed (psMNIST)

    def __post_init__(self) -> None:
        check(isinstance(self.colour, bool), "task.image.colour", self.colour, "true or false")
        check(isinstance(self.permute, bool), "task.image.permute", self.permute,
              "true or false")


@dataclass(frozen=True)
class PathfinderConfig:
    """LRA Pathfinder / Path-X (glrnn/data/tasks/pathfinder.py)."""

    resolution: int = 32  # 32, 64 (Pathfinder), 128 (Path-X), 256
    difficulty: str = "hard"  # easy, intermediate, hard: LRA's curv_baseline, _9, _14 folders

    def __post_init__(self) -> None:
        check(self.resolution in (32, 64, 128, 256), "task.pathfinder.resolution",
              self.resolution, "one of 32, 64, 128, 256")
        check_choice("task.pathfinder.difficulty", self.difficulty, PATHFINDER_DIFFICULTY)


@dataclass(frozen=True)
class TaskConfig:
    """A classification task (glrnn/data/tasks/); ``name`` "" means none: a language model."""

    # the task (glrnn/data/tasks/): copy, selective_copy, mqar, listops, imdb, aan, cifar, mnist,
    # pathfinder; "": none (a language model of data.source)
    name: str = ""
    # generated tasks: ""; others: a local file or folder, or hf:NAME (imdb, cifar, mnist)
    source: str = ""
    seq_len: int = 0  # the maximum length L; 0: the task's own (see length())
    too_long: str = "truncate"  # a loaded sequence longer than L: "truncate" (warns) or "refuse"
    seed: int = 0  # generation, validation carving, caps, permutations
    n_train: int = 0  # training examples: 0 the task's default (generated) or all (loaded)
    n_val: int = 0  # validation examples: 0 the task's default (generated) or all (loaded)
    n_test: int = 0  # test examples: 0 the task's default (generated) or all (loaded)
    val_fraction: float = 0.1  # carved from train where the data have no validation split
    copy: CopyConfig = field(default_factory=CopyConfig)
    selective_copy: SelectiveCopyConfig = field(default_factory=SelectiveCopyConfig)
    mqar: MQARConfig = field(default_factory=MQARConfig)
    listops: ListOpsConfig = field(default_factory=ListOpsConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    pathfinder: PathfinderConfig = field(default_factory=PathfinderConfig)

    def __post_init__(self) -> None:
        if self.name:
            check_choice("task.name", self.name, TASK_NAMES)
        _non_negative("task.seq_len", self.seq_len)
        check_choice("task.too_long", self.too_long, TOO_LONG)
        _non_negative("task.seed", self.seed)
        for name in ("n_train", "n_val", "n_test"):
            _non_negative(f"task.{name}", getattr(self, name))
        check(0.0 < self.val_fraction < 1.0, "task.val_fraction", self.val_fraction,
              "0 < val_fraction < 1")
        if self.name:
            self._check_source()
            self._check_length()

    def _check_source(self) -> None:
        if self.name in GENERATED:
            check(not self.source, "task.source", self.source,
                  f"'' (task {self.name!r} is generated)")
        elif self.source.startswith(HUB):
            check(self.name in HUB_TASKS, "task.source", self.source,
                  f"a local file or folder (hf:NAME is for {', '.join(HUB_TASKS)})")
        elif self.name != "listops":  # ListOps without a source is generated
            check(bool(self.source), "task.source", self.source,
                  f"a local file or folder for task {self.name!r}"
                  + (" or hf:NAME" if self.name in HUB_TASKS else ""))

    def _check_length(self) -> None:
        fixed = self.fixed_length()
        if fixed:
            check(self.seq_len in (0, fixed), "task.seq_len", self.seq_len,
                  f"0 or {fixed} (task {self.name!r} has sequences of exactly {fixed} steps)")
        n = self.length()
        if self.name == "selective_copy":
            need = 2 * self.selective_copy.tokens + 1
            check(n >= need, "task.seq_len", n,
                  f">= {need} (2 * task.selective_copy.tokens + 1 noise step)")
        if self.name == "mqar":
            vocab, pairs = self.mqar.vocab, self.mqar.pairs
            check(n % 2 == 0, "task.seq_len", n, "an even length for MQAR")
            check(n >= 4 * pairs, "task.seq_len", n, f">= 4 * task.mqar.pairs ({4 * pairs})")
            check(vocab // 2 - 1 >= pairs, "task.mqar.vocab", vocab,
                  f">= {2 * pairs + 2} (task.mqar.pairs distinct keys below vocab/2)")
        check(not (self.name == "mnist" and self.image.colour), "task.image.colour",
              self.image.colour, "false for mnist (one channel)")

    def fixed_length(self) -> int:
        """The length the task's shape fixes (copy, images), else 0."""
        if self.name == "copy":
            return 2 * self.copy.pattern + self.copy.delay + 1
        if self.name in IMAGE_SIDE:
            return IMAGE_SIDE[self.name] ** 2
        if self.name == "pathfinder":
            return self.pathfinder.resolution ** 2
        return 0

    def length(self) -> int:
        """L: ``seq_len`` if set, else the task's own length."""
        if self.seq_len:
            return self.seq_len
        return self.fixed_length() or OWN_LENGTH.get(self.name, 0)


@dataclass(frozen=True)
class TaskInfo:
    """The shape of a task: what the model's encoder and head must be."""

    name: str
    n_classes: int
    seq_len: int
    vocab_size: int = 0  # token inputs: ids in [0, vocab_size); 0 for real-valued inputs
    input_dim: int = 0  # real-valued inputs: channels C of [N, L, C]; 0 for token inputs
    pad_id: int = 0  # token inputs: the id placed after each sequence's end
    two_tower: bool = False  # inputs2/lengths2 present (retrieval)
    class_names: tuple[str, ...] = ()  # optional, for per-class reports (len n_classes)

    @property
    def tokens(self) -> bool:
        return self.vocab_size > 0


__all__ = ["CopyConfig", "ImageConfig", "ListOpsConfig", "MQARConfig",
           "PathfinderConfig", "SelectiveCopyConfig", "TaskConfig", "TaskInfo"]
