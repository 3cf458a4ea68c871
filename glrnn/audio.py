"""Audio as tokens: 8-bit μ-law (256 levels) at the file's sample rate, and WAV in and out.

    μ-law (μ = 255):  y = sign(x) · ln(1 + μ|x|) / ln(1 + μ),  x ∈ [−1, 1]
    token = round((y + 1) / 2 · 255) ∈ [0, 255]; decoding inverts both steps.

``MuLawTokenizer`` (``data.tokenizer = "mulaw:RATE"``) puts the 256 levels at ids 0-255 and
BOS/EOS/PAD at 256-258, like the byte tokenizer, so one sample is one "byte": bits per byte of an
audio model are bits per sample. WAV files are read with the standard ``wave`` module (8/16/32-bit
PCM, any channel count, averaged to mono); a file at another sample rate is resampled by linear
interpolation (``resample``).
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from glrnn.errors import ConfigError

MU = 255


def mu_law_encode(x: np.ndarray) -> np.ndarray:
    """Samples in [−1, 1] (float) -> tokens [0, 255] (int32), same shape."""
    x = np.clip(np.asarray(x, np.float64), -1.0, 1.0)
    y = np.sign(x) * np.log1p(MU * np.abs(x)) / np.log1p(MU)
    return np.round((y + 1) / 2 * MU).astype(np.int32)


def mu_law_decode(tokens: np.ndarray) -> np.ndarray:
    """Tokens [0, 255] -> samples in [−1, 1] (float32); other ids (specials) decode to 0."""
    tokens = np.asarray(tokens)
    y = np.where(tokens <= MU, tokens, (MU + 1) / 2).astype(np.float64) / MU * 2 - 1
    return (np.sign(y) * np.expm1(np.abs(y) * np.log1p(MU)) / MU).astype(np.float32)


def resample(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Linear interpolation from ``rate`` to ``target`` samples per second."""
    if rate == target:
        return x
    n = max(1, round(len(x) * target / rate))
    return np.interp(np.arange(n) * rate / target, np.arange(len(x)), x).astype(np.float32)


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """(mono samples float32 in [−1, 1], sample rate) of a PCM WAV file; ConfigError naming
    the file if it is not one (or is cut short)."""
    try:
        with wave.open(str(path), "rb") as f:
            width, channels, rate = f.getsampwidth(), f.getnchannels(), f.getframerate()
            raw = f.readframes(f.getnframes())
    except (wave.Error, EOFError) as e:
        raise ConfigError(f"{path}: not a PCM WAV file ({e or 'cut short'})") from e
    if width not in (1, 2, 4):
        raise ConfigError(f"{path}: {8 * width}-bit samples, expected 8, 16 or 32-bit PCM")
    raw = raw[:len(raw) - len(raw) % (width * channels)]  # a file cut mid-frame: whole frames
    if width == 1:  # 8-bit WAV is unsigned
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128) / 128
    else:
        dtype = np.int16 if width == 2 else np.int32
        x = np.frombuffer(raw, dtype).astype(np.float32) / float(np.iinfo(dtype).max)
    return x.reshape(-1, channels).mean(axis=1), rate


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """The HTK mel scale: 2595 log10(1 + f / 700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel, np.float64) / 2595.0) - 1.0)


def mel_filterbank(rate: int, n_fft: int, n_mels: int, f_min: float = 0.0,
                   f_max: float | None = None) -> np.ndarray:
    """[n_fft // 2 + 1, n_mels] triangular filters, unnormalised (peak 1), with centres equally
    spaced on the HTK mel scale between f_min and f_max (default rate / 2): torchaudio's
    ``melscale_fbanks`` with its defaults (Kaldi and HTK build theirs the same way)."""
    freqs = np.linspace(0, rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max or rate / 2), n_mels + 2))
    rising = (freqs[:, None] - edges[None, :-2]) / np.diff(edges)[None, :-1]
    falling = (edges[None, 2:] - freqs[:, None]) / np.diff(edges)[None, 1:]
    return np.maximum(0.0, np.minimum(rising, falling))


def power_spectrogram(samples: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """[T, n_fft // 2 + 1] |STFT|² of mono samples: periodic Hann window of n_fft, frames every
    ``hop`` samples centred on t·hop (the signal reflected at its ends, zero-padded when
    shorter than half a window), T = 1 + len // hop."""
    pad = n_fft // 2
    mode = "reflect" if len(samples) > pad else "constant"
    x = np.pad(np.asarray(samples, np.float64), pad, mode=mode)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    starts = np.arange(1 + len(samples) // hop) * hop
    return np.abs(np.fft.rfft(x[starts[:, None] + np.arange(n_fft)] * window, axis=-1)) ** 2


def log_mel(samples: np.ndarray, rate: int, n_mels: int = 40, n_fft: int = 256,
            hop: int = 80, dither: float = 1.0, seed: int = 0) -> np.ndarray:
    """[T, n_mels] float32 natural-log mel energies of mono samples in [−1, 1].

    ``dither`` adds Gaussian noise of that many 16-bit steps (Kaldi's default, 1) drawn from
    ``seed`` before the transform, so digital silence has a noise floor instead of exact zeros
    (whose identical frames a density model would score without bound)."""
    x = np.asarray(samples, np.float64)
    if dither:
        x = x + np.random.default_rng(seed).normal(0.0, dither / 32768.0, x.shape)
    mel = power_spectrogram(x, n_fft, hop) @ mel_filterbank(rate, n_fft, n_mels)
    return np.log(np.maximum(mel, 1e-10)).astype(np.float32)


class WavWriter:
    """A 16-bit mono WAV file written as samples arrive (``write``), finished by ``close``."""

    def __init__(self, path: str | Path, rate: int) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)  # as output_file promises
        self.file = wave.open(str(path), "wb")  # noqa: SIM115 (kept open across writes)
        self.file.setnchannels(1)
        self.file.setsampwidth(2)
        self.file.setframerate(rate)

    def write(self, samples: np.ndarray) -> None:
        pcm = np.round(np.clip(samples, -1, 1) * 32767).astype("<i2")
        self.file.writeframes(pcm.tobytes())

    def close(self) -> None:
        self.file.close()


def draw_spectrogram(samples: np.ndarray, rate: int, path: str | Path) -> Path:
    """A PNG of the samples' spectrogram (frequency over time, dB)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3))
    ax.specgram(samples, Fs=rate, NFFT=256, noverlap=192, cmap="magma")
    ax.set(xlabel="seconds", ylabel="Hz", title=f"{len(samples) / rate:.2f} s at {rate} Hz")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


class MuLawTokenizer:
    """μ-law levels as ids 0-255, then BOS=256, EOS=257, PAD=258 (vocab_size 259)."""

    name = "mulaw"
    bos_id, eos_id, pad_id, vocab_size = 256, 257, 258, 259

    def __init__(self, rate: int) -> None:
        self.rate = rate

    def encode_audio(self, samples: np.ndarray, rate: int) -> list[int]:
        return mu_law_encode(resample(samples, rate, self.rate)).tolist()

    def decode_audio(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids)
        return mu_law_decode(ids[ids < 256])

    def encode(self, text: str) -> list[int]:
        """Text prompts have no audio meaning: an audio prompt is its samples' tokens."""
        del text
        return []

    def decode(self, ids) -> str:
        return ""

    def byte_lengths(self) -> np.ndarray:
        lengths = np.zeros(self.vocab_size, np.int64)
        lengths[:256] = 1  # one 8-bit sample: bits per byte are bits per sample
        return lengths

    def describe(self) -> dict:
        return {"name": self.name, "rate": self.rate, "vocab_size": self.vocab_size}
