"""Stream text from a trained run: ``python generate.py --run runs/latest --prompt "def "``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tyro

from glrnn.cli import USER_ERRORS, report
from glrnn.config import check
from glrnn.generate import Generator, TextStream, load_run
from glrnn.sampling import Sampling


@dataclass(frozen=True)
class Args:
    run: str = "runs/latest"  # run directory (config.json + checkpoints/)
    prompt: str = ""  # text to continue; empty starts from BOS alone
    max_new_tokens: int = 256
    temperature: float = 0.8  # 0: greedy
    top_k: int = 0  # sample among the k most likely tokens; 0: all
    top_p: float = 1.0  # sample among the most likely tokens holding this much probability
    min_p: float = 0.0  # drop tokens less likely than min_p x the most likely one
    repetition_penalty: float = 1.0  # > 1 makes tokens already in the text less likely
    seed: int = 0


def main(argv: Sequence[str] | None = None) -> int:
    args = tyro.cli(Args, args=sys.argv[1:] if argv is None else argv, description=__doc__)
    try:
        check(args.max_new_tokens > 0, "--max-new-tokens", args.max_new_tokens, "> 0")
        sampling = Sampling(args.temperature, args.top_k, args.top_p, args.min_p,
                            args.repetition_penalty)
        _, tokenizer, model, params, _ = load_run(args.run)
    except USER_ERRORS as e:
        return report(e)
    prompt = np.asarray([[tokenizer.bos_id, *tokenizer.encode(args.prompt)]], np.int32)
    stream = TextStream(tokenizer, lambda text: print(text, end="", flush=True))
    stream(prompt[:, 1:])
    Generator(model, params).generate(
        prompt, args.max_new_tokens, sampling=sampling, seed=args.seed,
        stop_id=tokenizer.eos_id, pad_id=tokenizer.pad_id, on_chunk=stream)
    stream.close()
    print(flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
