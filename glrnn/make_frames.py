"""Write a folder of frames for a continuous-input run: the log-mel frames of WAV recordings.

    python -m glrnn.make_frames --source ../shared/data/fsdd/recordings --out ~/frames/fsdd-mel

Every ``.wav`` under ``--source`` (one document) becomes ``OUT/<its path>.npy``, float32
[frames, mels]: natural-log mel energies (HTK mel scale, unnormalised triangular filters),
periodic Hann windows of ``--n-fft`` samples every ``--hop`` samples, after 1 step of 16-bit
dither (Kaldi's default, seeded by the file's name, so the folder is the same every time).
Files at another rate are resampled to ``--rate`` first. Train on the folder with
``model.input=continuous model.frame_width=MELS`` (recipes/speech_mel.py).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro

from glrnn.audio import log_mel, read_wav, resample
from glrnn.cli import USER_ERRORS, report
from glrnn.config import ConfigError, check
from glrnn.data.text import source_files
from glrnn.files import check_folder, write_atomic


@dataclass(frozen=True)
class Args:
    source: str  # a WAV file, a folder of them (searched below) or a glob
    out: str  # the folder to write the .npy files into (made if missing)
    rate: int = 8000  # samples per second the transform runs at (files are resampled to it)
    mels: int = 40  # mel bands: the frame width
    n_fft: int = 256  # window and FFT length in samples (32 ms at 8 kHz)
    hop: int = 80  # samples between frames (10 ms at 8 kHz)
    dither: float = 1.0  # Gaussian noise in 16-bit steps added before the transform (0: none)


def convert(args: Args) -> list[Path]:
    """Write the .npy of every WAV file of ``args.source``; the paths written."""
    root, files = source_files(args.source)
    wavs = [p for p in files if p.suffix.lower() == ".wav"]
    if not wavs:
        raise ConfigError(f"--source={args.source!r}: no .wav files among {len(files)}")
    out = check_folder(Path(args.out), "--out")
    written = []
    for path in wavs:
        samples, rate = read_wav(path)
        key = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
        seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
        frames = log_mel(resample(samples, rate, args.rate), args.rate, args.mels, args.n_fft,
                         args.hop, args.dither, seed)
        target = (out / key).with_suffix(".npy")
        written.append(write_atomic(target, lambda f, a=frames: np.save(f, a)))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    args = tyro.cli(Args, args=sys.argv[1:] if argv is None else argv, description=__doc__)
    try:
        for name in ("rate", "mels", "n_fft", "hop"):
            check(getattr(args, name) > 0, f"--{name.replace('_', '-')}", getattr(args, name),
                  "> 0")
        check(args.dither >= 0, "--dither", args.dither, ">= 0")
        written = convert(args)
    except USER_ERRORS as e:
        return report(e)
    frames = sum(np.load(p, mmap_mode="r").shape[0] for p in written)
    print(f"{len(written)} files, {frames:,} frames of {args.mels} log-mel values written to "
          f"{args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
