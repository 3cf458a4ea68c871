"""Frozen configuration dataclasses; every range check lives here.

A bad value fails in ``__post_init__`` with a ``ConfigError`` whose one-line message names the
field (dotted path as on the command line) and what is allowed, before any work starts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field


class ConfigError(ValueError):
    """A configuration value outside its allowed range."""


def check(ok: bool, name: str, value: object, allowed: str) -> None:
    """Raise ``ConfigError("name=value: expected allowed")`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"{name}={value!r}: expected {allowed}")


def check_choice(name: str, value: str, choices: Iterable[str]) -> None:
    choices = sorted(choices)
    check(value in choices, name, value, f"one of {', '.join(choices)}")


SCAN_METHODS = ("auto", "associative", "sequential", "chunked")
NORMS = ("layernorm", "rmsnorm")
CHANNEL_MIXERS = ("mlp", "glu", "none")
ACTIVATIONS = ("identity", "tanh", "gelu", "silu", "relu", "sigmoid")


@dataclass(frozen=True)
class LRUConfig:
    """The LRU's initialisation ring (Orvieto et al. 2023, section 3.3)."""

    r_min: float = 0.9
    r_max: float = 0.999
    max_phase: float = math.pi / 10

    def __post_init__(self) -> None:
        check(0.0 <= self.r_min < 1.0, "model.lru.r_min", self.r_min, "0 <= r_min < 1")
        check(0.0 < self.r_max < 1.0, "model.lru.r_max", self.r_max, "0 < r_max < 1")
        check(self.r_min < self.r_max, "model.lru.r_min", self.r_min,
              f"r_min < r_max (r_max={self.r_max})")
        check(0.0 < self.max_phase <= 2 * math.pi, "model.lru.max_phase", self.max_phase,
              "0 < max_phase <= 2*pi")


@dataclass(frozen=True)
class GateLoopConfig:
    """GateLoop-style gated linear RNN (Katsch 2023), see glrnn/mixers/gateloop.py."""

    tied_gates: bool = True
    input_activation: str = "tanh"
    hidden_activation: str = "tanh"
    gate_activation: str = "sigmoid"
    output_gate: bool = True
    # forget gate f = sigmoid(bias + W x): biases are set so that at initialisation f spans
    # [f_min, f_max] (memory time-scales 1/(1-f) spread log-uniformly).
    f_min: float = 0.9
    f_max: float = 0.999

    def __post_init__(self) -> None:
        for name in ("input_activation", "hidden_activation", "gate_activation"):
            check_choice(f"model.gateloop.{name}", getattr(self, name), ACTIVATIONS)
        check(0.0 < self.f_min < 1.0, "model.gateloop.f_min", self.f_min, "0 < f_min < 1")
        check(self.f_min < self.f_max < 1.0, "model.gateloop.f_max", self.f_max,
              f"f_min < f_max < 1 (f_min={self.f_min})")


@dataclass(frozen=True)
class ModelConfig:
    """A stack of pre-norm residual blocks: time mixer, then channel mixer."""

    vocab_size: int = 259
    d_model: int = 256
    n_layers: int = 4
    mixer: str = "lru"
    d_state: int = 256
    channel_mixer: str = "glu"
    mlp_ratio: float = 2.0
    norm: str = "rmsnorm"
    dropout: float = 0.0
    tie_embeddings: bool = True
    scan_method: str = "auto"
    chunk_size: int = 64
    lru: LRUConfig = field(default_factory=LRUConfig)
    gateloop: GateLoopConfig = field(default_factory=GateLoopConfig)

    def __post_init__(self) -> None:
        from glrnn.mixers import MIXERS  # the registry decides which names exist

        for name in ("vocab_size", "d_model", "n_layers", "d_state", "chunk_size"):
            value = getattr(self, name)
            check(isinstance(value, int) and value > 0, f"model.{name}", value,
                  "a positive integer")
        check_choice("model.mixer", self.mixer, MIXERS)
        check_choice("model.channel_mixer", self.channel_mixer, CHANNEL_MIXERS)
        check_choice("model.norm", self.norm, NORMS)
        check_choice("model.scan_method", self.scan_method, SCAN_METHODS)
        check(self.mlp_ratio > 0, "model.mlp_ratio", self.mlp_ratio, "> 0")
        check(0.0 <= self.dropout < 1.0, "model.dropout", self.dropout, "0 <= dropout < 1")
