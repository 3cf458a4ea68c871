"""RG-LRU, the short convolution, causal attention and Griffin's gated block, each against a
straightforward implementation of its equations written here (dense matrices, Python loops over
time, numpy), plus their initialisation and the configuration checks that guard them."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.core.meta import unbox

from glrnn.config import (
    AttentionConfig,
    Config,
    ConfigError,
    DataConfig,
    GateLoopConfig,
    ModelConfig,
    RGLRUConfig,
)
from glrnn.mixers import MIXERS, layer_mixers, make_mixer
from glrnn.mixers.attention import Attention
from glrnn.mixers.conv import causal_conv
from glrnn.mixers.rglru import RGLRU, SQRT_MAX_GRADIENT, sqrt_bounded

D = 8


def sigmoid(v: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-v))


def init(module, x: jax.Array) -> dict:
    return unbox(jax.jit(module.init)(jax.random.key(0), x))["params"]


def randomized(params: dict, seed: int, scale: float = 0.3) -> dict:
    """params plus noise, so that no zero-initialised bias or weight hides a term (numpy noise:
    no compilation per shape)."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda v: v + scale * rng.standard_normal(v.shape).astype(v.dtype),
                        params)


def resets_of(segments: np.ndarray) -> np.ndarray:
    """bool [B, L]: the segment changes at t (never at 0)."""
    changed = np.zeros(segments.shape, bool)
    changed[:, 1:] = segments[:, 1:] != segments[:, :-1]
    return changed


# --- RG-LRU ---


