"""Simple codes' bits per sample on the speech-digits recipe's tokens, the scale for its
validation bits per sample.

    python bench/speech_entropy.py ../shared/data/fsdd/recordings

The recipe's tokens (8-bit μ-law at 8 kHz, every WAV file of the folder, split as the recipe
splits them: 5 % of the files by a hash of their name) and, for all files and for each split:
the unigram entropy of the samples, and the entropy of each sample's difference (mod 256) from
the previous one in its file (the first sample of a file coded alone), in bits per sample.
"""

from __future__ import annotations

import argparse

import numpy as np

from glrnn.audio import read_wav
from glrnn.data.text import Document, source_files, split_documents
from glrnn.tokenizer import from_name
from glrnn.train.recipes import load_recipe


def entropy(values: np.ndarray) -> float:
    """Shannon entropy of the values' empirical distribution, in bits."""
    p = np.bincount(values) / len(values)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def describe(name: str, files: list[np.ndarray]) -> None:
    """One table row over the token arrays of ``files``."""
    flat = np.concatenate(files)
    deltas = np.concatenate([np.r_[f[:1], np.diff(f) % 256] for f in files])
    print(f"| {name} | {len(files)} | {len(flat):,} | {entropy(flat):.3f} | "
          f"{entropy(deltas):.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", help="the folder of WAV files (--data.source of the recipe)")
    args = parser.parse_args()
    data = load_recipe("speech-digits").data
    tokenizer = from_name(data.tokenizer)
    root, paths = source_files(args.source)
    wavs = {p.relative_to(root).as_posix(): p for p in paths if p.suffix.lower() == ".wav"}
    tokens = {key: np.asarray(tokenizer.encode_audio(*read_wav(path)), np.int64)
              for key, path in sorted(wavs.items())}
    train, val = split_documents([Document(key, "") for key in tokens], data.val_fraction,
                                 data.seed)
    print("| tokens | files | samples | unigram bits/sample | difference bits/sample |")
    print("|---|---:|---:|---:|---:|")
    describe("all", list(tokens.values()))
    describe("train split", [tokens[d.key] for d in train])
    describe("validation split", [tokens[d.key] for d in val])


if __name__ == "__main__":
    main()
