"""Every failure is one clear line and loses nothing: non-finite state is never kept or saved,
a run directory has one owner, damaged checkpoints and files are named (and older steps used),
a user's mistake never ends in a traceback, and a run killed by SIGKILL during a checkpoint
save resumes to the same losses."""

from __future__ import annotations

import io
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from tiny_lm import ROOT, load_script, tiny_config, write_corpus

from glrnn.audio import WavWriter, read_wav
from glrnn.config import Config, ConfigError, DataConfig, LRUConfig, ModelConfig, OptimConfig
from glrnn.data.stream import StreamingTextData
from glrnn.data.text import load_documents
from glrnn.evaluate import main as evaluate_main
from glrnn.files import write_atomic
from glrnn.generate import Generator
from glrnn.online.stream import cli as stream_cli
from glrnn.plot import main as plot_main
from glrnn.runs.checkpoint import (
    Checkpoints,
    checkpoint_dir,
    ctrl_c_deferred,
    quiet_closed_loop_callbacks,
)
from glrnn.runs.load import load_run
from glrnn.runs.lock import RunLock
from glrnn.runs.run import CONFIG, read_budget, read_config, write_config
from glrnn.sampling import Sampling
from glrnn.task_config import TaskConfig
from glrnn.tokenizer import ByteTokenizer, from_name
from glrnn.tokenizer_train import main as tokenizer_train_main
from glrnn.train import TrainingDiverged, TrainingInterrupted, train
from glrnn.train.loop import State, _finish, make_train_step
from glrnn.train.metrics import METRICS, read_metrics

generate_cli = load_script("generate")

RUN = {"steps": 8, "checkpoint_every": 2, "keep_checkpoints": 3, "eval_every": 4}


