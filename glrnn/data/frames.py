"""Real-valued frames for a continuous-input language model (``model.input = "continuous"``).

The source (``data.source``) is a file, folder or glob of ``.npy`` arrays [T, F] (one document
each) or ``.npz`` files (every array inside one document, keyed ``file.npz#name``), F =
``model.frame_width``. The steps mirror text's (glrnn/data/text.py), whose functions they reuse:

1. documents: every array checked (real numbers of shape [T, F], finite), naming its file;
2. split: by a hash of each document's key (``split_documents``);
3. normalisation: the per-value mean and std of the training documents (``FrameCodec``), or
   those a run recorded (evaluation, generation);
4. pack: ``[start, frame, frame, ..., start, frame, ...]`` as one [T, F + 1] float32 stream, the
   last column the start flag (glrnn/frames.py): the model clears its state at every start;
5. windows: training batches [B, L + 1, F + 1] at offsets drawn from (seed, step), validation a
   fixed set of contiguous windows, exactly as text's.

Position t of a window predicts position t + 1; a target that is a start row (the next document
opens there) is not scored.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np

from glrnn.config import ConfigError, DataConfig
from glrnn.data.text import (
    FRAME_SUFFIXES,
    Document,
    source_files,
    split_documents,
    train_offsets,
    validation_starts,
    window_count,
    windows_at,
)
from glrnn.frames import FrameCodec, check_frames, with_flags

NOT_FRAMES = (ValueError, OSError, EOFError, zipfile.BadZipFile)  # what np.load raises


def read_arrays(path: Path, field: str = "data.source") -> list[tuple[str, np.ndarray]]:
    """(name, array) of a ``.npy`` file (name "") or of every array in a ``.npz`` file;
    ConfigError naming ``field`` and the file if numpy cannot read it (pickled objects are
    refused)."""
    try:
        if path.suffix == ".npy":
            return [("", np.load(path, allow_pickle=False))]
        with np.load(path, allow_pickle=False) as archive:
            return [(name, archive[name]) for name in archive.files]
    except NOT_FRAMES as e:
        raise ConfigError(f"{field}: {path} is not a readable {path.suffix} array file "
                          f"({type(e).__name__}: {e})") from e


def frame_documents(source: str, width: int,
                    field: str = "data.source") -> dict[str, np.ndarray]:
    """Key -> frames [T, width] float32 of every array of ``source``; ConfigError naming
    ``field`` and the file when an array has another shape, or when the source holds no arrays
    at all (text given to a continuous-input run)."""
    root, files = source_files(source)
    arrays = [p for p in files if p.suffix in FRAME_SUFFIXES]
    if not arrays:
        raise ConfigError(f"{field}={source!r}: no .npy or .npz files among {len(files)} "
                          "file(s): model.input='continuous' reads frames (text is read by "
                          "model.input=tokens)")
    docs = {}
    for path in arrays:
        key = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        for name, array in read_arrays(path, field):
            where = f"{field}: {path}" + (f" array {name!r}" if name else "")
            docs[f"{key}#{name}" if name else key] = check_frames(array, width, where)
    return docs


def pack_frames(docs: list[np.ndarray], codec: FrameCodec) -> np.ndarray:
    """[T, F + 1] float32: each document normalised by ``codec`` behind its start row."""
    if not docs:
        return np.zeros((0, codec.width + 1), np.float32)
    return np.concatenate([with_flags(codec.normalize(d), start=True) for d in docs])


def step_std(docs: list[np.ndarray], codec: FrameCodec) -> np.ndarray:
    """[F]: the root mean square of the change from one frame to the next inside the
    documents (normalised), 1 where no document has two frames or nothing changes."""
    steps = [np.diff(codec.normalize(d), axis=0) for d in docs if len(d) > 1]
    if not steps:
        return np.ones(codec.width)
    rms = np.sqrt(np.mean(np.square(np.concatenate(steps).astype(np.float64)), axis=0))
    return np.where(rms > 0, rms, 1.0)


def baselines(windows: np.ndarray, repeat_std: np.ndarray) -> dict[str, float]:
    """Figures per scored frame of windows [N, L + 1, F + 1] (normalised frames, as the model is
    scored) of two predictors with nothing to learn: ``gaussian``, every value N(0, 1) (the
    per-value Gaussian of the training split; its point prediction the mean, 0), and
    ``repeat``, the previous frame plus N(0, repeat_std²) noise (``step_std``; the Gaussian for
    a document's first frame). -> {baseline_gaussian_nats, baseline_repeat_nats (nats per
    frame), baseline_mean_mse, baseline_repeat_mse (squared error per value)}."""
    inputs, targets = windows[:, :-1].astype(np.float64), windows[:, 1:].astype(np.float64)
    scored = targets[..., -1] == 0
    first = inputs[..., -1] == 1  # the target opens its document: no previous frame
    x = targets[..., :-1]
    previous = np.where(first[..., None], 0.0, inputs[..., :-1])
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    gaussian = np.sum(0.5 * x**2 + half_log_2pi, axis=-1)
    z = (x - previous) / repeat_std
    repeat = np.where(first, gaussian,
                      np.sum(0.5 * z**2 + np.log(repeat_std) + half_log_2pi, axis=-1))
    n = max(int(scored.sum()), 1)
    mean = lambda a: float(a[scored].sum() / n)  # noqa: E731
    return {"baseline_gaussian_nats": mean(gaussian), "baseline_repeat_nats": mean(repeat),
            "baseline_mean_mse": mean(np.mean(x**2, axis=-1)),
            "baseline_repeat_mse": mean(np.mean((x - previous) ** 2, axis=-1))}


def split_frame_windows(packed: np.ndarray, seq_len: int) -> np.ndarray:
    """[N, seq_len + 1, F + 1] windows that score a whole packed stream [T, F + 1]: stride
    ``seq_len`` from its start, the last one filled up with start rows (zeros, flag 1), whose
    targets are never scored; so every position but the first is a target exactly once, as
    :func:`glrnn.data.text.split_windows` does for tokens."""
    count = max(1, math.ceil((len(packed) - 1) / seq_len))
    filler = np.zeros((count * seq_len + 1 - len(packed), packed.shape[1]), np.float32)
    filler[:, -1] = 1.0
    stream = np.concatenate([packed, filler])
    return np.stack([stream[k * seq_len:(k + 1) * seq_len + 1] for k in range(count)])


def in_batches(windows: np.ndarray, size: int) -> list[np.ndarray]:
    """``windows`` [N, ...] in batches of at most ``size``."""
    return [windows[i:i + size] for i in range(0, len(windows), size)]


def source_windows(source: str, codec: FrameCodec, seq_len: int,
                   max_windows: int) -> np.ndarray:
    """[N, seq_len + 1, F + 1]: every document of ``source`` (no split), normalised by ``codec``
    (a run's), in the windows that score all of it (``max_windows`` 0) or ``max_windows``
    contiguous windows spread evenly over it; ConfigError when it does not fill one window."""
    docs = frame_documents(source, codec.width, "--source")
    packed = pack_frames([docs[key] for key in sorted(docs)], codec)
    if window_count(len(packed), seq_len) < 1:
        raise ConfigError(f"--source {source!r} has {len(packed)} positions (frames and "
                          f"document starts), fewer than one window of --seq-len + 1 = "
                          f"{seq_len + 1}")
    if not max_windows:
        return split_frame_windows(packed, seq_len)
    return windows_at(packed, validation_starts(len(packed), seq_len, max_windows), seq_len)


class FrameData:
    """The packed train stream and the fixed validation windows of frames: the data protocol of
    glrnn/data (``train_batch``, ``val``, ``val_split``, ``state``, ``restore``) with ``codec`` (the
    normalisation: fitted on the training split unless given) in place of a tokenizer."""

    def __init__(self, cfg: DataConfig, width: int, codec: FrameCodec | None = None) -> None:
        self.cfg = cfg
        docs = frame_documents(cfg.source, width)
        train, val = split_documents([Document(key, "") for key in sorted(docs)],
                                     cfg.val_fraction, cfg.seed)
        train_docs, val_docs = [docs[d.key] for d in train], [docs[d.key] for d in val]
        self.codec = codec if codec is not None else FrameCodec.fit(train_docs)
        self.train_frames = pack_frames(train_docs, self.codec)
        self.val_frames = val_frames = pack_frames(val_docs, self.codec)
        window = cfg.seq_len + 1
        if len(self.train_frames) < window or window_count(len(val_frames), cfg.seq_len) < 1:
            raise ConfigError(f"data.source={cfg.source!r}: {len(self.train_frames)} training "
                              f"and {len(val_frames)} validation positions (frames and document "
                              f"starts), fewer than one window of data.seq_len + 1 = {window} "
                              "in a split: lower data.seq_len or raise data.val_fraction")
        starts = validation_starts(len(val_frames), cfg.seq_len, cfg.val_windows)
        self.val = windows_at(val_frames, starts, cfg.seq_len)
        self.repeat_std = step_std(train_docs, self.codec)
        self.n_train_docs, self.n_val_docs = len(train), len(val)

    def train_batch(self, step: int, rows: slice = slice(None)) -> np.ndarray:
        """[batch_size, seq_len + 1, F + 1] float32: the batch of training step ``step``."""
        offsets = train_offsets(len(self.train_frames), self.cfg.batch_size, self.cfg.seq_len,
                                self.cfg.seed, step, rows)
        return windows_at(self.train_frames, offsets, self.cfg.seq_len)

    def val_split(self) -> np.ndarray:
        """[N, seq_len + 1, F + 1]: the windows that score the whole validation split."""
        return split_frame_windows(self.val_frames, self.cfg.seq_len)

    def baselines(self) -> dict[str, float]:
        """The validation figures of the predictors of :func:`baselines`."""
        return baselines(self.val, self.repeat_std)

    def state(self) -> dict:
        return {}

    def restore(self, state: dict) -> None:
        """Nothing to restore: batches are a function of the step."""
