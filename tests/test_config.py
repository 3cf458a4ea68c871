"""Configuration: recipes, CLI overrides, one-line errors naming the field, the lr schedule."""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from tiny_lm import load_script, tiny_config

from glrnn.config import Config, ConfigError, from_dict
from glrnn.runs.start import start_checks
from glrnn.train.optim import lr_schedule
from glrnn.train.recipes import DEFAULT_RECIPE, load_recipe, recipe_names

train_lm = load_script("train_lm")


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = train_lm.main(list(argv))
    return code, capsys.readouterr().err


def test_every_recipe_loads_and_validates():
    """Loading runs every check, the tokenizer's vocabulary against the model's included."""
    names = recipe_names()
    assert DEFAULT_RECIPE in names
    assert {"stdlib-sp", "shakespeare-char", "wikitext103", "tinystories",
            "speech-digits"} <= set(names)
    for name in names:
        cfg = load_recipe(name)
        assert isinstance(cfg, Config), name
        start_checks(cfg)


def test_unknown_recipe_lists_the_known_ones(capsys):
    code, err = run_cli(capsys, "no-such-recipe")
    assert code == 2
    known = ", ".join(recipe_names())
    assert err == f"error: recipe 'no-such-recipe': expected one of {known}\n"


@pytest.mark.parametrize(("argv", "field"), [
    (["--model.lru.r-min", "0.9999"], "model.lru.r_min"),
    (["--model.lru.max-phase", "0"], "model.lru.max_phase"),
    (["--model.d-model", "0"], "model.d_model"),
    (["--model.mixer", "transformer"], "model.mixer"),
    (["--model.norm", "batchnorm"], "model.norm"),
    (["--model.vocab-size", "100"], "model.vocab_size"),
    (["--optim.lr", "-1"], "optim.lr"),
    (["--data.seq-len", "0"], "data.seq_len"),
    (["--data.val-fraction", "1.5"], "data.val_fraction"),
    (["--train.steps", "0"], "train.steps"),
    (["--train.steps", "50", "--optim.warmup-steps", "50"], "optim.warmup_steps"),
    (["--train.minutes", "-1"], "train.minutes"),
    (["--train.minutes", "inf"], "train.minutes"),
    (["--train.minutes", "2", "--train.epochs", "1"], "train.minutes"),
])
def test_bad_values_fail_with_one_line_naming_the_field(capsys, argv, field):
    code, err = run_cli(capsys, DEFAULT_RECIPE, *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"error: {field}="), err


def test_overrides_apply_on_top_of_the_recipe():
    cfg = train_lm.parse(["--model.lru.r-min", "0.5", "--model.n-layers", "2", "--optim.lr",
                          "1e-3"])
    recipe = load_recipe(DEFAULT_RECIPE)
    assert (cfg.model.lru.r_min, cfg.model.n_layers, cfg.optim.lr) == (0.5, 2, 1e-3)
    assert cfg.model.d_model == recipe.model.d_model and cfg.data == recipe.data
    assert cfg.train.name.startswith(f"{DEFAULT_RECIPE}-")
    assert train_lm.parse([DEFAULT_RECIPE, "--train.name", "x"]).train.name == "x"


def test_config_round_trips_through_a_dict(tmp_path):
    cfg = tiny_config(tmp_path)
    assert from_dict(Config, dataclasses.asdict(cfg)) == cfg
    with pytest.raises(ConfigError, match="no field bogus"):
        from_dict(Config, {"bogus": 1})


def test_lr_schedule_peaks_at_warmup_end_and_ends_at_min():
    optim = load_recipe(DEFAULT_RECIPE).optim
    steps = 1000
    lr = lr_schedule(optim, steps)  # of the update count: step n uses lr(n - 1)
    at = lambda n: float(lr(n - 1))  # noqa: E731
    approx = partial(pytest.approx, rel=1e-5)  # float32
    assert at(1) == approx(optim.lr / optim.warmup_steps)
    assert at(optim.warmup_steps // 2) == approx(optim.lr / 2)
    assert at(optim.warmup_steps) == approx(optim.lr)
    assert max(at(n) for n in range(1, steps + 1)) == approx(optim.lr)
    assert at(steps) == approx(optim.lr * optim.min_lr_ratio)
    assert at(steps - 1) > at(steps)


def test_a_run_has_one_length(capsys):
    """--train.steps over a recipe's budget turns the budget off; both on one command line are
    refused in one line."""
    recipe = load_recipe("shakespeare-char")
    assert recipe.train.minutes > 0
    counted = train_lm.parse(["shakespeare-char", "--train.steps", "500"])
    assert (counted.train.steps, counted.train.minutes) == (500, 0.0)
    assert train_lm.parse(["shakespeare-char"]).train.minutes == recipe.train.minutes
    code, err = run_cli(capsys, "shakespeare-char", "--train.minutes", "3", "--train.steps=10")
    assert code == 2
    assert err == ("error: --train.steps 10 with --train.minutes 3: expected one of them (a "
                   "run's length is a step count or a budget)\n")
    # a budget leaves the warmup check to the steps it measures
    assert train_lm.parse(["--train.minutes", "1", "--optim.warmup-steps", "5000"])


@pytest.mark.parametrize(("warmup", "steps", "ratio"), [(100, 1000, 0.1), (0, 50, 0.0),
                                                        (3, 4, 1.0), (10, 37, 0.5)])
def test_lr_schedule_is_optax_warmup_cosine_with_a_traced_length(warmup, steps, ratio):
    """The schedule written out (its length may be traced: a budget's steps are measured after
    the step is compiled) is optax's warmup_cosine_decay_schedule."""
    optim = dataclasses.replace(load_recipe(DEFAULT_RECIPE).optim, warmup_steps=warmup,
                                min_lr_ratio=ratio)
    reference = optax.warmup_cosine_decay_schedule(0.0, optim.lr, warmup, steps,
                                                   optim.lr * ratio)
    traced = jax.jit(lambda count, total: lr_schedule(optim, total)(count))
    counts = jnp.arange(steps + 2)
    np.testing.assert_allclose(traced(counts, jnp.int32(steps)), reference(counts + 1),
                               rtol=2e-6, atol=1e-9)