CHILD = """
import os, signal, sys
from pathlib import Path
from tiny_lm import tiny_config
from glrnn.train import train
from glrnn.runs.checkpoint import Checkpoints

save = Checkpoints.save

def save_and_die(self, step, *args, **kwargs):
    if step == 6:
        print("saving 6", flush=True)
        sys.stdin.readline()  # the parent meanwhile starts a second run of this directory
        save(self, step, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)  # while orbax writes step 6
    save(self, step, *args, **kwargs)

Checkpoints.save = save_and_die
train(tiny_config(Path(sys.argv[1]), "killed", **{RUN}))
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder with the tiny corpus, and a subprocess training the run ``killed`` there (for
    test_kill_9_during_a_save_resumes_exactly) while this process trains the reference."""
    tmp = tmp_path_factory.mktemp("failures")
    write_corpus(tmp / "corpus")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
           "JAX_PLATFORMS": "cpu"}
    child = subprocess.Popen([sys.executable, "-c", CHILD.replace("{RUN}", repr(RUN)), str(tmp)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, env=env)
    yield tmp, child
    child.kill()
    child.wait()


@pytest.fixture(scope="module")
def ref(workdir):
    """A finished tiny run, checkpoints at steps 4, 6 and 8: (its folder's parent, run dir)."""
    return workdir[0], train(tiny_config(workdir[0], "ref", **RUN)).run_dir


# orbax reads a step's arrays concurrently: when one read fails, the failures of the others are
# never retrieved, which asyncio reports when it collects them (nothing the user sees)
UNRETRIEVED = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def copy_run(run_dir: Path, name: str) -> tuple[Config, Path]:
    """A copy of ``run_dir`` named ``name`` beside it (its config renamed to match)."""
    target = run_dir.parent / name
    shutil.copytree(run_dir, target)
    cfg, tokenizer = read_config(target)
    cfg = replace(cfg, train=replace(cfg.train, name=name))
    (target / CONFIG).unlink()
    write_config(target, cfg, tokenizer)
    return cfg, target


def truncate_arrays(run_dir: Path, step: int) -> None:
    for path in (checkpoint_dir(run_dir) / str(step) / "params").rglob("*"):
        if path.is_file() and path.parent.name == "d":
            path.write_bytes(path.read_bytes()[:10])


def losses(run_dir: Path) -> list[float]:
    return [row["loss"] for row in read_metrics(run_dir)]


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


# 1. non-finite state is never kept or saved; float options float32 cannot hold are refused

def test_float_options_that_float32_cannot_hold_are_refused():
    for cfg, name in [(lambda: Config(optim=OptimConfig(lr=1e39)), "optim.lr=1e+39"),
                      (lambda: Config(optim=OptimConfig(clip_norm=1e39)), "optim.clip_norm"),
                      (lambda: Config(optim=OptimConfig(eps=1e-50)), "optim.eps=1e-50"),
                      (lambda: Config(model=ModelConfig(mlp_ratio=math.inf)), "model.mlp_ratio"),
                      (lambda: Config(model=ModelConfig(lru=LRUConfig(max_phase=1e-50))),
                       "model.lru.max_phase")]:
        with pytest.raises(ConfigError, match=re.escape(name) + ".*: expected a finite value "
                                               "float32 can hold"):
            cfg()
    for temperature in (1e39, 1e-50, math.nan):
        with pytest.raises(ConfigError, match="--temperature"):
            Sampling(temperature=temperature)


@pytest.mark.parametrize("skip", [False, True])
def test_an_update_that_overflows_is_reported_and_never_kept(skip):
    """A finite loss and gradient whose update overflows float32: the step says so, and with
    ``skip`` returns the state it was given."""
    params = {"w": jnp.ones(2)}
    step = make_train_step(lambda p, state, batch, key: (jnp.sum(p["w"] * batch), state),
                           optax.sgd(3e38), skip_nonfinite=skip)
    new, _, _, loss, grad_norm, finite = step(params, optax.sgd(3e38).init(params), {},
                                              jnp.full(2, 2.0), None)
    assert np.isfinite(float(loss)) and np.isfinite(float(grad_norm)) and not finite
    assert np.isfinite(new["w"]).all() == skip


def test_nonfinite_state_is_never_written(tmp_path):
    checkpoints = Checkpoints(tmp_path)
    ok, bad = {"w": np.ones(2, np.float32)}, {"w": np.array([1.0, np.nan], np.float32)}
    with pytest.raises(ValueError, match=r"step 1: params\['w'\] holds NaN or inf"):
        checkpoints.save(1, bad, ok, {"step": 1})
    with pytest.raises(ValueError, match=r"step 2: opt_state\['w'\] holds NaN or inf"):
        checkpoints.save(2, ok, {"w": np.array([np.inf], np.float32)}, {"step": 2})
    assert checkpoints.steps() == []
    checkpoints.close()
    assert not list(checkpoint_dir(tmp_path).iterdir())


def test_a_file_where_the_checkpoints_go(tmp_path):
    (tmp_path / "checkpoints").write_text("")
    with pytest.raises(ConfigError, match="checkpoints is a file, expected a folder"):
        Checkpoints(tmp_path)


# 2. one owner per run directory

def test_a_run_directory_has_one_owner(tmp_path):
    run_dir = tmp_path / "runs" / "x"
    lock = RunLock(run_dir)
    with pytest.raises(ConfigError, match=f"in use by process {os.getpid()}"):
        RunLock(run_dir)
    RunLock(run_dir, hold=False).abandon()  # another process of the same run: no lock, kept
    assert run_dir.is_dir()
    lock.release()
    RunLock(run_dir).abandon()  # free again; it did not make the folder, so it stays
    assert run_dir.is_dir()
    RunLock(tmp_path / "new").abandon()
    assert not (tmp_path / "new").exists()


# 7. a real SIGKILL, and what it can leave behind

@UNRETRIEVED
def test_kill_9_during_a_save_resumes_exactly(workdir, ref, capsys):
    """A training process SIGKILLed while it saves step 6: a second run of its directory is
    refused naming the owner's PID (and writes nothing) while it lives. Once it is dead the
    lock is gone; with more of a crash's marks added (its newest checkpoint unreadable, the
    last metrics line torn) the run says so, sets that step aside, resumes from the one before
    and reaches the losses of the reference run that never stopped."""
    tmp, child = workdir
    while (line := child.stdout.readline()) != "saving 6\n":
        assert line, "the training subprocess ended before step 6"
    run_dir = tmp / "runs" / "killed"
    metrics = run_dir / METRICS
    before = metrics.read_bytes()
    cfg = tiny_config(tmp, "killed", **RUN)
    with pytest.raises(ConfigError, match=f"in use by process {child.pid} "):
        train(cfg)
    assert metrics.read_bytes() == before
    child.stdin.write("\n")
    child.stdin.flush()
    assert child.wait(timeout=120) == -9
    left = Checkpoints(run_dir, writable=False)
    newest = max(left.steps())
    left.close()
    assert newest in (4, 6)  # 6 only if orbax finished writing it before the kill
    (checkpoint_dir(run_dir) / str(newest) / "meta" / "metadata").write_text("{garbage")
    metrics.write_text(metrics.read_text()[:-20])
    capsys.readouterr()
    train(cfg)
    err = capsys.readouterr().err
    assert f"checkpoint step {newest} cannot be read (JSONDecodeError: Expecting" in err
    assert "its last line (6) is cut short" in err
    assert [p.name for p in (run_dir / "unreadable-checkpoints").iterdir()] == [str(newest)]
    assert [r["step"] for r in read_metrics(run_dir)] == list(range(1, 9))
    np.testing.assert_allclose(losses(run_dir), losses(ref[1]), rtol=0, atol=1e-6)


# 3. damaged checkpoints, config.json, metrics

def test_the_other_reads_of_an_unreadable_step_print_nothing(monkeypatch):
    """orbax's concurrent reads of a step that failed finish on a closed event loop: their
    errors are dropped once a step is found unreadable; any other unraisable error still
    reaches the previous hook."""
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    quiet_closed_loop_callbacks()
    quiet_closed_loop_callbacks()  # once is enough: the hook is not stacked
    orbax_read = SimpleNamespace(cr_code=SimpleNamespace(co_filename="/orbax/checkpoint/x.py"))
    for error, source in ((RuntimeError("Event loop is closed"), None), (Exception("read"),
                          orbax_read), (RuntimeError("other"), None), (ValueError("x"), None)):
        sys.unraisablehook(SimpleNamespace(exc_value=error, object=source))
    assert [str(u.exc_value) for u in seen] == ["other", "x"]


@UNRETRIEVED
def test_generation_falls_back_to_the_newest_readable_step(ref, capsys):
    _, run_dir = copy_run(ref[1], "damaged")
    truncate_arrays(run_dir, 8)
    shutil.rmtree(checkpoint_dir(run_dir) / "6" / "params")
    assert load_run(run_dir)[4] == 4
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("warning: checkpoint step 8 cannot be read (")
    assert "using step 4" in err[0]
    assert err[1].startswith("warning: checkpoint step 6 cannot be read (") and len(err) == 2
    truncate_arrays(run_dir, 4)
    assert generate_cli.main(["--run", str(run_dir)]) == 2
    assert "no checkpoint can be read (step 8: " in one_line(capsys.readouterr().err)


@UNRETRIEVED
def test_an_unreadable_best_checkpoint_leaves_the_final_state_to_score(tmp_path, capsys):
    class Task:
        def finish(self, run_dir, params, model_state):
            self.scored = params
            return {}

    checkpoints = Checkpoints(tmp_path, keep=2)
    for step in (1, 2):
        w = {"w": np.full(3, step, np.float32)}
        checkpoints.save(step, w, w, {"step": step})
    checkpoints.close()
    truncate_arrays(tmp_path, 1)
    final = {"w": np.full(3, 2, np.float32)}
    state = State(final, {}, {}, 2, None, 0.0, None, None, best={"step": 1, "value": 0.0})
    task, checkpoints = Task(), Checkpoints(tmp_path)
    _finish(task, state, checkpoints, tmp_path)
    checkpoints.close()
    assert task.scored is final
    assert "the best checkpoint, step 1, cannot be read (ValueError: " in capsys.readouterr().err


def test_damaged_config_json_is_one_line(ref, capsys):
    _, run_dir = copy_run(ref[1], "garbled")
    config = json.loads((run_dir / CONFIG).read_text())["config"]
    for text in ("{garbage", "[1, 2]", '{"config": {"model": 5}, "tokenizer": {}}',
                 json.dumps({"config": config, "tokenizer": {"kind": "?"}})):
        (run_dir / CONFIG).write_text(text)
        assert generate_cli.main(["--run", str(run_dir)]) == 2
        assert f"{run_dir / CONFIG} is damaged (" in one_line(capsys.readouterr().err)
    (run_dir / CONFIG).write_text("{garbage")
    with pytest.raises(ConfigError, match="is damaged"):  # a resume of it
        write_config(run_dir, tiny_config(ref[0], "garbled", **RUN), ByteTokenizer())


TIMES = {"minutes": 1.0, "spent_s": 3.5, "eval_s": 0.5, "checkpoint_s": 0.25,
         "final_evaluations": 2.0}


@pytest.mark.parametrize("budget", [
    {"steps": "40", **TIMES}, {"steps": 40, **TIMES, "eval_s": None},
    {"steps": 40, **TIMES, "replans": {}}, {"steps": 40, **TIMES, "replans": [{"step": 4}]}])
def test_a_damaged_budget_is_named(tmp_path, budget):
    (tmp_path / CONFIG).write_text(json.dumps({"config": {}, "tokenizer": {},
                                               "budget": budget}))
    with pytest.raises(ConfigError, match=rf"^{tmp_path / CONFIG} is damaged \(its budget"):
        read_budget(tmp_path)
    (tmp_path / CONFIG).write_text(json.dumps({"config": {}, "tokenizer": {}, "budget": {
        "steps": 40, **TIMES,
        "replans": [{"step": 4, "steps": 38, "seconds_per_step": 0.5}]}}))
    assert read_budget(tmp_path)["replans"][0]["steps"] == 38


def test_a_torn_or_damaged_metrics_file(tmp_path, capsys):
    rows = [{"step": s, "loss": 1.0 / s} for s in (1, 2, 3)]
    text = "".join(json.dumps(row) + "\n" for row in rows)
    (tmp_path / METRICS).write_text(text[:-8])
    assert read_metrics(tmp_path) == rows[:2]
    assert plot_main([str(tmp_path), "--out", str(tmp_path / "c.png")]) == 0
    assert capsys.readouterr().err.count("its last line (3) is cut short") == 2
    assert (tmp_path / "c.png").stat().st_size > 0
    (tmp_path / METRICS).write_text(text.replace('{"step": 2', '{"step": 2,,'))
    assert plot_main([str(tmp_path), "--out", str(tmp_path / "c.png")]) == 2
    assert "metrics.jsonl: line 2 is damaged" in one_line(capsys.readouterr().err)
    (tmp_path / METRICS).write_text(text.replace('"loss": 0.5', '"loss": "0.5"'))
    assert plot_main([str(tmp_path), "--out", str(tmp_path / "c.png")]) == 2
    assert "step 2: loss='0.5' is not a number" in one_line(capsys.readouterr().err)


# 4. no traceback for a user's mistake; 5. a failed start makes nothing

def test_a_start_that_fails_makes_nothing(ref, tmp_path):
    """init_from of another shape, a file where the runs folder goes, a folder named latest,
    a missing optional package: one line each, no run directory, latest unmoved."""
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "latest").symlink_to("older")
    cfg = tiny_config(tmp_path, "new", **RUN)
    grown = replace(cfg, model=replace(cfg.model, d_model=32),
                    train=replace(cfg.train, init_from=str(ref[1])))
    with pytest.raises(ConfigError, match=r"train.init_from=.*: parameter \S+: the checkpoint's "
                                          r"shape \(\d+, ?\d*\), this model's \(\d+, ?\d*\)"):
        train(grown)
    with pytest.raises(ConfigError, match="needs the package 'tensorboardX'"):
        train(replace(cfg, train=replace(cfg.train, tensorboard=True)))
    assert sorted(p.name for p in runs.iterdir()) == ["latest"]
    assert os.readlink(runs / "latest") == "older"
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match=f"{tmp_path / 'file'} is a file, expected a folder"):
        train(replace(cfg, train=replace(cfg.train, out_dir=str(tmp_path / "file" / "runs"))))
    (tmp_path / "other" / "latest").mkdir(parents=True)
    with pytest.raises(ConfigError, match="latest is a folder, not the link"):
        train(replace(cfg, train=replace(cfg.train, out_dir=str(tmp_path / "other"))))
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["latest"]


