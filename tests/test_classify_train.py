"""Classification through the training loop: the loss falls and accuracy rises on a task a tiny
model can learn, the report and confusion matrix are written from the best checkpoint, early
stopping ends a run, a killed run resumes exactly (BatchNorm statistics included), and configs
that cannot fit the task are refused."""

from __future__ import annotations

import json
from dataclasses import replace

import jax
import numpy as np
import pytest

from glrnn.config import (
    ClassifierConfig,
    Config,
    ConfigError,
    DataConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
)
from glrnn.data.tasks.base import Split, TaskData, TaskInfo
from glrnn.plot import main as plot_main
from glrnn.tokenizer import ByteTokenizer
from glrnn.train import train
from glrnn.train.batching import bucket_length, cut_to_length, epoch_batches
from glrnn.train.classify_task import ClassifyTask, Examples, target_positions
from glrnn.train.metrics import read_metrics

LENGTH = 12
BYTES = ByteTokenizer()  # a classifier run's recorded tokenizer (config.json)


def first_token_task(n_train: int = 96, seed: int = 0) -> TaskData:
    """Label = the first token (3 classes) of a sequence of random length, the rest noise:
    a causal model must carry it to the end (pooling "last") or average it in ("mean")."""
    rng = np.random.default_rng(seed)

    def split(n: int) -> Split:
        lengths = rng.integers(3, LENGTH + 1, n).astype(np.int32)
        inputs = rng.integers(4, 8, (n, LENGTH)).astype(np.int32)
        labels = rng.integers(0, 3, n).astype(np.int32)
        inputs[:, 0] = labels + 1
        inputs[np.arange(LENGTH)[None] >= lengths[:, None]] = 0
        return Split(inputs, lengths, labels)

    info = TaskInfo("first-token", n_classes=3, seq_len=LENGTH, vocab_size=8,
                    class_names=("a", "b", "c"))
    return TaskData(info, {"train": split(n_train), "val": split(48), "test": split(48)})


def classify_config(tmp_path, name="clf", norm="rmsnorm", **train_fields) -> Config:
    fields = {"steps": 60, "eval_every": 20, "log_every": 5, "checkpoint_every": 20,
              "out_dir": str(tmp_path / "runs"), "name": name, **train_fields}
    return Config(
        model=ModelConfig(d_model=16, d_state=16, n_layers=2, norm=norm,
                          classifier=ClassifierConfig(pooling="last")),
        data=DataConfig(batch_size=16),
        optim=OptimConfig(lr=1e-2, warmup_steps=5),
        train=TrainConfig(**fields))


def test_classifier_learns_and_reports(tmp_path):
    result = train(classify_config(tmp_path), first_token_task())
    rows = read_metrics(result.run_dir)
    losses = [r["loss"] for r in rows if "loss" in r]
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:2])
    val = [r["val_acc"] for r in rows if "val_acc" in r]
    assert max(val) > 0.9 and rows[-1]["epoch"] == pytest.approx(60 / 6)
    report = json.loads((result.run_dir / "report.json").read_text())
    assert report["split"] == "test" and report["test_acc"] == result.figures["test_acc"] > 0.9
    matrix = np.array(report["confusion_matrix"])
    assert matrix.sum() == 48 and np.trace(matrix) / 48 == pytest.approx(report["test_acc"])
    assert set(report["per_class_accuracy"]) == {"a", "b", "c"}
    assert (result.run_dir / "plots" / "confusion.png").stat().st_size > 1000
    out = result.run_dir / "plots" / "acc.png"
    assert plot_main([str(result.run_dir), "--x", "epoch", "--out", str(out)]) == 0
    assert out.stat().st_size > 1000


