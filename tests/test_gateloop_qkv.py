"""GateLoop's query/key/value mixer: its equations against a direct transcription, its
initialisation, mixed precision, a language model that trains, decodes and saves its matrix
carry, and the configurations it refuses. (Its protocol properties: tests/test_protocol.py.)"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tiny_lm import tiny_config

from glrnn.config import (
    FEATURE_MAPS,
    Config,
    ConfigError,
    GateLoopQKVConfig,
    ModelConfig,
    TrainConfig,
)
from glrnn.generate import Generator
from glrnn.mixers import make_mixer
from glrnn.mixers.gateloop_qkv import FEATURE_MAPS as FEATURE_FUNCTIONS
from glrnn.models import LanguageModel
from glrnn.params import init_params
from glrnn.runs.start import start_checks
from glrnn.state import load_state, save_state
from glrnn.train import train
from glrnn.train.metrics import read_metrics

WIDTH, HEADS = 16, 2


def qkv_config(**kwargs) -> ModelConfig:
    fields = {"vocab_size": 259, "d_model": WIDTH, "d_state": WIDTH, "n_layers": 2,
              "mixer": "gateloop_qkv", "chunk_size": 4,
              "gateloop_qkv": GateLoopQKVConfig(heads=HEADS), **kwargs}
    return ModelConfig(**fields)


def direct(params: dict, x: np.ndarray, heads: int, elu: bool) -> np.ndarray:
    """The module docstring's equations, one position and one head at a time, float64."""
    p = {name: np.asarray(value, np.float64) for name, value in params.items()}
    u = x @ np.concatenate([p["w_qkvg"], p["w_a"]], axis=1)
    width_k = width_v = WIDTH // heads
    q, k, v, gate, mag, phase = np.split(u, np.cumsum([heads * width_k, heads * width_k,
                                                       heads * width_v, heads * width_v,
                                                       heads * width_k]), axis=-1)
    if elu:
        q, k = (np.where(z > 0, z + 1, np.exp(z)) for z in (q, k))
    mag_bias, phase_bias = np.split(p["b_a"], 2)
    a = 1 / (1 + np.exp(-(mag + mag_bias))) * np.exp(1j * (phase + phase_bias))
    batch, length, _ = x.shape
    y = np.zeros((batch, length, heads * width_v))
    for b in range(batch):
        for h in range(heads):
            ks, vs = slice(h * width_k, (h + 1) * width_k), slice(h * width_v, (h + 1) * width_v)
            state = np.zeros((width_k, width_v), complex)
            for t in range(length):
                state = a[b, t, ks, None] * state + np.outer(k[b, t, ks], v[b, t, vs])
                out = np.real(q[b, t, ks] / np.sqrt(width_k) @ state)
                out = (out - out.mean()) / np.sqrt(out.var() + 1e-5)
                y[b, t, vs] = out
    y = y * p["norm_scale"] + p["norm_offset"]
    return (y * gate / (1 + np.exp(-gate))) @ p["w_out"]


@pytest.mark.parametrize("feature_map", FEATURE_MAPS)
def test_mixer_computes_the_equations(feature_map):
    g = GateLoopQKVConfig(heads=HEADS, feature_map=feature_map)
    mixer = make_mixer(qkv_config(scan_method="chunked", gateloop_qkv=g))
    x = jax.random.normal(jax.random.key(0), (2, 7, WIDTH))
    params, _ = init_params(mixer, jax.random.key(1), x)
    params = jax.tree.map(lambda p: p + 0.2 * jax.random.normal(jax.random.key(2), p.shape),
                          params)  # away from the initialisation's symmetries
    y, _ = jax.jit(mixer.apply)({"params": params}, x)
    expected = direct(params, np.asarray(x, np.float64), HEADS, elu=feature_map == "elu")
    np.testing.assert_allclose(y, expected, rtol=2e-4, atol=2e-4)


