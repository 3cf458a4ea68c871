"""The training loop end to end on a tiny model and corpus: learning, metrics, checkpoints,
resume, divergence, the final state's evaluation, wall-clock budgets."""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import replace

import numpy as np
import orbax.checkpoint as ocp
import pytest
from tiny_lm import tiny_config

from glrnn.config import ConfigError
from glrnn.data import TextData, make_data
from glrnn.runs.checkpoint import Checkpoints, checkpoint_dir, first_nonfinite
from glrnn.runs.run import read_config
from glrnn.tokenizer import ByteTokenizer
from glrnn.train import TrainingDiverged, TrainingInterrupted, train
from glrnn.train.budget import Replans, replan_points
from glrnn.train.metrics import read_metrics

ROW_FIELDS = {"step", "loss", "lr", "grad_norm", "tokens_per_s", "elapsed", "mfu"}
VAL_FIELDS = {"val_loss", "val_bpb", "val_bits_per_token", "val_ppl"}


class Rigged:
    """A TextData whose training batch ``at`` is poisoned (an out-of-vocabulary id, which the
    embedding turns into NaN) or interrupts the run (Ctrl-C: raises ``KeyboardInterrupt``)."""

    def __init__(self, data: TextData, at: int, action: str) -> None:
        self.data, self.at, self.action = data, at, action

    def __getattr__(self, name: str):  # the rest is the data's: tokenizer, val, state ...
        return getattr(self.data, name)

    def train_batch(self, step: int, rows: slice = slice(None)) -> np.ndarray:
        batch = self.data.train_batch(step, rows)
        if step == self.at and self.action == "interrupt":
            raise KeyboardInterrupt
        if step == self.at:
            batch[0, 3] = 10_000
        return batch


def assert_complete_checkpoints(run_dir, steps):
    names = sorted(p.name for p in checkpoint_dir(run_dir).iterdir())
    assert names == sorted(str(s) for s in steps), names


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train")
    cfg = tiny_config(tmp, steps=30, keep_checkpoints=2)
    return cfg, train(cfg)


def test_loss_falls(run):
    cfg, result = run
    losses = [row["loss"] for row in read_metrics(result.run_dir)]
    assert len(losses) == cfg.train.steps
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5]), losses
    assert result.val_bpb < 5.0


def test_metrics_rows_have_the_fields(run):
    cfg, result = run
    rows = read_metrics(result.run_dir)
    assert [row["step"] for row in rows] == list(range(1, cfg.train.steps + 1))
    for row in rows:
        assert row.keys() >= ROW_FIELDS
        assert (row.keys() >= VAL_FIELDS) == (row["step"] % cfg.train.eval_every == 0)
        assert 0 < row["mfu"] < 1
    assert rows[-1]["val_bpb"] == pytest.approx(result.val_bpb)
    assert rows[cfg.optim.warmup_steps - 1]["lr"] == pytest.approx(cfg.optim.lr)


