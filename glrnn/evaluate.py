"""Evaluate a run on any text source: loss, perplexity, bits per token and per byte.

    python -m glrnn.evaluate --run runs/latest [--source PATH|stdlib] [--seq-len N]
                             [--max-windows N] [--batch-size N]

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

import numpy as np
import tyro

from glrnn.cli import USER_ERRORS, report
from glrnn.config import ConfigError, check
from glrnn.data import make_data
from glrnn.data.text import load_documents, pack, validation_windows
from glrnn.positions import check_room
from glrnn.runs.load import load_run
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


if __name__ == "__main__":
    sys.exit(main())