def test_initial_transitions_span_the_ring_in_every_head():
    g = GateLoopQKVConfig(heads=HEADS, a_min=0.8, a_max=0.99, max_phase=0.5)
    mixer = make_mixer(qkv_config(gateloop_qkv=g))
    params, roles = init_params(mixer, jax.random.key(0), jnp.zeros((1, 4, WIDTH)))
    magnitude, phase = np.split(np.asarray(params["b_a"]).reshape(2 * HEADS, -1), 2)
    a = 1 / (1 + np.exp(-magnitude))  # |a| at x = 0, [heads, K]
    np.testing.assert_allclose(a[:, [0, -1]], [[0.8, 0.99]] * HEADS, rtol=1e-5)
    log_tau = -np.log1p(-a)  # time-scales log-uniformly spread over each head's channels
    np.testing.assert_allclose(np.diff(log_tau, 2, axis=1), 0, atol=1e-4)
    np.testing.assert_allclose(phase, np.tile(np.linspace(0, 0.5, WIDTH // HEADS), (HEADS, 1)),
                               atol=1e-6)
    assert roles == {"w_qkvg": "weight", "w_a": "recurrent", "b_a": "recurrent",
                     "norm_scale": "norm", "norm_offset": "norm", "w_out": "weight"}
    real = make_mixer(qkv_config(gateloop_qkv=dataclasses.replace(g, phase=False)))
    params, _ = init_params(real, jax.random.key(0), jnp.zeros((1, 4, WIDTH)))
    assert params["b_a"].shape == (WIDTH,) and params["w_a"].shape == (WIDTH, WIDTH)
    assert real.apply({"params": params}, 3, method="init_carry").dtype == jnp.float32


def test_bfloat16_compute_keeps_a_complex64_state():
    x = jax.random.normal(jax.random.key(0), (2, 9, WIDTH))
    full = make_mixer(qkv_config())
    half = make_mixer(qkv_config(dtype="bfloat16"))
    params, _ = init_params(full, jax.random.key(1), x)
    y, carry = jax.jit(full.apply)({"params": params}, x)
    y_half, carry_half = jax.jit(half.apply)({"params": params}, x.astype(jnp.bfloat16))
    assert y_half.dtype == jnp.bfloat16 and carry_half.dtype == jnp.complex64
    np.testing.assert_allclose(y_half.astype(jnp.float32), y, rtol=0.1, atol=0.1)
    np.testing.assert_allclose(carry_half, carry, rtol=0.05, atol=0.05)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tiny_config(tmp_path_factory.mktemp("gateloop_qkv"), steps=25)
    cfg = dataclasses.replace(base, model=qkv_config(n_layers=1, conv=True))
    return cfg, train(cfg)


def test_language_model_learns(trained):
    _, result = trained
    losses = [row["loss"] for row in read_metrics(result.run_dir)]
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), losses


def test_decoding_uneven_prompts_matches_the_parallel_forward(trained, tmp_path):
    """Greedy decoding of a batch of uneven prompts, with chunked prefill, gives each prompt's
    own continuation, whose logits are the parallel forward's; the matrix carry saves and
    loads as it is."""
    cfg, _ = trained
    model = LanguageModel(cfg.model)
    params, _ = init_params(model, jax.random.key(3), jnp.zeros((1, 4), jnp.int32))
    prompts = [[256, 104, 105, 32, 116, 104, 101], [256, 97]]
    batch = Generator(model, params, chunk=4, prefill_chunk=3).generate(prompts, 6, pad_id=258)
    # one causal forward over both grown sequences, right-padded to one length
    grown = [prompt + batch.tokens[row].tolist() for row, prompt in enumerate(prompts)]
    full = np.array([g + [258] * (13 - len(g)) for g in grown], np.int32)
    logits, _ = jax.jit(model.apply)({"params": params}, jnp.asarray(full))
    for row, prompt in enumerate(prompts):
        np.testing.assert_allclose(batch.logits[row], logits[row, len(prompt) - 1:len(prompt) + 5],
                                   rtol=2e-5, atol=2e-5)
    generator = Generator(model, params)
    logits, carry = generator.prefill(np.array([prompts[0]]), np.ones((1, 7), np.int32))
    path = save_state(tmp_path / "s.npz", carry, logits, prompts[0], identity="x")
    loaded, _, _ = load_state(path, "x", carry)
    for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(carry), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert any(leaf.dtype == jnp.complex64 and leaf.ndim == 4 for leaf in jax.tree.leaves(carry))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"gateloop_qkv": GateLoopQKVConfig(heads=3)},
     r"^model.gateloop_qkv.heads=3: expected a divisor of the mixer's width 16"),
    ({"chunk_size": 48}, r"^model.chunk_size=48: expected a power of two"),
    ({"d_model": 0}, r"^model.d_model=0: expected a positive integer"),
])
def test_bad_model_configs_name_the_field(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        qkv_config(**kwargs)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"heads": 0}, r"^model.gateloop_qkv.heads=0: expected a positive integer"),
    ({"key_width": -1}, r"^model.gateloop_qkv.key_width=-1: expected an integer >= 0"),
    ({"a_min": 0.99, "a_max": 0.9}, r"^model.gateloop_qkv.a_max=0.9: expected a_min < a_max"),
])
def test_bad_mixer_configs_name_the_field(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        GateLoopQKVConfig(**kwargs)


def test_feature_maps_are_the_configs_names():
    assert set(FEATURE_FUNCTIONS) == set(FEATURE_MAPS)
    with pytest.raises(ConfigError, match=r"^model.gateloop_qkv.feature_map='exp': expected one"):
        GateLoopQKVConfig(feature_map="exp")


def test_explicit_widths_need_no_divisor():
    g = GateLoopQKVConfig(heads=3, key_width=4, value_width=8)
    mixer = make_mixer(qkv_config(gateloop_qkv=g))
    params, _ = init_params(mixer, jax.random.key(0), jnp.zeros((1, 4, WIDTH)))
    assert params["w_qkvg"].shape == (WIDTH, 3 * (2 * 4 + 2 * 8))
    assert mixer.apply({"params": params}, 2, method="init_carry").shape == (2, 3, 4, 8)


def test_online_rules_refuse_the_matrix_state():
    with pytest.raises(ConfigError, match=r"^train.rule='online_full': expected 'bptt' with "
                                          r"model.mixer='gateloop_qkv'"):
        start_checks(Config(model=qkv_config(), train=TrainConfig(rule="online_full")))