def test_early_stopping_ends_the_run(tmp_path):
    """A learning rate of ~0 never improves val_acc after the first evaluation: patience 2
    stops at the third evaluation, before the last step."""
    cfg = classify_config(tmp_path, eval_every=5, patience=2, steps=60)
    cfg = replace(cfg, optim=replace(cfg.optim, lr=1e-9))
    result = train(cfg, first_token_task())
    assert result.step == 15
    assert max(r["step"] for r in read_metrics(result.run_dir)) == 15


def test_killed_run_resumes_exactly_with_batchnorm(tmp_path):
    """Batch statistics are saved: a run killed after its step-40 checkpoint and started again
    logs the losses and reaches the figures of one that never stopped."""
    task = first_token_task()
    whole = train(classify_config(tmp_path, "whole", norm="batchnorm"), task)
    parts = classify_config(tmp_path, "parts", norm="batchnorm")
    _kill_after_checkpoint(parts, task, at=40)
    resumed = train(parts, task)
    np.testing.assert_allclose(resumed.figures["val_acc"], whole.figures["val_acc"])
    a = [r["loss"] for r in read_metrics(whole.run_dir) if "loss" in r]
    b = [r["loss"] for r in read_metrics(resumed.run_dir) if "loss" in r]
    np.testing.assert_allclose(a, b, rtol=1e-5)


def _kill_after_checkpoint(cfg, task, at):
    """Run ``cfg`` but raise right after step ``at`` is checkpointed (a killed run)."""
    import glrnn.train.loop as loop

    class Killed(Exception):
        pass

    save = loop.Checkpoints.save

    def save_then_die(self, step, *args, **kwargs):
        save(self, step, *args, **kwargs)
        if step == at:
            self.manager.wait_until_finished()
            raise Killed

    loop.Checkpoints.save = save_then_die
    try:
        with pytest.raises(Killed):
            train(cfg, task)
    finally:
        loop.Checkpoints.save = save


def test_epochs_set_the_number_of_steps(tmp_path):
    result = train(classify_config(tmp_path, epochs=2.5, steps=1), first_token_task())
    assert result.step == 15  # 96 examples / batch 16 = 6 steps per epoch


def test_epoch_batches_cover_the_training_set():
    batches = epoch_batches(50, 8, 0, 0)
    assert batches.shape == (6, 8) and len(set(batches.ravel().tolist())) == 48
    assert not np.array_equal(batches, epoch_batches(50, 8, 0, 1))
    lengths = np.random.default_rng(1).integers(1, 1000, 400)
    bucketed = epoch_batches(400, 8, 0, 0, lengths)
    assert sorted(bucketed.ravel().tolist()) == list(range(400))  # the same examples, regrouped
    spread = lambda b: np.mean([np.ptp(lengths[row]) for row in b])  # noqa: E731
    assert spread(bucketed) < 0.2 * spread(epoch_batches(400, 8, 0, 0))


def test_batches_are_cut_to_a_power_of_two_of_their_longest():
    batch = {"inputs": np.ones((2, 100), np.int32), "lengths": np.array([20, 33], np.int32),
             "labels": np.zeros((2, 100), np.int32)}
    cut = cut_to_length(batch)
    assert cut["inputs"].shape == (2, 64) and cut["labels"].shape == (2, 64)
    assert bucket_length(3, 100) == 16 and bucket_length(90, 100) == 100


def test_length_buckets_change_the_work_not_the_figures(tmp_path):
    """Evaluation in length buckets gives the figures of evaluation without them (what is cut
    off is padding), and training in buckets learns."""
    data = first_token_task()
    cfg = classify_config(tmp_path, "buckets", steps=30)
    cfg = replace(cfg, data=replace(cfg.data, bucket_by_length=True))
    result = train(cfg, data)
    assert result.figures["val_acc"] > 0.6
    plain, bucketed = ClassifyTask(replace(cfg, data=DataConfig(batch_size=16)), data, BYTES), \
        ClassifyTask(cfg, data, BYTES)
    params, _, state = plain.init_variables(jax.random.key(3))
    a, b = (task.figures(params, state, task.sets["val"], "val")[0] for task in (plain, bucketed))
    assert a.keys() == b.keys() and all(abs(a[k] - b[k]) < 1e-5 for k in a)


