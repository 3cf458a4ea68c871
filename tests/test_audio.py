"""Audio tokens: μ-law against its formula, WAV in and out, resampling, a folder of clips as
training data, and generate.py --audio writing a WAV and its spectrogram."""

from __future__ import annotations

import wave
from dataclasses import replace

import numpy as np
import pytest
from tiny_lm import load_script, tiny_config

from glrnn.audio import WavWriter, mu_law_decode, mu_law_encode, read_wav, resample
from glrnn.config import ConfigError, DataConfig
from glrnn.data import AudioData, make_data
from glrnn.evaluate import main as evaluate_main
from glrnn.tokenizer import from_name
from glrnn.train import train

generate_cli = load_script("generate")


def test_mu_law_follows_its_formula_and_round_trips():
    x = np.linspace(-1, 1, 2001)
    tokens = mu_law_encode(x)
    assert tokens.min() == 0 and tokens.max() == 255 and np.all(np.diff(tokens) >= 0)
    expected = np.round((np.sign(x) * np.log1p(255 * np.abs(x)) / np.log(256) + 1) / 2 * 255)
    np.testing.assert_array_equal(tokens, expected)
    back = mu_law_decode(tokens)
    # half a step (1/255) of the companded scale times dx/dy = ln(256)/255 · (1 + 255|x|),
    # with 5 % for the slope growing between x and its reconstruction
    step = np.log(256) / 255 * (np.abs(x) + 1 / 255) * 1.05
    assert np.all(np.abs(back - x) <= step)
    assert mu_law_decode(np.array([256, 257]))[0] == pytest.approx(0, abs=1e-2)


def write_tone(path, rate: int, seconds: float, hz: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    x = (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    writer = WavWriter(path, rate)
    writer.write(x[: len(x) // 2])
    writer.write(x[len(x) // 2:])  # written in pieces, as generation streams it
    writer.close()
    return x


def test_wav_round_trip_and_resampling(tmp_path):
    x = write_tone(tmp_path / "a.wav", 16000, 0.1, 440)
    read, rate = read_wav(tmp_path / "a.wav")
    assert rate == 16000 and len(read) == len(x)
    np.testing.assert_allclose(read, x, atol=1 / 32767 + 1e-6)
    half = resample(read, 16000, 8000)
    direct = 0.5 * np.sin(2 * np.pi * 440 * np.arange(800) / 8000)
    assert len(half) == 800
    np.testing.assert_allclose(half, direct, atol=2e-2)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips") / "recordings"
    folder.mkdir()
    for i in range(8):  # 16 kHz files: the 8 kHz tokenizer resamples them
        write_tone(folder / f"{i}_tone.wav", 16000, 0.25, 200 + 50 * i)
    (folder / "notes.txt").write_text("not audio")
    return folder


def test_a_folder_of_clips_is_training_data(clips):
    cfg = DataConfig(source=str(clips), tokenizer="mulaw:8000", seq_len=64, batch_size=4,
                     val_fraction=0.25, val_windows=4)
    tokenizer = from_name(cfg.tokenizer)  # as a run's start builds it
    data = make_data(cfg, tokenizer)
    assert isinstance(data, AudioData) and data.n_train_docs + data.n_val_docs == 8
    assert len(data.train_tokens) == data.n_train_docs * (2000 + 2)  # BOS + 0.25 s + EOS
    batch = data.train_batch(1)
    assert batch.shape == (4, 65) and batch.max() < 259
    np.testing.assert_array_equal(batch, data.train_batch(1))
    with pytest.raises(ConfigError, match=r"no \.wav files"):
        make_data(replace(cfg, source=str(clips / "notes.txt")), tokenizer)
    with pytest.raises(ConfigError, match="expected mulaw:RATE"):
        from_name("mulaw:fast")


def test_generate_streams_audio_to_a_wav_file(clips, tmp_path, capsys):
    cfg = tiny_config(tmp_path, "audio", steps=4, eval_every=4, checkpoint_every=4)
    cfg = replace(cfg, data=DataConfig(source=str(clips), tokenizer="mulaw:8000", seq_len=32,
                                       batch_size=4, val_fraction=0.25, val_windows=2))
    result = train(cfg)
    out = tmp_path / "gen.wav"
    argv = ["--run", str(result.run_dir), "--max-new-tokens", "400", "--temperature", "1"]
    assert generate_cli.main([*argv, "--audio", str(out)]) == 0
    with wave.open(str(out)) as f:
        assert f.getframerate() == 8000 and f.getnchannels() == 1
        assert 1 <= f.getnframes() <= 400
    png = out.with_suffix(".png").read_bytes()
    assert png[:4] == b"\x89PNG" and "spectrogram" in capsys.readouterr().err
    # samples are never generated to nowhere, nor a text prompt silently dropped
    assert generate_cli.main(argv) == 2
    assert generate_cli.main([*argv, "--audio", str(out), "--prompt", "hi"]) == 2
    assert capsys.readouterr().err == (
        "error: --audio='': expected a .wav file to write this μ-law (audio) run's samples "
        "into\nerror: --prompt='hi': expected empty for a μ-law (audio) run (text means "
        "nothing to it)\n")
    assert evaluate_main(["--run", str(result.run_dir)]) == 0  # its own WAV validation split
    assert "bits/byte" in capsys.readouterr().out
