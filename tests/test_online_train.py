"""The online rules inside the training loop: a classifier's batch reaches the rule as BPTT sees
it (one label per sequence scored at its last real position; the language model's documents:
tests/test_online.py), a classifier learns a long-range task online, and configurations a rule
cannot train are refused at start-up."""

from __future__ import annotations

from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_classify_train import classify_config, first_token_task

from glrnn.config import (
    ClassifierConfig,
    Config,
    ConfigError,
    GateLoopConfig,
    ModelConfig,
    TrainConfig,
)
from glrnn.data.tasks.base import Split, TaskData, TaskInfo
from glrnn.runs.start import start_checks
from glrnn.task_config import TaskConfig
from glrnn.tokenizer import ByteTokenizer
from glrnn.train import train
from glrnn.train.classify_task import ClassifyTask
from glrnn.train.metrics import read_metrics
from glrnn.train.online import task_gradient

BYTES = ByteTokenizer()  # a classifier run's recorded tokenizer (config.json)


def with_rule(cfg: Config, rule: str, **model) -> Config:
    return replace(cfg, model=replace(cfg.model, **model), train=replace(cfg.train, rule=rule))


def assert_mixer_grads_close(online, exact) -> None:
    """The (single) top layer's mixer: exact under online_full."""
    a, e = online["backbone"]["blocks_0"]["mixer"], exact["backbone"]["blocks_0"]["mixer"]
    for name in e:
        np.testing.assert_allclose(a[name], e[name], rtol=2e-4, atol=1e-6, err_msg=name)


def test_one_label_per_sequence_is_scored_at_the_last_real_position(tmp_path):
    cfg = classify_config(tmp_path)
    cfg = with_rule(cfg, "online_full", n_layers=1)
    task = ClassifyTask(cfg, first_token_task(), BYTES)
    params, _, state = task.init_variables(jax.random.key(0))
    batch = {k: jnp.asarray(v) for k, v in task.train_batch(1).items()}
    assert len(set(np.asarray(batch["lengths"]).tolist())) > 1  # padded rows
    (loss, _), online = jax.jit(task_gradient(cfg, task))(params, state, batch,
                                                          jax.random.key(0))
    (exact_loss, _), exact = jax.jit(jax.value_and_grad(task.loss, has_aux=True))(
        params, state, batch, jax.random.key(0))
    assert abs(float(loss - exact_loss)) < 1e-5
    assert_mixer_grads_close(online, exact)
    np.testing.assert_allclose(online["head"]["kernel"], exact["head"]["kernel"], rtol=2e-4,
                               atol=1e-6)


def test_classifier_learns_online_through_the_loop(tmp_path):
    """With dropout (each position's masks from the step's key folded with the position)."""
    cfg = with_rule(classify_config(tmp_path, steps=60), "online_full", dropout=0.1)
    result = train(cfg, first_token_task())
    rows = read_metrics(result.run_dir)
    losses = [r["loss"] for r in rows if "loss" in r]
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:2])
    assert result.figures["test_acc"] > 0.8  # chance: 1/3


@pytest.mark.parametrize(("change", "field"), [
    ({"norm": "batchnorm"}, "model.norm"),
    ({"bidirectional": True}, "model.bidirectional"),
    ({"block": "hawk"}, "model.block"),
    ({"conv": True}, "model.conv"),
    ({"attention_every": 1}, "model.attention_every"),
    ({"mixer": "gateloop", "gateloop": GateLoopConfig(recurrent=True),
      "scan_method": "sequential"}, "model.gateloop.recurrent")])
def test_what_online_rules_cannot_train_is_refused_at_start_up(change, field):
    with pytest.raises(ConfigError, match=rf"^{field}=.*train.rule='online_full'"):
        start_checks(Config(model=ModelConfig(**change), train=TrainConfig(rule="online_full"),
                            task=TaskConfig(name="copy")))


def test_two_tower_tasks_and_mean_pooling_are_refused_before_the_run_directory(tmp_path):
    """Decided once, where the task meets its arrays (check_task_fits), before any run
    directory is made; the online gradient itself asks nothing."""
    rng = np.random.default_rng(0)
    split = Split(rng.integers(1, 5, (8, 6)).astype(np.int32), np.full(8, 6, np.int32),
                  rng.integers(0, 2, 8).astype(np.int32), rng.integers(1, 5, (8, 6)).astype(
                      np.int32), np.full(8, 6, np.int32))
    two = TaskData(TaskInfo("pairs", 2, 6, vocab_size=5, two_tower=True),
                   {"train": split, "val": split})
    cfg = with_rule(classify_config(tmp_path), "online_full")
    with pytest.raises(ConfigError, match=r"two towers\); expected bptt"):
        train(replace(cfg, data=replace(cfg.data, batch_size=4)), two)
    mean = with_rule(classify_config(tmp_path), "online_full",
                     classifier=ClassifierConfig(pooling="mean"))
    with pytest.raises(ConfigError, match=r"^model.classifier.pooling='mean': expected 'last' "
                                          r"or 'none' with train.rule='online_full'"):
        train(mean, first_token_task())
    assert not (tmp_path / "runs" / cfg.train.name).exists()
    bptt = replace(mean, train=replace(mean.train, rule="bptt"))
    assert task_gradient(bptt, ClassifyTask(bptt, first_token_task(), BYTES)) is None
