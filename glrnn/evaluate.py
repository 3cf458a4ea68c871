"""Evaluate a run on any text source: loss, perplexity, bits per token and per byte.

    python -m glrnn.evaluate --run runs/latest [--source PATH|stdlib] [--seq-len N]
                             [--max-windows N] [--batch-size N]

A continuous-input run (``model.input=continuous``) is scored the same way on frames (its own
validation split, or every document of a folder of .npy/.npz files normalised by the run's
recorded statistics): nats per frame and per value, and the squared error (glrnn/train/
frame_task.py).

The source (default: the run's own validation split) is read and packed the way training reads
text (``BOS doc EOS ...``, documents reset the recurrent state), cut into contiguous windows of
``seq-len`` + 1 tokens (default: the run's) spread evenly over it, and scored with the latest
checkpoint. Bits per byte divide by the UTF-8 bytes of the scored tokens, so runs with different
tokenizers compare.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import tyro

from glrnn.cli import USER_ERRORS, report
from glrnn.config import Config, ConfigError, check
from glrnn.data import make_data
from glrnn.data.frames import FrameData, source_windows
from glrnn.data.text import load_documents, pack, validation_windows
from glrnn.density import FrameDensity
from glrnn.frames import FrameCodec
from glrnn.models import LanguageModel
from glrnn.positions import check_room
from glrnn.runs.load import load_run
from glrnn.train.frame_task import evaluate as evaluate_frame_batches
from glrnn.train.frame_task import make_eval_step as make_frame_eval_step
from glrnn.train.lm_task import evaluate, make_eval_step


@dataclass(frozen=True)
class Args:
    run: str = "runs/latest"  # run directory
    source: str = ""  # text file, folder or "stdlib"; empty: the run's validation split
    seq_len: int = 0  # window length; 0: the run's
    max_windows: int = 256  # evaluate at most this many windows
    batch_size: int = 16  # windows per evaluation batch


def eval_windows(args: Args, cfg, tokenizer) -> np.ndarray:
    """[N, seq_len + 1] windows of the chosen source."""
    seq_len = args.seq_len or cfg.data.seq_len
    if not args.source:
        return make_data(replace(cfg.data, seq_len=seq_len), tokenizer).val[:args.max_windows]
    # text that is not UTF-8 is read as the run read its training text
    docs = load_documents(args.source, encoding_errors=cfg.data.encoding_errors)
    tokens = pack(docs, tokenizer)
    if len(tokens) < seq_len + 1:
        raise ConfigError(f"--source {args.source!r} has {len(tokens)} tokens, fewer than one "
                          f"window of --seq-len + 1 = {seq_len + 1}")
    return validation_windows(tokens, seq_len, args.max_windows)


def main(argv: Sequence[str] | None = None) -> int:
    args = tyro.cli(Args, args=sys.argv[1:] if argv is None else argv, description=__doc__)
    try:
        check(args.seq_len >= 0, "--seq-len", args.seq_len, ">= 0")
        check(args.max_windows >= 1, "--max-windows", args.max_windows, ">= 1")
        check(args.batch_size >= 1, "--batch-size", args.batch_size, ">= 1")
        cfg, tokenizer, model, params, step = load_run(args.run)
        check_room(cfg.model, args.seq_len, "--seq-len")
        if cfg.model.continuous:
            return evaluate_frames(args, cfg, tokenizer, model, params, step)
        windows = eval_windows(args, cfg, tokenizer)
        batches = [windows[i:i + args.batch_size]
                   for i in range(0, len(windows), args.batch_size)]
        result = evaluate(make_eval_step(model, tokenizer.bos_id), params, {}, batches,
                          tokenizer.byte_lengths())
    except USER_ERRORS as e:
        return report(e)
    tokens = int(windows[:, 1:].size)
    print(f"{args.run} (step {step}) on {args.source or 'its validation split'}: "
          f"{tokens:,} tokens in {len(windows)} windows")
    print(f"loss {result['val_loss']:.4f} nats/token, perplexity {result['val_ppl']:.3f}, "
          f"{result['val_bits_per_token']:.4f} bits/token, {result['val_bpb']:.4f} bits/byte")
    return 0


def evaluate_frames(args: Args, cfg: Config, codec: FrameCodec, model: LanguageModel,
                    params: Any, step: int) -> int:
    """Score a continuous-input run on frames (ConfigError for a bad source reaches ``main``)."""
    seq_len = args.seq_len or cfg.data.seq_len
    if args.source:
        windows = source_windows(args.source, codec, seq_len, args.max_windows)
    else:
        data = FrameData(replace(cfg.data, seq_len=seq_len), cfg.model.frame_width, codec=codec)
        windows = data.val[:args.max_windows]
    batches = [windows[i:i + args.batch_size] for i in range(0, len(windows), args.batch_size)]
    density = FrameDensity.of(cfg.model)
    result = evaluate_frame_batches(make_frame_eval_step(model, density), params, {}, batches,
                                    density, codec.log_scale)
    frames = int((windows[:, 1:, -1] == 0).sum())
    print(f"{args.run} (step {step}) on {args.source or 'its validation split'}: "
          f"{frames:,} frames in {len(windows)} windows")
    if density.head == "gmm":
        print(f"loss {result['val_loss']:.4f} nats/frame ({result['val_nats_per_value']:.4f} "
              f"per value; {result['val_data_nats']:.4f} nats/frame of the data as stored), "
              f"mse {result['val_mse']:.4f}")
    else:
        print(f"mse {result['val_mse']:.4f} per value (normalised)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
