"""GateLoop's true-recurrence mode starts from a linear GateLoop checkpoint: the loaded model
computes what the linear one does, and fine-tuning through the training loop then moves it."""

from __future__ import annotations

from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tiny_lm import tiny_config

from glrnn.config import GateLoopConfig
from glrnn.models import LanguageModel
from glrnn.params import init_params, overlay_params
from glrnn.runs.checkpoint import Checkpoints
from glrnn.runs.load import load_run
from glrnn.runs.run import run_dir_of, write_config
from glrnn.tokenizer import ByteTokenizer
from glrnn.train import train


def save_run(cfg, params: dict) -> None:
    """A run directory holding ``params`` as its checkpoint of step 1 (what a run leaves; the
    optimizer state is a placeholder: loading a run's parameters does not read it)."""
    write_config(run_dir_of(cfg), cfg, ByteTokenizer())
    checkpoints = Checkpoints(run_dir_of(cfg))
    checkpoints.save(1, params, {"count": jnp.zeros((), jnp.int32)}, {"step": 1})
    checkpoints.close()


def test_linear_checkpoint_starts_a_true_recurrence_model_that_then_learns(tmp_path):
    linear = tiny_config(tmp_path, "linear", steps=4, eval_every=4, checkpoint_every=4)
    linear = replace(linear, model=replace(linear.model, mixer="gateloop"))
    tokens = jax.random.randint(jax.random.key(1), (2, 16), 0, 259)
    save_run(linear, init_params(LanguageModel(linear.model), jax.random.key(0), tokens)[0])
    linear_dir = run_dir_of(linear)
    _, _, linear_model, linear_params, _ = load_run(linear_dir)

    recurrent_cfg = replace(linear.model, gateloop=GateLoopConfig(recurrent=True))
    model = LanguageModel(recurrent_cfg)
    fresh, roles = init_params(model, jax.random.key(5), tokens)
    assert roles["backbone"]["blocks_0"]["mixer"]["w_rec"] == "recurrent"
    start = overlay_params(fresh, linear_params)
    assert all(not np.any(start["backbone"][f"blocks_{i}"]["mixer"]["w_rec"]) for i in range(2))

    def logits(module: LanguageModel, params: dict) -> jax.Array:
        return jax.jit(module.apply)({"params": params}, tokens)[0]

    before = logits(linear_model, linear_params)
    np.testing.assert_allclose(logits(model, start), before, rtol=1e-5, atol=1e-5)

    # fine-tune through the normal training path, starting from the linear run
    tuned_cfg = replace(linear, model=recurrent_cfg,
                        train=replace(linear.train, name="recurrent",
                                      init_from=str(linear_dir)))
    _, _, _, tuned, _ = load_run(train(tuned_cfg).run_dir)
    assert np.any(tuned["backbone"]["blocks_0"]["mixer"]["w_rec"])
    assert float(jnp.abs(logits(model, tuned) - before).max()) > 1e-3


def test_a_checkpoint_that_does_not_fit_is_refused():
    params = {"mixer": {"w_in": jnp.zeros((4, 6)), "w_rec": jnp.zeros((2, 6))}}
    with pytest.raises(ValueError, match="mixer/w_in: the checkpoint's shape"):
        overlay_params(params, {"mixer": {"w_in": jnp.zeros((4, 3))}})
    with pytest.raises(ValueError, match="mixer/lam of the checkpoint has no place"):
        overlay_params(params, {"mixer": {"lam": jnp.zeros(3)}})