def reference_rglru(p: dict, x: np.ndarray, h0: np.ndarray, c: float,
                    segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Griffin equations with dense block-diagonal matrices and a loop over time."""
    blocks, size = p["gate_kernel"].shape[:2]
    w_a, w_x = np.zeros((D, D)), np.zeros((D, D))
    for h in range(blocks):
        rows = slice(h * size, (h + 1) * size)
        w_a[rows, rows] = p["gate_kernel"][h, :, :size]
        w_x[rows, rows] = p["gate_kernel"][h, :, size:]
    b_a, b_x = p["gate_bias"][:, :size].ravel(), p["gate_bias"][:, size:].ravel()
    base = sigmoid(p["lam"])
    reset = resets_of(segments)
    h, ys = h0, []
    for t in range(x.shape[1]):
        x_t = x[:, t]
        r, i = sigmoid(x_t @ w_a + b_a), sigmoid(x_t @ w_x + b_x)
        a = base ** (c * r)
        h = np.where(reset[:, t, None], 0.0, h)
        h = a * h + np.sqrt(1 - a**2) * (i * x_t)
        ys.append(h)
    return np.stack(ys, axis=1), h


@pytest.mark.parametrize(("blocks", "method"), [(1, "sequential"), (4, "chunked")])
def test_rglru_matches_the_equations(blocks, method):
    with jax.enable_x64(True):
        layer = RGLRU(d_model=D, c=8.0, gate_blocks=blocks, scan_method=method, chunk_size=3)
        x = jax.random.normal(jax.random.key(1), (2, 11, D), jnp.float64)
        params = randomized(jax.tree.map(lambda v: v.astype(jnp.float64), init(layer, x)), 2)
        h0 = jax.random.normal(jax.random.key(3), (2, D), jnp.float64)
        segments = np.array([[0] * 11, [0] * 4 + [1] * 7])
        y, carry = jax.jit(layer.apply)({"params": params}, x, h0,
                                        segment_ids=jnp.asarray(segments))
        ref_y, ref_h = reference_rglru(jax.tree.map(np.asarray, params), np.asarray(x),
                                       np.asarray(h0), 8.0, segments)
        np.testing.assert_allclose(y, ref_y, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(carry, ref_h, rtol=1e-10, atol=1e-10)


def test_rglru_initial_decays_lie_on_the_ring_uniformly_in_area():
    r_min, r_max, c, n = 0.9, 0.999, 8.0, 20000
    # n blocks of width 1: a small gate kernel
    params = init(RGLRU(d_model=n, c=c, r_min=r_min, r_max=r_max, gate_blocks=n),
                  jnp.zeros((1, 1, n)))
    assert params["gate_kernel"].shape == (n, 1, 2) and not np.any(params["gate_bias"])
    radius = sigmoid(np.asarray(params["lam"], np.float64)) ** c  # a^c
    assert radius.min() >= r_min - 1e-5 and radius.max() <= r_max + 1e-5
    area = (radius**2 - r_min**2) / (r_max**2 - r_min**2)
    grid = np.linspace(0, 1, 11)[1:-1]
    np.testing.assert_allclose(np.quantile(area, grid), grid, atol=0.02)


def test_sqrt_has_a_bounded_derivative():
    grad = jax.vmap(jax.grad(sqrt_bounded))(jnp.array([0.0, 1e-12, 0.25, 1.0]))
    np.testing.assert_allclose(grad, [SQRT_MAX_GRADIENT, SQRT_MAX_GRADIENT, 1.0, 0.5],
                               rtol=1e-6)


def test_rglru_gradients_stay_finite_when_the_recurrence_gate_closes():
    """r -> 0 makes a -> 1 and 1 - a² -> 0: the capped square root keeps gradients finite."""
    layer = RGLRU(d_model=D)
    x = jax.random.normal(jax.random.key(1), (1, 32, D))
    params = init(layer, x)
    params["gate_bias"] = params["gate_bias"].at[:, :D].set(-60.0)  # r = σ(-60) ≈ 1e-26

    grads = jax.grad(lambda p: jnp.sum(layer.apply({"params": p}, x)[0] ** 2))(params)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))


# --- short convolution ---


def reference_conv(kernel: np.ndarray, bias: np.ndarray, x: np.ndarray, previous: np.ndarray,
                   segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """u_t = bias + Σ_j kernel_j x_{t−j} over the taps in t's segment (the previous inputs
    continue the first position's segment); the new carry keeps the last segment's inputs."""
    width, (batch, length, _) = kernel.shape[0], x.shape
    stream = np.concatenate([previous, x], axis=1)
    seg = np.concatenate([np.repeat(segments[:, :1], width - 1, axis=1), segments], axis=1)
    u = np.zeros(x.shape)
    for b in range(batch):
        for t in range(length):
            i = t + width - 1  # index of position t in the stream
            u[b, t] = bias + sum(kernel[j] * stream[b, i - j] for j in range(width)
                                 if all(seg[b, i - j:i + 1] == seg[b, i]))
    kept = stream[:, -(width - 1):] * (seg[:, -(width - 1):] == seg[:, -1:])[..., None]
    return u, kept


def test_conv_matches_the_equations_with_a_carry_and_resets():
    width, key = 4, jax.random.key(7)
    k1, k2, k3, k4 = jax.random.split(key, 4)
    kernel, bias = jax.random.normal(k1, (width, D)), jax.random.normal(k2, (D,))
    x, previous = jax.random.normal(k3, (3, 9, D)), jax.random.normal(k4, (3, width - 1, D))
    # no reset; a reset at 1 (the carry is dropped); resets at 2 and at the last position
    segments = np.array([[0] * 9, [0] + [1] * 8, [0, 0] + [1] * 6 + [2]])
    u, kept = jax.jit(causal_conv)(x, kernel, bias, previous, jnp.asarray(resets_of(segments)))
    ref_u, ref_kept = reference_conv(*(np.asarray(a) for a in (kernel, bias, x, previous)),
                                     segments)
    np.testing.assert_allclose(u, ref_u, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(kept, ref_kept, rtol=1e-6, atol=1e-6)
    assert not np.any(kept[2, :2]) and np.any(kept[0])


# --- attention ---


def rotate(v: np.ndarray, position: int, base: float) -> np.ndarray:
    """RoPE of one head vector: the pair (v_i, v_{i+D/2}) turned by position · base^(−2i/D)."""
    half = v.shape[-1] // 2
    angle = position * base ** (-np.arange(half) / half)
    v1, v2 = v[:half], v[half:]
    return np.concatenate([v1 * np.cos(angle) - v2 * np.sin(angle),
                           v1 * np.sin(angle) + v2 * np.cos(angle)])


def reference_attention(p: dict, x: np.ndarray, segments: np.ndarray, heads: int, kv_heads: int,
                        slots: int, base: float) -> np.ndarray:
    """Each query over the keys p ≤ t, t − p < slots, with no segment change in (p, t]."""
    batch, length, dim = x.shape
    d = dim // heads
    wq, wk, wv = np.split(p["qkv"]["kernel"], [heads * d, (heads + kv_heads) * d], axis=1)
    y = np.zeros((batch, length, heads * d))
    for b in range(batch):
        for t in range(length):
            seen = [s for s in range(max(0, t - slots + 1), t + 1)
                    if all(segments[b, s:t + 1] == segments[b, t])]
            for h in range(heads):
                g = h // (heads // kv_heads)
                q = rotate(x[b, t] @ wq[:, h * d:(h + 1) * d], t, base)
                scores = np.array([q @ rotate(x[b, s] @ wk[:, g * d:(g + 1) * d], s, base)
                                   for s in seen]) / math.sqrt(d)
                weights = np.exp(scores - scores.max())
                weights /= weights.sum()
                y[b, t, h * d:(h + 1) * d] = sum(w * (x[b, s] @ wv[:, g * d:(g + 1) * d])
                                                 for w, s in zip(weights, seen, strict=True))
    return y @ p["out"]["kernel"]


@pytest.mark.parametrize(("heads", "kv_heads", "slots"), [(4, 4, 64), (4, 2, 5)])
def test_attention_matches_the_equations_in_blocks_and_across_a_carry(heads, kv_heads, slots):
    """40 positions in blocks of 16 queries (the window slices the keys), as one call and as
    10 + 30 positions with the cache passed along; documents change at 13 and at 30."""
    layer = Attention(d_model=D, heads=heads, kv_heads=kv_heads, slots=slots, block_size=16)
    x = jax.random.normal(jax.random.key(1), (2, 40, D))
    params = init(layer, x[:, :4])
    segments = np.array([[0] * 13 + [1] * 27, [0] * 30 + [1] * 10])
    ref = reference_attention(jax.tree.map(np.asarray, params), np.asarray(x, np.float64),
                              segments, heads, kv_heads, slots, layer.rope_base)
    apply = jax.jit(layer.apply)
    whole, _ = apply({"params": params}, x, segment_ids=jnp.asarray(segments))
    first, carry = apply({"params": params}, x[:, :10], segment_ids=jnp.asarray(segments[:, :10]))
    second, _ = apply({"params": params}, x[:, 10:], carry,
                      segment_ids=jnp.asarray(segments[:, 10:]))
    np.testing.assert_allclose(whole, ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(jnp.concatenate([first, second], axis=1), ref, rtol=1e-4,
                               atol=1e-5)


def test_attention_cache_holds_the_last_slots():
    layer = Attention(d_model=D, heads=2, slots=5)
    x = jax.random.normal(jax.random.key(1), (1, 7, D))
    params = init(layer, x)
    _, cache = jax.jit(layer.apply)({"params": params}, x)
    assert cache.keys.shape == (1, 5, 2, D // 2) and cache.keys.dtype == jnp.float32
    assert cache.count.tolist() == [7] and cache.start.tolist() == [0]
    # after 3 positions: 2 empty slots, then positions 0, 1, 2; after 7: positions 2 .. 6
    _, short = jax.jit(layer.apply)({"params": params}, x[:, :3])
    assert not np.any(short.keys[0, :2]) and np.all(np.abs(short.keys[0, 2:]).sum(-1) > 0)
    np.testing.assert_allclose(short.keys[0, 4], cache.keys[0, 0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(short.values[0, 4], cache.values[0, 0], rtol=1e-6, atol=1e-6)


# --- Griffin's gated recurrent block ---


def gelu(v: np.ndarray) -> np.ndarray:
    """flax's default (tanh-approximated) GeLU."""
    return 0.5 * v * (1 + np.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)))