def recall_task(n: int = 64) -> TaskData:
    """Per-position labels at 2 of 12 positions: the token seen 5 steps earlier."""
    rng = np.random.default_rng(0)

    def split(n: int) -> Split:
        inputs = rng.integers(1, 4, (n, LENGTH)).astype(np.int32)
        labels = np.full((n, LENGTH), -1, np.int32)
        for row in range(n):
            for t in rng.choice(np.arange(5, LENGTH), 2, replace=False):
                labels[row, t] = inputs[row, t - 5] - 1
        return Split(inputs, np.full(n, LENGTH, np.int32), labels)

    return TaskData(TaskInfo("recall", n_classes=3, seq_len=LENGTH, vocab_size=4),
                    {"train": split(n), "val": split(32)})


def test_sparse_targets_give_the_figures_of_dense_ones(tmp_path):
    """The head runs only at the labelled positions (2 of 12 here): the same figures as
    running it everywhere, with and without length buckets."""
    data = recall_task()
    labels = data.splits["val"].labels
    positions = target_positions(labels)
    assert positions.shape == (32, 2)
    assert (np.take_along_axis(labels, positions, axis=1) >= 0).all()
    cfg = replace(classify_config(tmp_path), model=replace(
        classify_config(tmp_path).model, classifier=ClassifierConfig(pooling="none")))
    task = ClassifyTask(cfg, data, BYTES)
    assert task.sets["val"].positions is not None
    params, _, state = task.init_variables(jax.random.key(0))
    sparse = task.figures(params, state, task.sets["val"], "val")[0]
    dense = task.figures(params, state, Examples(data.splits["val"]), "val")[0]
    assert sparse.keys() == dense.keys() == {"val_loss", "val_acc", "val_seq_acc"}
    assert all(abs(sparse[k] - dense[k]) < 1e-5 for k in sparse)
    assert target_positions(np.zeros((2, 8), np.int32)) is None  # every position labelled


@pytest.mark.parametrize("change,match", [
    ({"classifier": ClassifierConfig(pooling="none")}, "model.classifier.pooling='none'"),
    ({"norm": "batchnorm", "classifier": ClassifierConfig(pooling="mean")}, None),
])
def test_configs_that_do_not_fit_the_task_are_refused(tmp_path, change, match):
    cfg = classify_config(tmp_path)
    cfg = replace(cfg, model=replace(cfg.model, **change),
                  optim=replace(cfg.optim, warmup_steps=0),
                  train=replace(cfg.train, steps=2, eval_every=1))
    if match is None:  # a fitting config trains
        assert train(cfg, first_token_task()).step == 2
        return
    with pytest.raises(ConfigError, match=match):
        train(cfg, first_token_task())


def test_bad_task_fits_are_named(tmp_path):
    cfg = classify_config(tmp_path)
    with pytest.raises(ConfigError, match=r"data.batch_size=16: expected <= the 8 training"):
        train(cfg, first_token_task(n_train=8))
    task = first_token_task()
    no_val = TaskData(task.info, {"train": task.splits["train"]})
    with pytest.raises(ConfigError, match="no val split"):
        train(cfg, no_val)
    with pytest.raises(ConfigError, match=r"train.epochs=1.0: expected 0 for a language model"):
        train(replace(cfg, train=replace(cfg.train, epochs=1.0)))
    # the warmup against the length the epochs give (96 examples / batch 16: 6 steps an epoch)
    with pytest.raises(ConfigError, match=r"^optim.warmup_steps=5: expected < the 3 steps of "
                                          r"train.epochs=0.5 \(6 per epoch\)$"):
        train(replace(cfg, train=replace(cfg.train, epochs=0.5)), task)
    assert not (tmp_path / "runs" / cfg.train.name).exists()
