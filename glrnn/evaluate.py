"""Evaluate a run on any text source: loss, perplexity, bits per token and per byte.

    python -m glrnn.evaluate --run runs/latest [--source PATH|stdlib] [--seq-len N]
                             [--max-windows N] [--batch-size N] [--json]

A continuous-input run (``model.input=continuous``) is scored the same way on frames (its own
validation split, or every document of a folder of .npy/.npz files normalised by the run's
recorded statistics): nats per frame and per value, and the squared error (glrnn/train/
frame_task.py).

The source (default: the run's own validation split) is read and packed the way training reads
text (``BOS doc EOS ...``, documents reset the recurrent state) and scored whole with the latest
checkpoint: windows of ``seq-len`` + 1 tokens (default: the run's) with stride ``seq-len`` from
its start, the last one shorter, so every token but the first is a target exactly once and each
window starts from a zero state, as in training. ``--max-windows N`` scores N whole windows
spread evenly over it instead (the windows the training loop's estimate takes, with
``data.val_windows`` = N: a streamed split's first N).
The report says how many tokens and windows it scored. Bits per byte divide by the UTF-8 bytes
of the scored tokens, so runs with different tokenizers compare.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import tyro

from glrnn.cli import USER_ERRORS, report
from glrnn.config import Config, ConfigError, check
from glrnn.data import make_data
from glrnn.data.frames import FrameData, in_batches, source_windows
from glrnn.data.text import load_documents, pack, split_windows, validation_windows
from glrnn.density import FrameDensity
from glrnn.frames import FrameCodec
from glrnn.models import LanguageModel
from glrnn.positions import check_room
from glrnn.runs.load import load_run
from glrnn.train.frame_task import evaluate as evaluate_frame_batches
from glrnn.train.frame_task import make_eval_step as make_frame_eval_step
from glrnn.train.lm_task import make_eval_step, padded_batches, score


@dataclass(frozen=True)
class Args:
    run: str = "runs/latest"  # run directory
    source: str = ""  # text file, folder or "stdlib"; empty: the run's validation split
    seq_len: int = 0  # window length; 0: the run's
    max_windows: int = 0  # 0: score the whole source; N: N whole windows spread evenly over it
    batch_size: int = 16  # windows per evaluation batch
    json: bool = False  # print the report as one JSON object


def eval_windows(args: Args, cfg, tokenizer) -> Iterable[np.ndarray]:
    """The windows (of at most seq_len + 1 tokens) to score from the chosen source."""
    seq_len = args.seq_len or cfg.data.seq_len
    if not args.source:  # --max-windows: the windows the loop's estimate would take
        data = make_data(replace(cfg.data, seq_len=seq_len,
                                 val_windows=args.max_windows or cfg.data.val_windows), tokenizer)
        return data.val if args.max_windows else data.val_split()
    # text that is not UTF-8 is read as the run read its training text
    docs = load_documents(args.source, encoding_errors=cfg.data.encoding_errors)
    tokens = pack(docs, tokenizer)
    if len(tokens) < seq_len + 1:
        raise ConfigError(f"--source {args.source!r} has {len(tokens)} tokens, fewer than one "
                          f"window of --seq-len + 1 = {seq_len + 1}")
    if args.max_windows:
        return validation_windows(tokens, seq_len, args.max_windows)
    return split_windows([tokens], seq_len)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and evaluate; the exit status."""
    return evaluate(tyro.cli(Args, args=sys.argv[1:] if argv is None else argv,
                             description=__doc__))


def check_args(args: Args) -> None:
    """ConfigError (one line naming the option) for an option that is wrong whatever the run."""
    check(args.seq_len >= 0, "--seq-len", args.seq_len, ">= 0")
    check(args.max_windows >= 0, "--max-windows", args.max_windows, ">= 0 (0: the whole source)")
    check(args.batch_size >= 1, "--batch-size", args.batch_size, ">= 1")


def evaluate(args: Args) -> int:
    """Score the run ``args.run`` as ``args`` ask and print the report; the exit status."""
    try:
        check_args(args)
        cfg, tokenizer, model, params, step = load_run(args.run)
        check_room(cfg.model, args.seq_len, "--seq-len")
        if cfg.model.continuous:
            return evaluate_frames(args, cfg, tokenizer, model, params, step)
        windows = eval_windows(args, cfg, tokenizer)
        batches = padded_batches(windows, args.batch_size, args.seq_len or cfg.data.seq_len)
        result = score(make_eval_step(model, tokenizer.bos_id), params, {}, batches,
                       tokenizer.byte_lengths())
    except USER_ERRORS as e:
        return report(e)
    source = args.source or "its validation split"
    scope = f"{args.max_windows} windows at most" if args.max_windows else "whole"
    if args.json:
        print(json.dumps({"run": args.run, "step": step, "source": source, "scope": scope,
                          **result}))
        return 0
    print(f"{args.run} (step {step}) on {source} ({scope}): {result['tokens']:,} tokens in "
          f"{result['windows']:,} windows")
    print(f"loss {result['loss']:.4f} nats/token, perplexity {result['ppl']:.3f}, "
          f"{result['bits_per_token']:.4f} bits/token, {result['bpb']:.4f} bits/byte")
    return 0


def evaluate_frames(args: Args, cfg: Config, codec: FrameCodec, model: LanguageModel,
                    params: Any, step: int) -> int:
    """Score a continuous-input run on frames and print the report (ConfigError for a bad
    source reaches :func:`evaluate`)."""
    seq_len = args.seq_len or cfg.data.seq_len
    if args.source:
        windows = source_windows(args.source, codec, seq_len, args.max_windows)
    else:  # --max-windows: the windows the loop's estimate would take
        data = FrameData(replace(cfg.data, seq_len=seq_len,
                                 val_windows=args.max_windows or cfg.data.val_windows),
                         cfg.model.frame_width, codec=codec)
        windows = data.val if args.max_windows else data.val_split()
    batches = in_batches(windows, args.batch_size)
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