def test_hawk_block_is_the_gated_conv_rglru_of_griffin():
    """The block's dense layers compute in model.dtype (float32): float32 tolerances."""
    cfg = ModelConfig(d_model=D, mixer="rglru", block="hawk", rnn_width=D, conv_width=3,
                      rglru=RGLRUConfig(gate_blocks=2))
    mixer = make_mixer(cfg)
    x = jax.random.normal(jax.random.key(1), (2, 9, D))
    params = randomized(init(mixer, x), 4)
    segments = np.array([[0] * 9, [0] * 5 + [1] * 4])
    y, _ = jax.jit(mixer.apply)({"params": params}, x, segment_ids=jnp.asarray(segments))
    p = jax.tree.map(lambda v: np.asarray(v, np.float64), params)
    gate, branch = np.split(np.asarray(x) @ p["proj_in"]["kernel"] + p["proj_in"]["bias"], 2,
                            axis=-1)
    conv = p["mixer"]["conv"]
    u, _ = reference_conv(conv["kernel"], conv["bias"], branch, np.zeros((2, 2, D)), segments)
    h, _ = reference_rglru(p["mixer"]["mixer"], u, np.zeros((2, D)), cfg.rglru.c, segments)
    expected = (gelu(gate) * h) @ p["proj_out"]["kernel"] + p["proj_out"]["bias"]
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_griffin_puts_attention_every_third_block():
    cfg = ModelConfig(d_model=D, n_layers=7, mixer="rglru", block="griffin")
    assert layer_mixers(cfg) == ("rglru", "rglru", "attention") * 2 + ("rglru",)
    hybrid = ModelConfig(d_model=D, n_layers=4, mixer="lru", attention_every=2)
    assert layer_mixers(hybrid) == ("lru", "attention", "lru", "attention")


