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
