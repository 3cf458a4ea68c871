"""Language models over real-valued frames (model.input=continuous): the mixture density against
its formula, parallel == step by step, no leak across documents, the generator against teacher
forcing, a loss that falls, the data's checks and the commands' one-line errors."""

from __future__ import annotations

import math
import wave
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tiny_lm import load_script, write_corpus

from glrnn.audio import hz_to_mel, log_mel, mel_filterbank, mel_to_hz
from glrnn.config import Config, ConfigError, DataConfig, ModelConfig, OptimConfig, TrainConfig
from glrnn.data.frames import FrameData, baselines
from glrnn.data.text import TextData
from glrnn.density import FrameDensity, gaussian_nll
from glrnn.evaluate import main as evaluate_main
from glrnn.frame_generate import FrameGenerator
from glrnn.frames import FrameCodec, with_flags
from glrnn.generate import clear_rows, zero_carry
from glrnn.make_frames import main as make_frames_main
from glrnn.models import LanguageModel, example_inputs
from glrnn.params import init_params
from glrnn.runs.run import read_config
from glrnn.tokenizer import ByteTokenizer
from glrnn.train import train
from glrnn.train.frame_task import batch_frames, frame_gradient, frame_loss

generate_cli = load_script("generate")
train_cli = load_script("train_lm")
WIDTH = 3


def reference_nll(raw: np.ndarray, x: np.ndarray, k: int, f: int, min_sigma: float) -> np.ndarray:
    """-log Σ_k π_k Π_d N(x_d; μ_kd, σ_kd²) written out in float64, σ = exp(s) + σ_min."""
    raw, x = np.asarray(raw, np.float64), np.asarray(x, np.float64)
    logits = raw[..., :k]
    pi = np.exp(logits - logits.max(-1, keepdims=True))
    pi /= pi.sum(-1, keepdims=True)
    mu = raw[..., k:k + k * f].reshape(*raw.shape[:-1], k, f)
    sigma = np.exp(raw[..., k + k * f:].reshape(*raw.shape[:-1], k, f)) + min_sigma
    z = (x[..., None, :] - mu) / sigma
    density = np.exp(-0.5 * z**2) / (sigma * math.sqrt(2 * math.pi))
    return -np.log(np.sum(pi * np.prod(density, axis=-1), axis=-1))


def test_mixture_nll_equals_the_formula():
    k, f = 3, 4
    density = FrameDensity("gmm", f, k, 1e-3)
    raw = jax.random.normal(jax.random.key(0), (2, 5, density.raw_width))
    x = jax.random.normal(jax.random.key(1), (2, 5, f))
    np.testing.assert_allclose(jax.jit(density.nll)(raw, x), reference_nll(raw, x, k, f, 1e-3),
                               rtol=1e-5, atol=1e-5)
    assert density.raw_width == k * (2 * f + 1)


def test_one_component_is_the_diagonal_gaussian():
    f = 5
    density = FrameDensity("gmm", f, 1, 1e-3)
    raw = jax.random.normal(jax.random.key(2), (7, density.raw_width))
    x = jax.random.normal(jax.random.key(3), (7, f))
    mean, log_sigma = raw[:, 1:1 + f], jnp.logaddexp(raw[:, 1 + f:], math.log(1e-3))
    sigma = np.exp(np.asarray(log_sigma, np.float64))
    closed = np.sum(0.5 * ((np.asarray(x) - np.asarray(mean)) / sigma) ** 2 + np.log(sigma)
                    + 0.5 * math.log(2 * math.pi), axis=-1)
    np.testing.assert_allclose(jax.jit(density.nll)(raw, x), closed, rtol=1e-5)
    np.testing.assert_allclose(jax.jit(gaussian_nll)(x, mean, log_sigma), closed, rtol=1e-5)


def test_nll_is_finite_far_from_every_component_and_floored_at_sigma_min():
    k, f = 4, 3
    density = FrameDensity("gmm", f, k, 1e-2)
    raw = jnp.concatenate([jnp.zeros((1, k)), jnp.zeros((1, k * f)),
                           jnp.full((1, k * f), -50.0)], axis=-1)  # σ = e^-50 + σ_min
    nll = jax.jit(density.nll)
    far = nll(raw, jnp.full((1, f), 30.0))  # 3000 σ away: a density of e^-13500
    expected = f * (0.5 * 3000.0**2 + math.log(1e-2) + 0.5 * math.log(2 * math.pi))
    np.testing.assert_allclose(far, [expected], rtol=1e-5)
    at_mean = nll(raw, jnp.zeros((1, f)))  # the floor bounds the likelihood
    np.testing.assert_allclose(at_mean, [f * (math.log(1e-2) + 0.5 * math.log(2 * math.pi))],
                               rtol=1e-5)
    grads = jax.jit(jax.grad(lambda r: nll(r, jnp.full((1, f), 30.0)).sum()))(raw)
    assert np.isfinite(np.asarray(grads)).all()