def test_a_classifier_run_is_refused_by_generate_and_evaluate(ref, tmp_path, capsys):
    cfg = replace(tiny_config(ref[0], "clf", **RUN), task=TaskConfig(name="copy"))
    write_config(tmp_path / "clf", cfg, ByteTokenizer())
    assert generate_cli.main(["--run", str(tmp_path / "clf")]) == 2
    assert evaluate_main(["--run", str(tmp_path / "clf")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all("is a classifier's run (task.name='copy')" in e for e in err)


def test_data_files_that_cannot_be_read_are_named(tmp_path):
    (tmp_path / "json").mkdir()
    (tmp_path / "json" / "a.jsonl").write_text('{"text": "fine"}\n{"text": "cut\n')
    with pytest.raises(ConfigError, match=r"a.jsonl is not a readable jsonl file \(\w+"):
        load_documents(str(tmp_path / "json"))
    (tmp_path / "pq").mkdir()
    (tmp_path / "pq" / "b.parquet").write_bytes(b"PAR1 not parquet PAR1")
    with pytest.raises(ConfigError, match=r"b.parquet is not a readable parquet file"):
        load_documents(str(tmp_path / "pq"))
    streamed = DataConfig(source=str(tmp_path / "json"), streaming=True, seq_len=4,
                          batch_size=2, val_fraction=0.5)
    for folder in ("json", "pq"):
        with pytest.raises(ConfigError, match="a file cannot be read"):
            StreamingTextData(replace(streamed, source=str(tmp_path / folder)), ByteTokenizer())


def test_streaming_passes_over_binary_files_as_in_memory(tmp_path):
    for i in range(6):
        (tmp_path / f"doc{i}.txt").write_text(f"plain text number {i} " * 20)
    (tmp_path / "blob.bin").write_bytes(bytes(range(256)) * 8)
    cfg = DataConfig(source=str(tmp_path), streaming=True, seq_len=8, batch_size=2,
                     val_fraction=0.3, shuffle_buffer=4)
    data = StreamingTextData(cfg, ByteTokenizer())
    seen = np.concatenate([data.val.ravel()] + [data.train_batch(s).ravel() for s in range(20)])
    assert not np.isin(seen, [0, 255]).any()  # bytes only the binary file holds


def test_wav_files_that_are_not_wav(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"RIFF....WAVEjunk")
    with pytest.raises(ConfigError, match=r"a\.wav: not a PCM WAV file"):
        read_wav(tmp_path / "a.wav")
    writer = WavWriter(tmp_path / "b.wav", 8000)
    writer.write(np.linspace(-0.5, 0.5, 5))
    writer.close()
    path = tmp_path / "b.wav"
    path.write_bytes(path.read_bytes()[:-1])  # cut inside the last 16-bit sample
    samples, rate = read_wav(path)
    assert rate == 8000 and len(samples) == 4


def test_audio_into_a_folder_not_yet_made(tmp_path):
    """--audio's folder is made, as for every output file (it was a traceback)."""
    writer = WavWriter(tmp_path / "new" / "a.wav", 8000)
    writer.write(np.zeros(10))
    writer.close()
    samples, rate = read_wav(tmp_path / "new" / "a.wav")
    assert rate == 8000 and len(samples) == 10


def test_bad_tokenizer_files(tmp_path, capsys):
    for text, match in [("{not json", "not a character tokenizer file"),
                        ('{"kind": "char"}', "not a character tokenizer file .KeyError"),
                        ("[1]", "not a character tokenizer file .TypeError"),
                        ('{"chars": ""}', "its alphabet is '', expected a non-empty string")]:
        path = tmp_path / f"t{len(text)}.json"
        path.write_text(text)
        with pytest.raises(ConfigError, match=match):
            from_name(str(path))
    (tmp_path / "t.model").write_bytes(b"garbage")
    with pytest.raises(ConfigError, match="not a SentencePiece model"):
        from_name(str(tmp_path / "t.model"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "a.txt").write_text("")
    argv = ["--source", str(tmp_path / "empty"), "--kind", "char", "--out"]
    assert tokenizer_train_main([*argv, str(tmp_path / "e.json")]) == 2
    assert "every document is empty" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "e.json").exists()


def test_output_paths_are_checked_before_any_work(ref, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    run = ["--run", str(ref[1]), "--max-new-tokens", "4"]
    for argv, match in [(["--save-state", str(tmp_path / "file" / "s.npz")], "is a file"),
                        (["--save-state", str(tmp_path)], "expected a file, found a folder"),
                        (["--audio", str(tmp_path / "out.png")], "expected a .wav file")]:
        assert generate_cli.main([*run, *argv]) == 2
        out, err = capsys.readouterr()
        assert out == "" and match in one_line(err)
    for out, match in [(tmp_path / "c.xyz", "expected a file ending in one of .avif"),
                       (tmp_path / "curves", "expected a file ending in one of"),
                       (tmp_path / "file" / "c.png", "is a file, expected a folder")]:
        assert plot_main([str(ref[1]), "--out", str(out)]) == 2
        assert match in one_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    assert tokenizer_train_main(["--source", str(ref[0] / "corpus"), "--kind", "char",
                                 "--out", str(tmp_path / "file" / "t.json")]) == 2
    assert "is a file, expected a folder" in one_line(capsys.readouterr().err)


def test_ctrl_c_in_generate_keeps_what_was_read(ref, tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Generator, "decode", interrupted)
    state = tmp_path / "s.npz"
    assert generate_cli.main(["--run", str(ref[1]), "--prompt", "ab",
                              "--save-state", str(state)]) == 130
    err = capsys.readouterr().err
    assert err == f"error: interrupted\nstate after 3 tokens saved to {state}\n"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"")))
    assert generate_cli.main(["--run", str(ref[1]), "--interactive",
                              "--save-state", str(tmp_path / "none.npz")]) == 0
    assert "nothing was read: no state saved" in capsys.readouterr().err
    assert not (tmp_path / "none.npz").exists()


