"""Evaluate a run on any text source: loss, perplexity, bits per token and per byte.

    python -m glrnn.evaluate --run runs/latest [--source PATH|stdlib] [--seq-len N]
                             [--max-windows N] [--batch-size N] [--json]

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

import numpy as np
import tyro

from glrnn.cli import USER_ERRORS, report
from glrnn.config import ConfigError, check
from glrnn.data import make_data
from glrnn.data.text import load_documents, pack, split_windows, validation_windows
from glrnn.runs.load import load_run
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
    args = tyro.cli(Args, args=sys.argv[1:] if argv is None else argv, description=__doc__)
    try:
        check(args.seq_len >= 0, "--seq-len", args.seq_len, ">= 0")
        check(args.max_windows >= 0, "--max-windows", args.max_windows,
              ">= 0 (0: the whole source)")
        check(args.batch_size >= 1, "--batch-size", args.batch_size, ">= 1")
        cfg, tokenizer, model, params, step = load_run(args.run)
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


if __name__ == "__main__":
    sys.exit(main())