def mixture_raw(weights, means, sigma):
    """The raw head output of a 1-value mixture with these weights, means and one σ (no floor
    effect: σ_min is far below)."""
    k = len(weights)
    return jnp.asarray([*np.log(weights), *means, *[math.log(sigma - 1e-6)] * k])[None]


def test_sampling_follows_the_mixture_and_the_temperature():
    density = FrameDensity("gmm", 1, 2, 1e-6)
    raw = jnp.repeat(mixture_raw([0.25, 0.75], [-3.0, 3.0], 0.5), 40_000, axis=0)
    sample = jax.jit(density.sample, static_argnums=2)
    x = np.asarray(sample(raw, jax.random.key(0), 1.0))[:, 0]
    right = x > 0
    assert abs(right.mean() - 0.75) < 0.01
    assert abs(x[right].mean() - 3.0) < 0.01 and abs(x[right].std() - 0.5) < 0.01
    cold = np.asarray(sample(raw, jax.random.key(1), 0.25))[:, 0]
    # logits / 0.25: weights 0.25⁴ : 0.75⁴ = 1 : 81; σ √0.25 = 0.25
    assert abs((cold > 0).mean() - 81 / 82) < 0.005
    assert abs(cold[cold > 0].std() - 0.25) < 0.01
    greedy = sample(raw[:2], jax.random.key(2), 0.0)
    np.testing.assert_array_equal(greedy, [[3.0], [3.0]])  # the most probable component's mean
    np.testing.assert_allclose(density.mean(raw[:1]), [[0.25 * -3 + 0.75 * 3]], rtol=1e-6)


def test_mse_head():
    density = FrameDensity("mse", 4)
    raw = jax.random.normal(jax.random.key(4), (3, 4))
    x = jax.random.normal(jax.random.key(5), (3, 4))
    np.testing.assert_allclose(density.loss(raw, x), np.mean((np.asarray(raw) - x) ** 2, -1),
                               rtol=1e-6)
    assert density.raw_width == 4
    np.testing.assert_array_equal(density.sample(raw, jax.random.key(0), 1.0), raw)


def frame_config(**model) -> ModelConfig:
    fields = {"d_model": 16, "n_layers": 2, "d_state": 16, "mixer": "gateloop",
              "input": "continuous", "frame_width": WIDTH, "mixture_components": 2, **model}
    return ModelConfig(**fields)


@pytest.fixture(scope="module")
def tiny_frame_model():
    cfg = frame_config()
    model = LanguageModel(cfg)
    params, _ = init_params(model, jax.random.key(0), example_inputs(cfg, 1, 4))
    return cfg, model, params


