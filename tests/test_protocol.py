"""The mixer protocol, for every module that follows it (mixers, blocks, language models):

(a) ``__call__`` on a sequence equals ``step`` folded over it (outputs and final carry);
(b) ``__call__`` on two halves, the carry passed along, equals ``__call__`` on the whole;
(c) ``init_carry`` is the zero state with the structure, shapes and dtypes ``__call__`` returns.

Plus the configuration checks the modules rely on, and dropout's on/off switch.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glrnn.blocks import Block
from glrnn.config import (
    AttentionConfig,
    ConfigError,
    GateLoopConfig,
    GateLoopQKVConfig,
    ModelConfig,
    RGLRUConfig,
)
from glrnn.mixers import make_mixer
from glrnn.models import LanguageModel
from glrnn.params import abstract_params

BATCH, LENGTH, HALF, VOCAB, WIDTH = 2, 12, 6, 11, 8
TOL = {"rtol": 1e-5, "atol": 1e-5}


def cfg(**kwargs) -> ModelConfig:
    base = {"vocab_size": VOCAB, "d_model": WIDTH, "d_state": 6, "n_layers": 2, "chunk_size": 5,
            "scan_method": "chunked"}
    return ModelConfig(**{**base, **kwargs})


MIXERS = {"lru": {"mixer": "lru"}, "gateloop-tied": {"mixer": "gateloop"},
          "gateloop-untied": {"mixer": "gateloop",
                              "gateloop": GateLoopConfig(tied_gates=False, output_gate=False)}}
# attention: global (cache of 16 slots > LENGTH) and a sliding window of 4 < HALF with
# multi-query heads; the cache is sized by the window
GLOBAL = AttentionConfig(heads=2, max_len=16)
WINDOW = AttentionConfig(heads=2, kv_heads=1, window=4, max_len=16)
# parameters that start at zero are given random values in these cases, so the tests reach them
RANDOMIZED = {"gateloop-recurrent"}

# name -> module; chunk_size 5 < LENGTH and divides neither LENGTH nor HALF
CASES: dict[str, nn.Module] = {
    **{f"{name}-{method}": make_mixer(cfg(scan_method=method, **kwargs))
       for name, kwargs in MIXERS.items() for method in ("sequential", "chunked")},
    # each norm x channel mixer once, the time mixers alternating
    **{f"block-{norm}-{channel}-{mixer}": Block(cfg(norm=norm, channel_mixer=channel, mixer=mixer))
       for norm, channel, mixer in [("layernorm", "mlp", "lru"), ("layernorm", "glu", "gateloop"),
                                    ("layernorm", "none", "lru"), ("rmsnorm", "mlp", "gateloop"),
                                    ("rmsnorm", "glu", "lru"), ("rmsnorm", "none", "gateloop")]},
    "lm-lru": LanguageModel(cfg(mixer="lru")),
    "lm-gateloop-untied-head": LanguageModel(cfg(mixer="gateloop", tie_embeddings=False)),
    # position encodings (glrnn/positions.py): the carry counts the positions
    "lm-learned-positions": LanguageModel(cfg(mixer="lru", positions="learned",
                                              max_positions=LENGTH)),
    "lm-sinusoidal-positions": LanguageModel(cfg(mixer="gateloop", positions="sinusoidal")),
    "gateloop-recurrent": make_mixer(cfg(mixer="gateloop", scan_method="sequential",
                                         gateloop=GateLoopConfig(recurrent=True))),
    "rglru": make_mixer(cfg(mixer="rglru", rglru=RGLRUConfig(gate_blocks=2))),
    "attention": make_mixer(cfg(mixer="attention", attention=GLOBAL)),
    "attention-window": make_mixer(cfg(mixer="attention", attention=WINDOW)),
    # Griffin's gated block: linear, short convolution, RG-LRU; times a GeLU gate; linear
    "block-hawk-rglru": Block(cfg(mixer="rglru", block="hawk", rnn_width=12, conv_width=3)),
    # a hawk block, then an attention block
    "lm-griffin": LanguageModel(cfg(mixer="rglru", block="griffin", attention_every=2,
                                    attention=WINDOW)),
    # recurrentgemma's options (glrnn/convert/): a document starts wherever the carry is zero
    "lm-recurrentgemma": LanguageModel(cfg(
        mixer="rglru", block="griffin", attention_every=2, norm="rmsnorm_plus_one",
        embed_scale=2.8, logit_softcap=3.0, rglru=RGLRUConfig(gate_blocks=2, unscaled_start=True),
        attention=AttentionConfig(heads=2, kv_heads=1, window=4, max_len=16, rope_fraction=0.5,
                                  out_bias=True))),
}
# the matrix-state GateLoop (chunks must be powers of two: 4 divides neither HALF nor LENGTH - 1)
QKV = {"mixer": "gateloop_qkv", "chunk_size": 4, "gateloop_qkv": GateLoopQKVConfig(heads=2)}
CASES |= {
    "gateloop_qkv-chunked": make_mixer(cfg(**QKV)),
    "gateloop_qkv-real-sequential": make_mixer(cfg(**{**QKV, "scan_method": "sequential",
                                                      "gateloop_qkv": GateLoopQKVConfig(
                                                          heads=2, phase=False)})),
    "lm-gateloop_qkv-conv": LanguageModel(cfg(**QKV, conv=True)),
}
# the RNNs of the rescaled-Glorot and online-learning papers (dense_rnn and gru have no scan
# method; the linear dense RNN and the other activations: tests/test_rnn_mixers.py)
CASES |= {"dense_rnn": make_mixer(cfg(mixer="dense_rnn")), "gru": make_mixer(cfg(mixer="gru")),
          "diag_rnn-chunked": make_mixer(cfg(mixer="diag_rnn"))}


@functools.cache
def built(name: str) -> tuple[nn.Module, dict, jax.Array]:
    """The module, its parameters, and an input sequence (tokens for a language model)."""
    module = CASES[name]
    key_init, key_x = jax.random.split(jax.random.PRNGKey(0))
    if isinstance(module, LanguageModel):
        x = jax.random.randint(key_x, (BATCH, LENGTH), 0, VOCAB, jnp.int32)
    else:
        x = jax.random.normal(key_x, (BATCH, LENGTH, WIDTH))
    params = jax.jit(module.init)(key_init, x[:, :4])
    if name in RANDOMIZED:
        rng = np.random.default_rng(5)
        params = jax.tree.map(lambda v: v + 0.3 * rng.standard_normal(v.shape, np.float32),
                              params)
    return module, params, x


@functools.cache
def parallel_runs(name: str) -> dict:
    """Every parallel-mode call that the tests compare, compiled as one program."""
    module, params, x = built(name)

    @jax.jit
    def run(params: dict, x: jax.Array) -> dict:
        apply = functools.partial(module.apply, params)
        first, carry = apply(x[:, :HALF])
        zero = module.apply(params, BATCH, method="init_carry")
        return {"whole": apply(x), "first": first, "second": apply(x[:, HALF:], carry),
                "second_alone": apply(x[:, HALF:])[0],
                "first_from_zero": apply(x[:, :HALF], zero)[0]}

    return run(params, x)


def assert_trees_close(actual, expected) -> None:
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(a, e, **TOL)


@pytest.mark.parametrize("name", CASES)
def test_call_equals_step_folded_over_the_sequence(name):
    module, params, x = built(name)

    @jax.jit
    def fold(params: dict, xs: jax.Array):
        def step(carry, x_t):
            y_t, carry = module.apply(params, x_t, carry, method="step")
            return carry, y_t

        return jax.lax.scan(step, module.apply(params, BATCH, method="init_carry"), xs)

    carry, ys = fold(params, jnp.swapaxes(x, 0, 1))
    y, expected_carry = parallel_runs(name)["whole"]
    np.testing.assert_allclose(jnp.swapaxes(ys, 0, 1), y, **TOL)
    assert_trees_close(carry, expected_carry)


@pytest.mark.parametrize("name", CASES)
def test_two_halves_with_the_carry_equal_the_whole(name):
    runs = parallel_runs(name)
    y2, carry = runs["second"]
    y, expected_carry = runs["whole"]
    np.testing.assert_allclose(jnp.concatenate([runs["first"], y2], axis=1), y, **TOL)
    assert_trees_close(carry, expected_carry)
    assert float(jnp.abs(y2 - runs["second_alone"]).max()) > 1e-3  # the carry matters


@pytest.mark.parametrize("name", CASES)
def test_init_carry_is_the_zero_state_of_the_returned_structure(name):
    module, params, _ = built(name)
    zero = module.apply(params, BATCH, method="init_carry")
    runs = parallel_runs(name)
    carry = runs["whole"][1]
    assert jax.tree.structure(zero) == jax.tree.structure(carry)
    assert ([(c.shape, c.dtype) for c in jax.tree.leaves(zero)]
            == [(c.shape, c.dtype) for c in jax.tree.leaves(carry)])
    # int32: the attention cache's position counters
    assert all(c.dtype in (jnp.float32, jnp.complex64, jnp.int32) for c in jax.tree.leaves(zero))
    assert all(not jnp.any(c) for c in jax.tree.leaves(zero))
    np.testing.assert_allclose(runs["first_from_zero"], runs["first"], **TOL)


@pytest.mark.parametrize("tie", [True, False])
def test_language_model_interface(tie):
    """Shapes and dtypes only, by abstract evaluation (nothing is compiled)."""
    model = LanguageModel(cfg(mixer="gateloop", tie_embeddings=tie, n_layers=1))
    tree, roles = abstract_params(model, jnp.zeros((1, 8), jnp.int32))
    params = {"params": tree}
    assert ("head" in tree) == (not tie)
    assert tree["embed"]["embedding"].shape == (VOCAB, WIDTH)
    assert roles["embed"]["embedding"] == "embedding"
    logits, carry = jax.eval_shape(model.apply, params, jnp.zeros((BATCH, 5), jnp.int32))
    assert logits.shape == (BATCH, 5, VOCAB) and logits.dtype == jnp.float32
    logits, _ = jax.eval_shape(functools.partial(model.apply, method="step"), params,
                               jnp.zeros((BATCH,), jnp.int32), carry)
    assert logits.shape == (BATCH, VOCAB) and logits.dtype == jnp.float32


def test_dropout_acts_only_when_not_deterministic():
    x = jax.random.normal(jax.random.PRNGKey(1), (BATCH, LENGTH, WIDTH))
    block = Block(cfg(dropout=0.5, mixer="gateloop"))
    params = jax.jit(block.init)(jax.random.PRNGKey(0), x)
    apply = jax.jit(block.apply, static_argnames=("method", "deterministic"))
    carry = block.apply(params, BATCH, method="init_carry")
    y, _ = apply(params, x)
    y_off, _ = jax.jit(Block(cfg(dropout=0.0, mixer="gateloop")).apply)(params, x)
    np.testing.assert_array_equal(y, y_off)

    def noisy(seed: int, inputs: jax.Array = x, method: str = "__call__") -> jax.Array:
        return apply(params, inputs, carry, deterministic=False, method=method,
                     rngs={"dropout": jax.random.PRNGKey(seed)})[0]

    assert not np.allclose(noisy(0), y) and not np.allclose(noisy(0), noisy(1))
    np.testing.assert_array_equal(noisy(0), noisy(0))
    y_step, _ = apply(params, x[:, 0], carry, method="step")
    assert not np.allclose(noisy(0, x[:, 0], "step"), y_step)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"mixer": "transformer"}, "model.mixer"), ({"norm": "groupnorm"}, "model.norm"),
     ({"channel_mixer": "moe"}, "model.channel_mixer"), ({"d_model": 0}, "model.d_model"),
     ({"d_model": -4}, "model.d_model")])
def test_bad_model_config_names_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=rf"^{field}="):
        ModelConfig(**kwargs)