def test_evaluate_command_matches_the_loop(run, capsys):
    """``python -m glrnn.evaluate`` on the run's own validation split gives the loop's figures:
    the whole split by default (the final state's), the estimate with --max-windows."""
    from glrnn.evaluate import main as evaluate_main

    cfg, result = run
    full = {k.removeprefix("full_val_"): v for k, v in result.figures.items()
            if k.startswith("full_val_")}
    assert evaluate_main(["--run", str(result.run_dir), "--batch-size", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tokens"] == full["tokens"] and report["windows"] == full["windows"]
    assert report["loss"] == pytest.approx(full["loss"], rel=1e-5)
    assert report["bpb"] == pytest.approx(full["bpb"], rel=1e-5)
    windows = str(cfg.data.val_windows)
    assert evaluate_main(["--run", str(result.run_dir), "--max-windows", windows]) == 0
    out = capsys.readouterr().out
    assert f"{result.figures['val_tokens']:,} tokens in {windows} windows" in out
    assert f"loss {result.val_loss:.4f} nats/token" in out
    assert f"{result.val_bpb:.4f} bits/byte" in out
    corpus = result.run_dir.parent.parent / "corpus"
    assert evaluate_main(["--run", str(result.run_dir), "--source", str(corpus)]) == 0
    assert evaluate_main(["--run", str(result.run_dir), "--source", str(corpus / "nope")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_run_directory(run):
    cfg, result = run
    assert_complete_checkpoints(result.run_dir, [20, 30])  # keep_checkpoints=2
    assert read_config(result.run_dir)[0] == cfg
    assert (result.run_dir.parent / "latest").resolve() == result.run_dir.resolve()
    assert json.loads((result.run_dir / "config.json").read_text())["tokenizer"]["name"] == "byte"


def test_finished_run_is_not_retrained(run, capsys):
    cfg, result = run
    again = train(cfg)
    assert again.val_bpb == pytest.approx(result.val_bpb)
    assert len(read_metrics(result.run_dir)) == cfg.train.steps


def test_resume_gives_the_same_losses(tmp_path):
    straight = tiny_config(tmp_path, "straight", steps=8, checkpoint_every=4, eval_every=8)
    straight = replace(straight, model=replace(straight.model, dropout=0.1),
                       optim=replace(straight.optim, grad_accum=2))  # both must resume exactly
    train(straight)
    resumed = replace(straight, train=replace(straight.train, name="resumed"))
    with pytest.raises(TrainingInterrupted, match="the last good checkpoint is step 4"):
        train(resumed, Rigged(TextData(resumed.data, ByteTokenizer()), at=6, action="interrupt"))
    assert_complete_checkpoints(tmp_path / "runs" / "resumed", [4])
    train(resumed)
    a = read_metrics(tmp_path / "runs" / "straight")
    b = read_metrics(tmp_path / "runs" / "resumed")  # rows 5 of the interrupted part dropped
    assert [r["step"] for r in b] == [r["step"] for r in a] == list(range(1, 9))
    np.testing.assert_allclose([r["loss"] for r in b], [r["loss"] for r in a], rtol=0, atol=1e-6)
    assert b[-1]["val_loss"] == pytest.approx(a[-1]["val_loss"], abs=1e-6)


def test_nan_loss_stops_naming_the_step(tmp_path):
    cfg = tiny_config(tmp_path, steps=8, checkpoint_every=1, keep_checkpoints=2)
    with pytest.raises(TrainingDiverged, match=r"step 5: loss=nan.*last good checkpoint is step 4"):
        train(cfg, Rigged(TextData(cfg.data, ByteTokenizer()), at=5, action="poison"))
    assert_complete_checkpoints(tmp_path / "runs" / "tiny", [3, 4])
    checkpoints = Checkpoints(tmp_path / "runs" / "tiny", writable=False)
    params = checkpoints.manager.restore(4, args=ocp.args.Composite(
        params=ocp.args.StandardRestore()))["params"]
    checkpoints.close()
    assert first_nonfinite(params) is None


def test_nan_loss_is_skipped_when_asked(tmp_path):
    cfg = tiny_config(tmp_path, steps=8, on_nan="skip", max_skips=1)
    result = train(cfg, Rigged(TextData(cfg.data, ByteTokenizer()), at=5, action="poison"))
    rows = read_metrics(result.run_dir)
    assert [r["skipped"] for r in rows] == [0] * 4 + [1] * 4
    assert "loss" not in rows[4] and all(np.isfinite(r["loss"]) for r in rows if r is not rows[4])
    assert np.isfinite(result.val_loss)


def test_keep_last_and_best_checkpoints(tmp_path):
    checkpoints = Checkpoints(tmp_path, keep=2, keep_best=True)
    params, opt_state = {"w": np.ones(3, np.float32)}, {"m": np.zeros(3, np.float32)}
    for step, val_loss in [(1, 3.0), (2, 1.0), (3, None), (4, 2.0), (5, 4.0), (6, None)]:
        checkpoints.save(step, params, opt_state, {"step": step}, value=val_loss)
        checkpoints.manager.wait_until_finished()
    checkpoints.close()
    assert_complete_checkpoints(tmp_path, [2, 5, 6])  # the best (val 1.0) and the last two


def test_interrupted_save_leaves_the_previous_checkpoint(tmp_path):
    """A save killed midway leaves orbax's temporary directory behind, never a step directory:
    the next run resumes from the previous step and clears the leftover."""
    checkpoints = Checkpoints(tmp_path, keep=3)
    params = {"w": np.arange(4, dtype=np.float32)}
    checkpoints.save(1, params, {"m": np.zeros(1, np.float32)}, {"step": 1})
    checkpoints.close()
    root = checkpoint_dir(tmp_path)
    partial = root / "2.orbax-checkpoint-tmp-1234567"  # what a killed save of step 2 leaves
    shutil.copytree(root / "1", partial)
    shutil.rmtree(partial / "opt_state")
    reopened = Checkpoints(tmp_path, keep=3)
    assert reopened.latest_step() == 1
    restored, _, meta, _ = reopened.restore(1, {"w": np.zeros(4, np.float32)},
                                         {"m": np.ones(1, np.float32)})
    reopened.close()  # waits for the clean-up orbax started when it opened
    assert not partial.exists()
    np.testing.assert_array_equal(restored["w"], params["w"])
    assert meta == {"step": 1}


def test_streaming_run_resumes_exactly(tmp_path):
    """The data position (epoch, documents, leftover tokens) travels in the checkpoint."""
    straight = tiny_config(tmp_path, "s", steps=8, checkpoint_every=4, eval_every=8)
    straight = replace(straight, data=replace(straight.data, streaming=True, shuffle_buffer=4))
    train(straight)
    resumed = replace(straight, train=replace(straight.train, name="r"))
    with pytest.raises(TrainingInterrupted):
        train(resumed, Rigged(make_data(resumed.data, ByteTokenizer()), at=6, action="interrupt"))
    train(resumed)
    a, b = (read_metrics(tmp_path / "runs" / name) for name in ("s", "r"))
    np.testing.assert_allclose([r["loss"] for r in b], [r["loss"] for r in a], rtol=0, atol=1e-6)



def test_a_budget_fixes_the_steps_and_a_resumed_run_keeps_them(tmp_path, capsys):
    """A budget too short is one line and leaves no run; one that leaves 6 s to train (beyond
    what the short one took to start, compile and measure) fixes the steps: the schedule ends
    there, config.json records them, a resumed run keeps them, and measuring trained nothing
    that stays."""
    short = tiny_config(tmp_path, "budget", minutes=0.001)
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"^train.minutes=0.001: too short on this machine "
                       r"\(not one step fits: .* expected at least [0-9.]+ minutes$"):
        train(short)
    budget_s = time.perf_counter() - start + 6  # the second start compiles from the cache
    assert not (tmp_path / "runs" / "budget").exists()
    assert not (tmp_path / "runs" / "latest").exists()

    def budgeted(seconds: float):
        cfg = tiny_config(tmp_path, "budget", minutes=seconds / 60, eval_every=25,
                          checkpoint_every=25, log_every=1)
        return replace(cfg, model=replace(cfg.model, dropout=0.1))  # dropout keys must not shift

    for _ in range(3):  # a shared machine may slow down: then the least it names, and 6 s more
        cfg = budgeted(budget_s)
        start = time.perf_counter()
        try:
            result = train(cfg)
            break
        except ConfigError as e:
            budget_s = float(re.search(r"at least ([0-9.]+) minutes", str(e))[1]) * 60 + 6
    else:
        pytest.fail(f"three budgets were too short, the last {budget_s - 6:.1f} s")
    wall = time.perf_counter() - start
    measured = r"budget [0-9.]+ min: [0-9]+ steps at "
    assert re.search(measured, capsys.readouterr().out)
    text = (result.run_dir / "config.json").read_text()
    record = json.loads(text)
    budget, steps = record["budget"], result.step
    # the first plan is the config's; the run planned again at its points, the last one's end
    # is where it stopped
    plan = Replans(budget, cfg.optim.warmup_steps, cfg.train.eval_every,
                   cfg.train.checkpoint_every)
    assert record["config"]["train"]["steps"] == budget["steps"]
    points = replan_points(budget["steps"], cfg.optim.warmup_steps)
    assert [r["step"] for r in budget["replans"]] == [p for p in points if p < steps]
    assert plan.steps_for(steps) == steps
    assert record["config"]["train"]["minutes"] == cfg.train.minutes
    assert steps > cfg.optim.warmup_steps and budget["calibration_steps"] >= 1
    assert budget["items_per_s"] == pytest.approx(16 * 4 / budget["seconds_per_step"])
    assert budget["planned_s"] <= budget_s
    assert wall < 2 * budget_s  # measured on a machine that may be shared
    rows = read_metrics(result.run_dir)
    assert rows[-1]["step"] == steps and "full_val_loss" in rows[-1]
    assert rows[-1]["lr"] == pytest.approx(cfg.optim.lr * cfg.optim.min_lr_ratio, rel=1e-5)

    # resumed from the checkpoint before the last: the same steps, nothing measured again
    shutil.rmtree(checkpoint_dir(result.run_dir) / str(steps))
    again = train(cfg)
    out = capsys.readouterr().out
    assert "resuming" in out and not re.search(measured, out)
    assert again.step == steps and (result.run_dir / "config.json").read_text() == text
    resumed = read_metrics(result.run_dir)
    assert [r["step"] for r in resumed] == [r["step"] for r in rows]
    np.testing.assert_allclose([r.get("loss") for r in resumed[-3:]],
                               [r.get("loss") for r in rows[-3:]], rtol=0, atol=1e-6)
    assert again.figures["full_val_loss"] == pytest.approx(rows[-1]["full_val_loss"], abs=1e-6)

    # the measuring trained nothing that stays: a run of the first plan's steps counted begins
    # the same, up to the first re-plan (the schedule changes after it)
    until = min(10, points[0]) if points else 10
    plain = replace(cfg, train=replace(cfg.train, minutes=0.0, steps=budget["steps"],
                                       log_every=1, name="plain"))
    with pytest.raises(TrainingInterrupted):
        train(plain, Rigged(TextData(plain.data, ByteTokenizer()), at=until + 1,
                            action="interrupt"))
    first = {r["step"]: r for r in read_metrics(tmp_path / "runs" / "plain")}
    assert list(first) == list(range(1, until + 1))
    logged = [r for r in rows if r["step"] <= until]
    assert [r["step"] for r in logged] == list(first)
    for a, b in zip(first.values(), logged, strict=True):
        assert (a["loss"], a["lr"]) == pytest.approx((b["loss"], b["lr"]), abs=1e-6)