def document(length: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((length, WIDTH)).astype(np.float32)


@pytest.mark.parametrize("positions", ["none", "sinusoidal", "learned"])
def test_parallel_equals_step_by_step_with_resets(tiny_frame_model, positions):
    """A pack of two documents: __call__ with the start flags' segment ids == model.step over
    the positions with the state (and a position encoding's counter) cleared at each start row."""
    _, model, params = tiny_frame_model
    if positions != "none":
        extra = {"max_positions": 16} if positions == "learned" else {}
        model = LanguageModel(frame_config(positions=positions, **extra))
        params, _ = init_params(model, jax.random.key(0), example_inputs(model.cfg, 1, 4))
    pack = np.concatenate([with_flags(document(5, 0), True), with_flags(document(6, 1), True)])
    inputs = jnp.asarray(pack[None])
    segments = jnp.cumsum(inputs[..., -1] > 0.5, axis=1, dtype=jnp.int32)
    parallel, _ = jax.jit(model.apply)({"params": params}, inputs, segment_ids=segments)

    @jax.jit
    def step(x_t, carry):
        carry = clear_rows(carry, x_t[:, -1] > 0.5)
        return model.apply({"params": params}, x_t, carry, method="step")

    carry = zero_carry(model, params, 1)
    steps = []
    for t in range(pack.shape[0]):
        out, carry = step(inputs[:, t], carry)
        steps.append(out)
    np.testing.assert_allclose(parallel[0], jnp.stack(steps, 1)[0], rtol=1e-4, atol=1e-5)


def test_documents_in_a_pack_do_not_leak(tiny_frame_model):
    """The second document's outputs and loss are the same whatever precedes it."""
    cfg, model, params = tiny_frame_model
    density = FrameDensity.of(cfg)
    frames = jax.jit(lambda batch: batch_frames(model, density, params, batch)[:3])
    second = with_flags(document(7, 2), True)
    alone = np.concatenate([second, with_flags(document(4, 5), True)])[None]
    reference = frames(jnp.asarray(alone))[0][0, :len(second) - 1]
    for seed in (3, 4):
        pack = np.concatenate([with_flags(document(4, seed), True), second])[None]
        loss, _, scored = frames(jnp.asarray(pack))
        np.testing.assert_allclose(loss[0, -len(second) + 1:], reference, rtol=1e-5, atol=1e-5)
        # the target that is the second document's start row is not scored
        assert not scored[0, -len(second)] and scored[0, -len(second) + 1]
        assert not np.allclose(loss[0, :3], reference[:3])  # the first document differs


def test_generator_equals_teacher_forcing(tiny_frame_model):
    """Greedy frames drawn with the carry are what the parallel forward predicts over [start,
    prompt, the drawn frames] (each the most probable component's mean)."""
    cfg, model, params = tiny_frame_model
    prompt = with_flags(document(3, 6), True)[None]  # 4 rows: one prefill piece
    generator = FrameGenerator(model, params, chunk=4)
    raw, carry = generator.read(prompt)
    out = generator.decode(raw, carry, 10, temperature=0.0)
    assert out.frames.shape == (1, 10, WIDTH)
    forced = np.concatenate([prompt[0], with_flags(out.frames[0], False)])[None]
    density = FrameDensity.of(cfg)

    @jax.jit
    def teacher_forced(inputs):
        raw, _ = model.apply({"params": params}, inputs)
        return density.sample(raw, jax.random.key(0), 0.0), raw[:, -1]

    expected, last = teacher_forced(jnp.asarray(forced))
    np.testing.assert_allclose(out.frames, expected[:, prompt.shape[1] - 1:-1], rtol=1e-4,
                               atol=1e-4)
    np.testing.assert_allclose(out.next_raw, last, rtol=1e-4, atol=1e-4)


def write_frames(directory, n_docs: int = 12, width: int = WIDTH) -> str:
    """Noisy sines with a phase per document, one .npy each (the last two in one .npz)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n_docs):
        t = np.arange(30 + 3 * i)
        frames = np.stack([np.sin(0.4 * t + i), np.cos(0.4 * t + i),
                           0.1 * rng.standard_normal(len(t))][:width], 1).astype(np.float32)
        np.save(directory / f"doc{i:02d}.npy", frames)
    np.savez(directory / "pair.npz", a=document(20, 7), b=document(25, 8))
    return str(directory)


def frame_run_config(tmp_path, **train_fields) -> Config:
    source = write_frames(tmp_path / "frames")
    fields = {"steps": 60, "eval_every": 20, "log_every": 10, "checkpoint_every": 20,
              "out_dir": str(tmp_path / "runs"), "name": "frames", **train_fields}
    return Config(model=frame_config(),
                  data=DataConfig(source=source, seq_len=16, batch_size=4, val_fraction=0.25,
                                  val_windows=8),
                  optim=OptimConfig(lr=1e-2, warmup_steps=3), train=TrainConfig(**fields))


@pytest.fixture(scope="module")
def frame_run(tmp_path_factory):
    cfg = frame_run_config(tmp_path_factory.mktemp("continuous"))
    return cfg, train(cfg)


def test_loss_falls_below_the_baselines_on_a_periodic_signal(frame_run):
    cfg, result = frame_run
    rows = [row for row in map(eval_row, (result.run_dir / "metrics.jsonl").read_text()
                               .splitlines()) if "val_loss" in row]
    assert rows[-1]["val_loss"] < rows[0]["val_loss"] - 1.0
    figures = result.figures
    assert figures["val_loss"] < figures["baseline_repeat_nats"] < figures[
        "baseline_gaussian_nats"]
    assert figures["val_nats_per_value"] == pytest.approx(figures["val_loss"] / WIDTH)
    saved, codec = read_config(result.run_dir)
    assert saved == cfg and isinstance(codec, FrameCodec) and codec.width == WIDTH
    assert figures["val_data_nats"] == pytest.approx(figures["val_loss"] + codec.log_scale)


def test_evaluate_command_matches_the_loop(frame_run, tmp_path, capsys):
    cfg, result = frame_run
    assert evaluate_main(["--run", str(result.run_dir)]) == 0  # the whole validation split
    out = capsys.readouterr().out
    assert f"loss {result.figures['full_val_loss']:.4f} nats/frame" in out, out
    data = FrameData(cfg.data, WIDTH)  # every frame of the split once: its rows but the starts
    assert f": {int((data.val_frames[:, -1] == 0).sum()):,} frames in" in out, out
    windows = str(cfg.data.val_windows)  # the loop's estimate
    assert evaluate_main(["--run", str(result.run_dir), "--max-windows", windows]) == 0
    estimate = capsys.readouterr().out
    assert f"loss {result.figures['val_loss']:.4f} nats/frame" in estimate, estimate
    assert evaluate_main(["--run", str(result.run_dir), "--source", cfg.data.source]) == 0
    whole = capsys.readouterr().out  # every document, not only the validation split's
    frames = [int(text.split(": ")[1].split(" frames")[0]) for text in (out, whole)]
    assert frames[1] > frames[0] > 0
    np.save(tmp_path / "wide.npy", np.zeros((50, 4)))
    assert evaluate_main(["--run", str(result.run_dir), "--source", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(f"error: --source: {tmp_path}/wide.npy: frames of")


def test_plot_draws_the_squared_error_of_a_frame_run(frame_run, tmp_path):
    from glrnn.plot import plot_runs

    out = plot_runs([frame_run[1].run_dir], tmp_path / "curves.png")
    assert out.stat().st_size > 10_000


def eval_row(line: str) -> dict:
    import json

    return json.loads(line)


def test_generate_cli_writes_frames_and_continues_a_state(frame_run, tmp_path, capsys):
    cfg, result = frame_run
    run = str(result.run_dir)
    prompt = tmp_path / "prompt.npy"
    np.save(prompt, np.load(f"{cfg.data.source}/doc03.npy")[:10])
    argv = ["--run", run, "--temperature", "0", "--prompt-frames", str(prompt)]
    whole = tmp_path / "whole.npy"
    assert generate_cli.main([*argv, "--frames", "12", "--frames-out", str(whole)]) == 0
    first, state = tmp_path / "first.npy", tmp_path / "state.npz"
    assert generate_cli.main([*argv, "--frames", "5", "--frames-out", str(first),
                              "--save-state", str(state)]) == 0
    rest = tmp_path / "rest.npy"
    assert generate_cli.main(["--run", run, "--temperature", "0", "--frames", "7",
                              "--frames-out", str(rest), "--load-state", str(state)]) == 0
    frames = np.load(whole)
    assert frames.shape == (12, WIDTH) and whole.with_suffix(".png").is_file()
    np.testing.assert_allclose(np.concatenate([np.load(first), np.load(rest)]), frames,
                               rtol=1e-5, atol=1e-5)
    samples = tmp_path / "samples.npy"  # from the start vector alone, three at once
    assert generate_cli.main(["--run", run, "--frames", "6", "--num-samples", "3",
                              "--frames-out", str(samples)]) == 0
    assert np.load(samples).shape == (3, 6, WIDTH)
    capsys.readouterr()


@pytest.mark.parametrize("argv, message", [
    (["--frames", "4", "--frames-out", "X.npy", "--prompt", "hello"],
     "--prompt='hello': expected '' for a continuous-input run"),
    (["--frames", "4"], "--frames-out='': expected a .npy file"),
    (["--frames-out", "X.npy"], "--frames=0: expected > 0"),
    (["--frames", "4", "--frames-out", "X.wav"], "x.wav': expected a .npy file"),
    (["--frames", "4", "--frames-out", "X.npy", "--prompt-frames", "WIDE"],
     "frames of shape (6, 5) and dtype float64, expected real numbers of shape [T, 3]"),
])
def test_generate_cli_refuses_in_one_line(frame_run, tmp_path, capsys, argv, message):
    np.save(tmp_path / "wide.npy", np.zeros((6, 5)))
    argv = [a.replace("X", str(tmp_path / "x")).replace("WIDE", str(tmp_path / "wide.npy"))
            for a in argv]
    assert generate_cli.main(["--run", str(frame_run[1].run_dir), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    assert not (tmp_path / "x.npy").exists()


def test_wrong_width_names_the_file(tmp_path):
    source = write_frames(tmp_path / "frames")
    with pytest.raises(ConfigError, match=r"doc00\.npy: frames of shape \(30, 3\) .*"
                                          r"\[T, 4\] \(model.frame_width=4\)"):
        FrameData(DataConfig(source=source, seq_len=8), 4)
    np.save(tmp_path / "frames" / "doc05.npy", np.zeros((9, 3, 1)))
    with pytest.raises(ConfigError, match=r"doc05\.npy: frames of shape \(9, 3, 1\)"):
        FrameData(DataConfig(source=source, seq_len=8), 3)


def test_frame_data_reads_npz_and_normalises_from_the_training_split(tmp_path):
    cfg = DataConfig(source=write_frames(tmp_path / "frames"), seq_len=8, batch_size=3,
                     val_fraction=0.25)
    data = FrameData(cfg, WIDTH)
    assert data.n_train_docs + data.n_val_docs == 14  # 12 .npy + the 2 arrays of pair.npz
    starts = data.train_frames[:, -1] == 1
    assert starts.sum() == data.n_train_docs and starts[0]
    values = data.train_frames[~starts, :-1]
    np.testing.assert_allclose(values.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(values.std(0), 1, atol=1e-4)
    assert not data.train_frames[starts, :-1].any()
    batch = data.train_batch(5)
    assert batch.shape == (3, 9, WIDTH + 1) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch, data.train_batch(5))
    codec = FrameCodec.from_description(data.codec.describe())
    np.testing.assert_allclose(codec.denormalize(codec.normalize(values)), values, atol=1e-5)
    again = FrameData(replace(cfg, val_fraction=0.5), WIDTH, codec=data.codec)
    assert again.codec is data.codec


def test_baselines_score_what_they_say():
    """One window: a document opening with [1, 2] then [1, 3]: the Gaussian scores both, repeat
    scores the first by the Gaussian and the second as a change of [0, 1] at σ = [1, 2]."""
    start, a, b = [0, 0, 1], [1, 2, 0], [1, 3, 0]
    figures = baselines(np.asarray([[start, a, b]], np.float32), np.asarray([1.0, 2.0]))
    half = 0.5 * math.log(2 * math.pi)
    gaussian = [0.5 * (1 + 4) + 2 * half, 0.5 * (1 + 9) + 2 * half]
    repeat = [gaussian[0], 0.5 * (0 + 0.25) + math.log(2) + 2 * half]
    assert figures["baseline_gaussian_nats"] == pytest.approx(np.mean(gaussian))
    assert figures["baseline_repeat_nats"] == pytest.approx(np.mean(repeat))
    assert figures["baseline_mean_mse"] == pytest.approx(np.mean([2.5, 5.0]))
    assert figures["baseline_repeat_mse"] == pytest.approx(np.mean([2.5, 0.5]))


def test_text_given_to_a_continuous_run_and_frames_to_a_token_run(tmp_path, capsys):
    text = str(write_corpus(tmp_path / "text", n_docs=3))
    with pytest.raises(ConfigError, match=r"no \.npy or \.npz files among 3 file"):
        FrameData(DataConfig(source=text), WIDTH)
    frames = write_frames(tmp_path / "frames")
    with pytest.raises(ConfigError, match=r"13 \.npy/\.npz arrays: frames are read by "
                                          r"model\.input=continuous"):
        TextData(DataConfig(source=frames), ByteTokenizer())
    runs = ["--train.out-dir", str(tmp_path / "runs")]
    assert train_cli.main(["speech-mel", "--data.source", text, *runs]) == 2
    assert train_cli.main(["speech-mel", "--data.source", "stdlib", *runs]) == 2
    assert train_cli.main(["speech-mel", "--data.source", frames, *runs]) == 2  # 3 ≠ 40 values
    assert train_cli.main(["stdlib-bytes", "--data.source", frames, *runs]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 4 and all(line.startswith("error: ") for line in lines), lines
    assert "data.source='stdlib': expected a folder of .npy/.npz frames" in lines[1]
    assert "frames of shape (30, 3)" in lines[2] and "model.frame_width=40" in lines[2]
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("fields, message", [
    ({"input": "continuous"}, "model.frame_width=0: expected a positive integer"),
    ({"frame_width": 3}, "model.frame_width=3: expected 0 with model.input='tokens'"),
    ({"input": "frames"}, "model.input='frames': expected one of continuous, tokens"),
    ({"input": "continuous", "frame_width": 3, "frame_head": "l1"}, "model.frame_head"),
    ({"input": "continuous", "frame_width": 3, "mixture_components": 0},
     "model.mixture_components=0"),
    ({"input": "continuous", "frame_width": 3, "min_sigma": 0.0}, "model.min_sigma=0.0"),
])
def test_config_checks(fields, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ModelConfig(**fields)


def test_log_mel_of_a_tone_peaks_in_its_band():
    rate, n_fft, n_mels = 8000, 256, 40
    bank = mel_filterbank(rate, n_fft, n_mels)
    assert bank.shape == (n_fft // 2 + 1, n_mels)
    centres = mel_to_hz(np.linspace(hz_to_mel(0), hz_to_mel(rate / 2), n_mels + 2))[1:-1]
    freqs = np.linspace(0, rate / 2, n_fft // 2 + 1)
    for band in (5, 20, 35):  # each triangle peaks at the bin nearest its centre
        nearest = np.argmin(np.abs(freqs - centres[band]))
        assert np.argmax(bank[:, band]) in (nearest - 1, nearest, nearest + 1)
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(1234.5)), 1234.5)
    tone = np.sin(2 * np.pi * 1000 * np.arange(4000) / rate)
    frames = log_mel(tone, rate, n_mels, n_fft, hop=80, dither=0)
    assert frames.shape == (1 + 4000 // 80, n_mels) and frames.dtype == np.float32
    assert np.argmax(frames[25]) == np.argmin(np.abs(centres - 1000))


def test_make_frames_writes_one_array_per_recording(tmp_path, capsys):
    wavs = tmp_path / "wavs"
    wavs.mkdir()
    for i, hz in enumerate((300, 900)):
        pcm = (np.sin(2 * np.pi * hz * np.arange(1600 + 400 * i) / 8000) * 20000).astype("<i2")
        with wave.open(str(wavs / f"{i}_tone.wav"), "wb") as f:
            f.setnchannels(1)
            f.setsampwidth(2)
            f.setframerate(8000)
            f.writeframes(pcm.tobytes())
    out = tmp_path / "mel"
    assert make_frames_main(["--source", str(wavs), "--out", str(out), "--mels", "20"]) == 0
    first, second = np.load(out / "0_tone.npy"), np.load(out / "1_tone.npy")
    assert first.shape == (21, 20) and second.shape == (26, 20)
    again = tmp_path / "again"
    assert make_frames_main(["--source", str(wavs), "--out", str(again), "--mels", "20"]) == 0
    np.testing.assert_array_equal(np.load(again / "0_tone.npy"), first)  # seeded dither
    assert make_frames_main(["--source", str(tmp_path / "mel"), "--out", str(again)]) == 2
    assert capsys.readouterr().err.startswith("error: --source=")


def test_online_rule_on_frames_is_exact_at_the_top_recurrence():
    """online_full on a packed frame batch against BPTT: the same loss, and the same gradient
    for the recurrence and everything above it (the mixture head included); the encoder below
    it is approximate (as for tokens: tests/test_online.py)."""
    cfg = frame_config(mixer="lru", n_layers=1, d_model=8, d_state=6)
    model, density = LanguageModel(cfg), FrameDensity.of(cfg)
    params, _ = init_params(model, jax.random.key(0), example_inputs(cfg, 1, 4))
    pack = np.concatenate([with_flags(document(5, 9), True), with_flags(document(6, 10), True)])
    batch = jnp.asarray(np.stack([pack, np.roll(pack, 4, axis=0)]))
    key = jax.random.key(0)
    (loss, _), online = jax.jit(frame_gradient("online_full", model, density))(
        params, {}, batch, key)
    (exact_loss, _), exact = jax.jit(jax.value_and_grad(frame_loss(model, density),
                                                        has_aux=True))(params, {}, batch, key)
    assert abs(float(loss - exact_loss)) < 1e-5
    for part in (lambda g: g["backbone"]["blocks_0"]["mixer"], lambda g: g["head"],
                 lambda g: g["backbone"]["blocks_0"]["channel_mixer"]):
        for a, e in zip(jax.tree.leaves(part(online)), jax.tree.leaves(part(exact)),
                        strict=True):
            np.testing.assert_allclose(a, e, rtol=2e-4, atol=1e-6)
    assert not np.allclose(online["encoder"]["kernel"], exact["encoder"]["kernel"])
