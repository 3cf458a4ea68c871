"""The Classifier: padding never reaches a prediction (pooling, BatchNorm, the reversed pass),
bidirectional blocks see the future, the two-tower head, and the protocol with pooling "none"."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.core import meta

from glrnn.blocks import reverse_index, take_positions
from glrnn.config import ClassifierConfig, ConfigError, ModelConfig
from glrnn.data.tasks.base import TaskInfo
from glrnn.models import Classifier, pool

TOL = {"rtol": 2e-5, "atol": 2e-5}
TOKENS = TaskInfo("toy", n_classes=3, seq_len=10, vocab_size=7)
PIXELS = TaskInfo("toy-real", n_classes=4, seq_len=10, input_dim=2)


def model_cfg(**kwargs) -> ModelConfig:
    base = {"d_model": 8, "d_state": 6, "n_layers": 2, "scan_method": "sequential"}
    return ModelConfig(**{**base, **kwargs})


def build(cfg: ModelConfig, info: TaskInfo, label_slots: int = 0, batch: int = 3):
    model = Classifier(cfg, info, label_slots)
    shape = (batch, info.seq_len) if info.tokens else (batch, info.seq_len, info.input_dim)
    key = jax.random.key(0)
    inputs = (jax.random.randint(key, shape, 1, info.vocab_size) if info.tokens
              else jax.random.normal(key, shape))
    extra = (inputs, jnp.full((batch,), info.seq_len)) if info.two_tower else ()
    variables = model.init(jax.random.key(1), inputs, jnp.full((batch,), info.seq_len), *extra)
    return model, meta.unbox(variables), inputs


def test_pool_against_numpy():
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)
    lengths = np.array([2, 5])
    np.testing.assert_allclose(pool(x, lengths, "mean"),
                               [x[0, :2].mean(0), x[1].mean(0)], **TOL)
    np.testing.assert_allclose(pool(x, lengths, "last"), [x[0, 1], x[1, 4]], **TOL)
    assert pool(x, lengths, "none") is x


def test_reverse_index_reverses_within_each_length():
    index = np.asarray(reverse_index(jnp.array([3, 5]), 5))
    np.testing.assert_array_equal(index, [[2, 1, 0, 3, 4], [4, 3, 2, 1, 0]])
    x = jnp.arange(10.0).reshape(2, 5, 1)
    np.testing.assert_array_equal(take_positions(take_positions(x, index), index), x)


@pytest.mark.parametrize("pooling", ["mean", "last"])
@pytest.mark.parametrize("options", [{}, {"bidirectional": True}, {"norm": "batchnorm"},
                                     {"bidirectional": True, "norm": "batchnorm",
                                      "mixer": "gateloop"}])
def test_padding_never_reaches_the_prediction(pooling, options):
    """A sequence padded to L gives the logits of the same sequence alone (cut to its length),
    whatever the pads hold, for causal and bidirectional backbones and BatchNorm (eval)."""
    cfg = model_cfg(classifier=ClassifierConfig(pooling=pooling), **options)
    model, variables, inputs = build(cfg, TOKENS)
    lengths = jnp.array([4, 10, 7])
    logits, _ = model.apply(variables, inputs, lengths)
    garbage = jnp.where(jnp.arange(10)[None] < lengths[:, None], inputs, 5)
    np.testing.assert_allclose(model.apply(variables, garbage, lengths)[0], logits, **TOL)
    for row, n in enumerate(lengths.tolist()):
        alone, _ = model.apply(variables, inputs[row:row + 1, :n], jnp.array([n]))
        np.testing.assert_allclose(alone[0], logits[row], **TOL)


def test_batchnorm_statistics_skip_the_padding():
    """In training, BatchNorm's batch statistics (hence outputs and running averages) are those
    of the real positions: pads with other values change nothing."""
    cfg = model_cfg(norm="batchnorm", classifier=ClassifierConfig(pooling="mean"))
    model, variables, inputs = build(cfg, PIXELS)
    lengths = jnp.array([3, 10, 6])
    pads = jnp.arange(10)[None, :, None] >= lengths[:, None, None]

    def train_apply(x):
        return model.apply(variables, x, lengths, deterministic=False, mutable=["batch_stats"])

    (a, _), stats_a = train_apply(inputs)
    (b, _), stats_b = train_apply(jnp.where(pads, 100.0, inputs))
    np.testing.assert_allclose(a, b, **TOL)
    for x, y in zip(jax.tree.leaves(stats_a), jax.tree.leaves(stats_b), strict=True):
        np.testing.assert_allclose(x, y, **TOL)
    moved = jax.tree.leaves(jax.tree.map(lambda new, old: jnp.abs(new - old).max(),
                                         stats_a["batch_stats"], variables["batch_stats"]))
    assert max(moved) > 1e-3  # the running averages did move


def test_bidirectional_sees_the_future_and_causal_does_not():
    for bidirectional in (False, True):
        cfg = model_cfg(bidirectional=bidirectional, classifier=ClassifierConfig(pooling="none"))
        model, variables, inputs = build(cfg, TOKENS)
        changed = inputs.at[:, -1].set((inputs[:, -1] % 6) + 1)
        first = lambda x: model.apply(variables, x)[0][:, 0]  # noqa: B023, E731
        moved = float(jnp.abs(first(changed) - first(inputs)).max())
        assert (moved > 1e-4) == bidirectional


def test_two_tower_head_is_the_mlp_of_u_v_product_difference():
    info = TaskInfo("pairs", n_classes=2, seq_len=10, vocab_size=7, two_tower=True)
    cfg = model_cfg(classifier=ClassifierConfig(pooling="mean", head_hidden=5))
    model, variables, inputs = build(cfg, info)
    other = jnp.flip(inputs, axis=0)
    lengths, lengths2 = jnp.array([10, 4, 6]), jnp.array([2, 10, 9])
    logits, _ = model.apply(variables, inputs, lengths, other, lengths2)

    def features(x, n):
        return model.apply(variables, x, n,
                           method=lambda m, x, n: m._features(x, n, None, True))[0]

    u, v = features(inputs, lengths), features(other, lengths2)
    p = variables["params"]
    hidden = jax.nn.gelu(jnp.concatenate([u, v, u * v, u - v], -1) @ p["head_hidden"]["kernel"]
                         + p["head_hidden"]["bias"])
    expected = hidden @ p["head"]["kernel"] + p["head"]["bias"]
    np.testing.assert_allclose(logits, expected, **TOL)
    assert logits.shape == (3, 2)


@pytest.mark.parametrize("encoder", ["embed", "onehot"])
def test_per_step_classifier_is_a_recurrent_cell(encoder):
    """pooling="none": __call__ ≡ step folded over the sequence; K label slots shape the logits."""
    cfg = model_cfg(classifier=ClassifierConfig(pooling="none", encoder=encoder))
    model, variables, inputs = build(cfg, TOKENS, label_slots=2)
    logits, carry = model.apply(variables, inputs)
    assert logits.shape == (3, 10, 2, 3)
    state = model.apply(variables, 3, method="init_carry")
    for t in range(inputs.shape[1]):
        out, state = model.apply(variables, inputs[:, t], state, method="step")
        np.testing.assert_allclose(out, logits[:, t], **TOL)
    for a, b in zip(jax.tree.leaves(carry), jax.tree.leaves(state), strict=True):
        np.testing.assert_allclose(a, b, **TOL)


def test_step_refused_where_it_cannot_apply():
    model, variables, inputs = build(model_cfg(), TOKENS)  # pooling "mean"
    with pytest.raises(ValueError, match="pooling='mean'"):
        model.apply(variables, inputs[:, 0], model.apply(variables, 3, method="init_carry"),
                    method="step")
    cfg = model_cfg(bidirectional=True, classifier=ClassifierConfig(pooling="none"))
    model, variables, inputs = build(cfg, TOKENS)
    with pytest.raises(ValueError, match="bidirectional"):
        model.apply(variables, inputs[:, 0], model.apply(variables, 3, method="init_carry"),
                    method="step")


@pytest.mark.parametrize("field,value", [("pooling", "max"), ("encoder", "conv"),
                                         ("head_hidden", -1)])
def test_bad_classifier_config_names_the_field(field, value):
    with pytest.raises(ConfigError, match=f"model.classifier.{field}"):
        ClassifierConfig(**{field: value})