# --- configuration ---


@pytest.mark.parametrize(("kwargs", "field", "allowed"), [
    ({"mixer": "mamba"}, "model.mixer", ", ".join(sorted(MIXERS))),
    ({"conv_width": 0}, "model.conv_width", "a positive integer"),
    ({"conv_width": -2, "conv": True}, "model.conv_width", "a positive integer"),
    ({"block": "transformer"}, "model.block", "griffin, hawk, prenorm"),
    ({"mixer": "rglru", "rglru": RGLRUConfig(gate_blocks=3)}, "model.rglru.gate_blocks",
     "a divisor of the RG-LRU width 8"),
    ({"mixer": "rglru", "block": "hawk", "rnn_width": 10, "rglru": RGLRUConfig(gate_blocks=4)},
     "model.rglru.gate_blocks", "width 10"),
    ({"block": "hawk", "attention_every": 2}, "model.attention_every", "griffin"),
    ({"block": "griffin", "mixer": "attention"}, "model.mixer", "a recurrent mixer"),
    ({"attention_every": 5}, "model.attention_every", "n_layers=4"),
    ({"mixer": "attention", "attention": AttentionConfig(heads=3)}, "model.attention.heads",
     "a divisor of model.d_model=8"),
    ({"mixer": "attention", "attention": AttentionConfig(heads=8)}, "model.attention.heads",
     "even head width"),
    ({"mixer": "gateloop", "scan_method": "associative",
      "gateloop": GateLoopConfig(recurrent=True)}, "model.scan_method", "auto, sequential"),
])
def test_bad_model_configs_name_the_field(kwargs, field, allowed):
    with pytest.raises(ConfigError, match=rf"^{field}=.*expected .*{allowed}"):
        ModelConfig(d_model=D, n_layers=4, **kwargs)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"window": 9, "max_len": 8}, "model.attention.window"),
    ({"kv_heads": 3}, "model.attention.kv_heads"),
    ({"rope_base": 1.0}, "model.attention.rope_base")])
def test_bad_attention_configs_name_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=rf"^{field}="):
        AttentionConfig(**kwargs)


@pytest.mark.parametrize(("attention", "seq_len", "field", "allowed"), [
    (AttentionConfig(window=24), 16, "model.attention.window", "<= data.seq_len"),
    (AttentionConfig(max_len=24), 32, "model.attention.max_len", ">= data.seq_len")])
def test_attention_longer_or_shorter_than_the_sequence_fails_at_start_up(attention, seq_len,
                                                                         field, allowed):
    model = ModelConfig(mixer="rglru", block="griffin", n_layers=3, attention=attention)
    with pytest.raises(ConfigError, match=rf"^{field}=.*{allowed} \({seq_len}\)"):
        Config(model=model, data=DataConfig(seq_len=seq_len))
    Config(model=model, data=DataConfig(seq_len=24))  # fits


def test_a_task_checks_attention_against_its_own_length():
    from glrnn.task_config import TaskConfig

    model = ModelConfig(mixer="attention", attention=AttentionConfig(max_len=64))
    with pytest.raises(ConfigError, match=r"^model.attention.max_len=64: .*task.seq_len \(128\)"):
        Config(model=model, task=TaskConfig(name="mqar", seq_len=128))
    Config(model=model, data=DataConfig(seq_len=256), task=TaskConfig(name="mqar", seq_len=64))
