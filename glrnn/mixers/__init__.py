"""Time mixers: each implements the mixer protocol (see docs/ARCHITECTURE.md).

``MIXERS`` maps a config name to a factory ``(cfg: ModelConfig) -> flax module``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import flax.linen as nn

from glrnn.mixers.dense_rnn import DenseRNN
from glrnn.mixers.diag_rnn import DiagRNN
from glrnn.mixers.gateloop import GateLoop
from glrnn.mixers.gru import GRU
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


def _dense_rnn(cfg: ModelConfig) -> nn.Module:
    r = cfg.dense_rnn
    return DenseRNN(d_model=cfg.d_model, d_state=cfg.d_state, activation=r.activation,
                    a_init=r.a_init, radius=r.radius, quantile=r.quantile)


def _diag_rnn(cfg: ModelConfig) -> nn.Module:
    r = cfg.diag_rnn
    return DiagRNN(d_model=cfg.d_model, d_state=cfg.d_state, eig_init=r.eig_init,
                   radius=r.radius, quantile=r.quantile, scan_method=cfg.scan_method,
                   chunk_size=cfg.chunk_size)


def _gru(cfg: ModelConfig) -> nn.Module:
    return GRU(d_model=cfg.d_model, d_state=cfg.d_state)


MIXERS: dict[str, Callable[[ModelConfig], nn.Module]] = {"lru": _lru, "gateloop": _gateloop}
MIXERS |= {"dense_rnn": _dense_rnn, "diag_rnn": _diag_rnn, "gru": _gru}


def make_mixer(cfg: ModelConfig) -> nn.Module:
    """The time mixer named by ``cfg.mixer``."""
    return MIXERS[cfg.mixer](cfg)
