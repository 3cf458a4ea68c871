"""Model FLOPs and MFU: what a training step must compute, over what this machine can compute.

``model_flops_per_token`` counts, from the configuration alone, the floating-point operations a
training step spends per token (the PaLM convention: matmuls count 2 FLOPs per multiply-add in
the forward pass and twice that in the backward, so 6 per matmul parameter per token):

* every matmul: every parameter of rank >= 2 of the model (read from its abstract parameter
  tree, so every mixer and block layout is counted as it is built: the LRU's B and C, GateLoop's
  fused projections, the RG-LRU's block-diagonal gates, attention's projections, the channel
  mixers; a depthwise convolution's kernel costs the same 2 FLOPs per weight), and the head V·H
  (tied or not; lookups in the embedding and a learned position table are free);
* the recurrence itself, forward ×3 for training: a complex multiply-add per state channel per
  step for the LRU (8 real FLOPs), a real one for GateLoop and the RG-LRU (2); mixers without an
  entry in ``SCAN_FLOPS`` count their matmuls only;
* attention: q·k and the weighted sum of v, 4·d_model FLOPs per key a query sees (causal, within
  the window), averaged over the ``seq_len`` positions of a training window.

Norms, activations and gates are not counted (they are not model FLOPs, and small).
``measure_peak_flops`` times a large float32 matmul on the default device: MFU is then the share
of the achievable dense throughput the training step turns into model FLOPs.
"""

from __future__ import annotations

import functools
import time

import jax

from glrnn.config import ModelConfig
from glrnn.mixers import layer_mixers
from glrnn.models import LanguageModel, example_inputs
from glrnn.params import abstract_params

SCAN_FLOPS = {"lru": 8, "gateloop": 2, "rglru": 2}  # per state channel per step, forward


def matmul_params(cfg: ModelConfig) -> int:
    """Parameters used in matmuls, per token (the head included, the lookup tables of role
    ``embedding`` not: the token embedding, a learned position table)."""
    params, roles = abstract_params(LanguageModel(cfg), example_inputs(cfg))
    matrices = sum(leaf.size for leaf, role in zip(jax.tree.leaves(params),
                                                   jax.tree.leaves(roles), strict=True)
                   if leaf.ndim >= 2 and role != "embedding")
    tied = cfg.tie_embeddings and not cfg.continuous
    return matrices + (cfg.vocab_size * cfg.d_model if tied else 0)


def attended_keys(slots: int, seq_len: int | None) -> float:
    """Keys a query sees on average over positions 0 .. seq_len − 1 (min(t + 1, slots));
    ``slots`` when the length is not given."""
    if seq_len is None:
        return float(slots)
    return sum(min(t + 1, slots) for t in range(seq_len)) / seq_len


def mixer_flops(cfg: ModelConfig, name: str, seq_len: int | None) -> float:
    """Forward FLOPs per token of block mixer ``name`` beyond its matmuls."""
    if name == "attention":
        return 4.0 * cfg.d_model * attended_keys(cfg.attention.slots, seq_len)
    width = cfg.recurrent_width if name == "rglru" else cfg.d_state
    return SCAN_FLOPS.get(name, 0) * width


def forward_flops_per_token(cfg: ModelConfig, seq_len: int | None = None) -> float:
    """Model FLOPs of the forward pass per token (``seq_len``: attention's window length)."""
    return 2.0 * matmul_params(cfg) + sum(mixer_flops(cfg, name, seq_len)
                                          for name in layer_mixers(cfg))


def model_flops_per_token(cfg: ModelConfig, seq_len: int | None = None) -> float:
    """Model FLOPs of a training step (forward + backward) per token: 3 × the forward."""
    return 3.0 * forward_flops_per_token(cfg, seq_len)


@functools.cache
def measure_peak_flops(size: int = 2048, repeats: int = 5, dtype: str = "float32") -> float:
    """FLOP/s of the best of ``repeats`` ``size``×``size`` matmuls in ``dtype`` on the default
    device (measured once per process)."""
    a = jax.random.normal(jax.random.key(0), (size, size), dtype)
    matmul = jax.jit(lambda x: x @ x)
    matmul(a).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best


def mfu(tokens_per_s: float, flops_per_token: float, peak_flops: float) -> float:
    """Model FLOPs utilisation in [0, 1] (above 1 only if the peak was measured too low)."""
    return tokens_per_s * flops_per_token / peak_flops
