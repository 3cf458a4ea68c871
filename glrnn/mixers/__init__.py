"""Time mixers: each implements the mixer protocol (see docs/ARCHITECTURE.md).

``MIXERS`` maps a config name to a factory ``(cfg: ModelConfig) -> flax module`` that builds the
mixer at width ``cfg.d_model``. :func:`make_mixer` places it in the block layout
(``cfg.block``): ``prenorm`` uses it as it is (behind a short convolution with ``cfg.conv``);
``hawk`` and ``griffin`` wrap it, convolution included, in Griffin's gated recurrent block at
width ``cfg.recurrent_width``; every ``cfg.attention_period``-th block is an attention block.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import flax.linen as nn

from glrnn.mixers.attention import Attention
from glrnn.mixers.conv import Convolved
from glrnn.mixers.dense_rnn import DenseRNN
from glrnn.mixers.diag_rnn import DiagRNN
from glrnn.mixers.gated import GatedRecurrence
from glrnn.mixers.gateloop import GateLoop
from glrnn.mixers.gateloop_qkv import GateLoopQKV
from glrnn.mixers.gru import GRU
from glrnn.mixers.lru import LRU
from glrnn.mixers.rglru import RGLRU

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
                    scan_method=cfg.scan_method, chunk_size=cfg.chunk_size,
                    recurrent=g.recurrent)


def _gateloop_qkv(cfg: ModelConfig) -> nn.Module:
    g = cfg.gateloop_qkv
    return GateLoopQKV(d_model=cfg.d_model, heads=g.heads, key_width=g.key_width,
                       value_width=g.value_width, phase=g.phase, a_min=g.a_min, a_max=g.a_max,
                       max_phase=g.max_phase, feature_map=g.feature_map,
                       scan_method=cfg.scan_method,
                       chunk_size=cfg.chunk_size)


def _rglru(cfg: ModelConfig) -> nn.Module:
    g = cfg.rglru
    return RGLRU(d_model=cfg.d_model, c=g.c, r_min=g.r_min, r_max=g.r_max,
                 gate_blocks=g.gate_blocks, scan_method=cfg.scan_method,
                 chunk_size=cfg.chunk_size, unscaled_start=g.unscaled_start)


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


def _attention(cfg: ModelConfig) -> nn.Module:
    a = cfg.attention
    return Attention(d_model=cfg.d_model, heads=a.heads, kv_heads=a.kv_heads, slots=a.slots,
                     rope_base=a.rope_base, dtype=cfg.dtype, rope_fraction=a.rope_fraction,
                     out_bias=a.out_bias)


MIXERS: dict[str, Callable[[ModelConfig], nn.Module]] = {
    "lru": _lru, "gateloop": _gateloop, "gateloop_qkv": _gateloop_qkv, "rglru": _rglru,
    "attention": _attention, "dense_rnn": _dense_rnn, "diag_rnn": _diag_rnn, "gru": _gru}


def layer_mixers(cfg: ModelConfig) -> tuple[str, ...]:
    """The mixer name of each block: ``attention`` at blocks k, 2k, ... (k =
    ``cfg.attention_period``, counted from 1), ``cfg.mixer`` elsewhere."""
    period = cfg.attention_period
    return tuple("attention" if period and (i + 1) % period == 0 else cfg.mixer
                 for i in range(cfg.n_layers))


def make_mixer(cfg: ModelConfig, layer: int = 0) -> nn.Module:
    """The time mixer of block ``layer`` (counted from 0) in the layout ``cfg.block``."""
    name = layer_mixers(cfg)[layer]
    if cfg.block == "prenorm" or name == "attention":
        mixer = MIXERS[name](cfg)
        return Convolved(mixer, cfg.d_model, cfg.conv_width) if cfg.conv else mixer
    width = cfg.recurrent_width
    inner = MIXERS[name](dataclasses.replace(cfg, d_model=width, block="prenorm",
                                             attention_every=0, conv=False))
    return GatedRecurrence(Convolved(inner, width, cfg.conv_width), cfg.d_model, width, cfg.dtype)
