"""Model FLOPs and MFU: what a training step must compute, over what this machine can compute.

``model_flops_per_token`` counts, from the configuration alone, the floating-point operations a
training step spends per token (the PaLM convention: matmuls count 2 FLOPs per multiply-add in
the forward pass and twice that in the backward, so 6 per matmul parameter per token):

* every matmul: each block's time mixer (LRU: B = [B_re; B_im] and C = [C_re, −C_im], 4·N·H;
  GateLoop: the fused input projection k·N·H and the read-out N·H) and channel mixer (MLP
  2·H·F, GLU 3·H·F), and the head V·H (tied or not; the embedding lookup is free);
* the recurrence itself, forward ×3 for training: a complex multiply-add per state channel per
  step for the LRU (8 real FLOPs), a real one for GateLoop (2).

Norms, activations and gates are not counted (they are not model FLOPs, and small).
``measure_peak_flops`` times a large float32 matmul on the default device: MFU is then the share
of the achievable dense throughput the training step turns into model FLOPs.
"""

from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp

from glrnn.config import ModelConfig
from glrnn.mixers.gateloop import projection_layout

SCAN_FLOPS = {"lru": 8, "gateloop": 2}  # per state channel per step, forward


def matmul_params(cfg: ModelConfig) -> int:
    """Parameters used in matmuls, per token (the head included, the embedding lookup not)."""
    h, n = cfg.d_model, cfg.d_state
    if cfg.mixer == "lru":
        mixer = 4 * n * h
    else:
        g = cfg.gateloop
        mixer = (len(projection_layout(g.tied_gates, g.output_gate)) + 1) * n * h
    hidden = max(1, int(cfg.mlp_ratio * h))
    channel = {"mlp": 2 * h * hidden, "glu": 3 * h * hidden, "none": 0}[cfg.channel_mixer]
    return cfg.n_layers * (mixer + channel) + cfg.vocab_size * h


def forward_flops_per_token(cfg: ModelConfig) -> float:
    """Model FLOPs of the forward pass per token."""
    return 2.0 * matmul_params(cfg) + cfg.n_layers * SCAN_FLOPS[cfg.mixer] * cfg.d_state


def model_flops_per_token(cfg: ModelConfig) -> float:
    """Model FLOPs of a training step (forward + backward) per token: 3 × the forward."""
    return 3.0 * forward_flops_per_token(cfg)


@functools.cache
def measure_peak_flops(size: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of the best of ``repeats`` float32 ``size``×``size`` matmuls on the default
    device (measured once per process)."""
    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
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