def test_ctrl_c_during_a_checkpoint_save_is_raised_after_it():
    """A Ctrl-C inside orbax's save or wait is held back until it returns (orbax would log the
    KeyboardInterrupt as a failed save, traceback and all), then raised as usual."""
    reached = []
    # Python's own handler, whatever this process inherited (SIGINT is ignored in background jobs)
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt), ctrl_c_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            reached.append("the block went on")
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, inherited)
    assert reached == ["the block went on"]


def test_a_stopped_training_run_is_one_line(monkeypatch, capsys):
    """train_lm.py: a run that diverged (exit 1) or was interrupted (Ctrl-C, 130)."""
    train_cli = load_script("train_lm")
    for error, status in [(TrainingDiverged("step 5: loss=nan, grad_norm=nan (not finite); "
                                            "the last good checkpoint is step 4 in X"), 1),
                          (TrainingInterrupted("interrupted; the last good checkpoint is step 4 "
                                               "in X (the same command resumes from it)"), 130)]:
        def stopped(cfg, error=error):
            raise error

        monkeypatch.setattr(train_cli, "train", stopped)
        assert train_cli.main(["--train.name", "x"]) == status
        assert one_line(capsys.readouterr().err) == f"error: {error}\n"


def test_the_online_stream_command_refuses_bad_values(capsys):
    for argv, match in [(["--chunks", "0"], "--chunks=0: expected a positive integer"),
                        (["--lr", "inf"], "--lr=inf: expected a float32 value > 0"),
                        (["--mixer", "nope"], "--mixer='nope': expected one of"),
                        (["--rule", "online_snap1"], "does not apply to model.mixer='lru'")]:
        assert stream_cli(argv) == 2
        assert match in one_line(capsys.readouterr().err)


def test_temporary_files_stay_beside_the_target(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def fail(f: io.BufferedWriter) -> None:
        f.write(b"half")
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.txt.")]
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, fail)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    write_atomic(target, lambda f: f.write(b"new"))
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]

