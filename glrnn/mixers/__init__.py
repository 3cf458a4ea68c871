"""Time mixers: each implements the mixer protocol (see docs/ARCHITECTURE.md).

``MIXERS`` maps a config name to a factory ``(cfg: ModelConfig) -> flax module``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import flax.linen as nn

from glrnn.mixers.gateloop import GateLoop
from glrnn.mixers.lru import LRU

if TYPE_CHECKING:
    from glrnn.config import ModelConfig


def _lru(cfg: ModelConfig) -> nn.Module:
    return LRU(d_model=cfg.d_model, d_state=cfg.d_state, r_min=cfg.lru.r_min,
               r_max=cfg.lru.r_max, max_phase=cfg.lru.max_phase,
               scan_method=cfg.scan_method, chunk_size=cfg.chunk_size)


def _gateloop(cfg: ModelConfig) -> nn.Module:
    g = cfg.gateloop
    return GateLoop(d_model=cfg.d_model, d_state=cfg.d_state, tied_gates=g.tied_gates,
                    input_activation=g.input_activation, hidden_activation=g.hidden_activation,
                    gate_activation=g.gate_activation, output_gate=g.output_gate,
                    f_min=g.f_min, f_max=g.f_max,
                    scan_method=cfg.scan_method, chunk_size=cfg.chunk_size)


MIXERS: dict[str, Callable[[ModelConfig], nn.Module]] = {"lru": _lru, "gateloop": _gateloop}


def make_mixer(cfg: ModelConfig) -> nn.Module:
    """The time mixer named by ``cfg.mixer``."""
    return MIXERS[cfg.mixer](cfg)
