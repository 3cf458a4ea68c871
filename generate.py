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


@dataclass(frozen=True)
class Args:
    run: str = "runs/latest"  # run directory (config.json + checkpoints/)
    prompt: str = ""  # text to continue; empty starts from BOS alone
    max_new_tokens: int = 256
    temperature: float = 0.8  # 0: greedy
    top_k: int = 0  # sample among the k most likely tokens; 0: all
    seed: int = 0


def main(argv: Sequence[str] | None = None) -> int:
    args = tyro.cli(Args, args=sys.argv[1:] if argv is None else argv, description=__doc__)
    try:
        for name in ("max_new_tokens", "temperature", "top_k"):
            value = getattr(args, name)
            check(value >= 0, f"--{name.replace('_', '-')}", value, ">= 0")
        _, tokenizer, model, params, _ = load_run(args.run)
    except USER_ERRORS as e:
        return report(e)
    prompt = np.asarray([[tokenizer.bos_id, *tokenizer.encode(args.prompt)]], np.int32)
    stream = TextStream(tokenizer, lambda text: print(text, end="", flush=True))
    stream(prompt[:, 1:])
    Generator(model, params).generate(
        prompt, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
        seed=args.seed, stop_id=tokenizer.eos_id, on_chunk=stream)
    stream.close()
    print(flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
