"""Real-valued frames as a language model reads them: the checks a frame array must pass, the
start flag that opens a document, and the normalisation a run records.

* A document is an array [T, F] of real numbers (T frames of F values: log-mel bands, the rows
  of an image, sensor readings), ``F`` = ``model.frame_width``.
* The model's input at a position is a frame and a start flag, [F + 1]: a document is read as
  ``[start, frame_0, frame_1, ...]``, the start row all zeros but its flag, so the first frame
  is predicted from the learned start vector (what BOS is to text), and the recurrent state is
  cleared there (the segment id changes).
* ``FrameCodec``: the per-value mean and standard deviation of the training split; the model
  sees ``(x − mean) / std`` and generation turns its frames back. A run records it in
  config.json where a token run records its tokenizer (``describe`` / ``from_description``), so
  generation and evaluation normalise as training did, and a resumed run whose data changed is
  refused.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from glrnn.errors import ConfigError


def check_frames(array: Any, width: int, where: str) -> np.ndarray:
    """``array`` as float32 [T, width]; ConfigError naming ``where`` (a file, a field) if it is
    not a real-valued array of that shape or holds NaN/inf."""
    array = np.asarray(array)
    if array.dtype.kind not in "fiub" or array.ndim != 2 or array.shape[1] != width:
        raise ConfigError(f"{where}: frames of shape {array.shape} and dtype {array.dtype}, "
                          f"expected real numbers of shape [T, {width}] (model.frame_width="
                          f"{width})")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        row = int(np.flatnonzero(~np.isfinite(array).all(axis=1))[0])
        raise ConfigError(f"{where}: frame {row} holds NaN or inf (expected finite values)")
    return array


def with_flags(frames: np.ndarray, start: bool) -> np.ndarray:
    """Model inputs [T (+1), F + 1] float32 of frames [T, F]: a start flag column of 0, and with
    ``start`` a start row (zeros, flag 1) in front."""
    rows = np.concatenate([frames, np.zeros((len(frames), 1), np.float32)], axis=1)
    if not start:
        return rows.astype(np.float32)
    opening = np.zeros((1, frames.shape[1] + 1), np.float32)
    opening[0, -1] = 1.0
    return np.concatenate([opening, rows]).astype(np.float32)


class FrameCodec:
    """Per-value normalisation of frames, fitted on the training split (the "tokenizer" of a
    continuous-input run: config.json records it)."""

    name = "frames"

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean = np.asarray(mean, np.float64)
        self.std = np.asarray(std, np.float64)
        self.width = len(self.mean)

    @classmethod
    def fit(cls, documents: list[np.ndarray]) -> FrameCodec:
        """Mean and std of every frame of ``documents`` ([T, F] each, float64 sums); a value
        that never varies gets std 1 (it is only centred)."""
        frames = np.concatenate(documents).astype(np.float64)
        std = frames.std(axis=0)
        return cls(frames.mean(axis=0), np.where(std > 0, std, 1.0))

    def normalize(self, frames: np.ndarray) -> np.ndarray:
        return ((frames - self.mean) / self.std).astype(np.float32)

    def denormalize(self, frames: np.ndarray) -> np.ndarray:
        return (np.asarray(frames, np.float64) * self.std + self.mean).astype(np.float32)

    @property
    def log_scale(self) -> float:
        """Σ log std: nats per frame of the data as stored = nats of the normalised frames
        + this (the Jacobian of the normalisation)."""
        return float(np.log(self.std).sum())

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "width": self.width, "mean": self.mean.tolist(),
                "std": self.std.tolist()}

    @classmethod
    def from_description(cls, description: dict[str, Any]) -> FrameCodec:
        mean, std = description["mean"], description["std"]
        if len(mean) != description["width"] or len(std) != len(mean) or not all(
                math.isfinite(s) and s > 0 for s in std):
            raise ConfigError("the run's frame normalisation is damaged (expected "
                              f"{description['width']} means and positive stds)")
        return cls(np.asarray(mean), np.asarray(std))


def draw_frames(frames: np.ndarray, path: str | Path, title: str = "") -> Path:
    """A PNG of frames [N, F] or [S, N, F] (S samples one above the other): each frame a column,
    its values from bottom to top (a log-mel spectrogram when the frames are log-mel bands)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = frames[None] if frames.ndim == 2 else frames
    fig, axes = plt.subplots(len(samples), 1, figsize=(8, 2.2 * len(samples) + 0.6),
                             squeeze=False)
    for i, (ax, sample) in enumerate(zip(axes[:, 0], samples, strict=True)):
        image = ax.imshow(sample.T, origin="lower", aspect="auto", cmap="magma",
                          interpolation="nearest")
        fig.colorbar(image, ax=ax)
        ax.set(ylabel="value", title=title if i == 0 else "")
    axes[-1, 0].set(xlabel="frame")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
