"""Decoding speed: constant time and memory per token, whatever the context.

    python bench/decode.py [--recipe stdlib-bytes] [--tokens 512] [--chunk 64]
                           [--contexts 64 1024 16384 65536]

Uses the recipe's model with random parameters (speed does not depend on their values):

1. tokens/s of greedy decoding at batch 1 and batch 64 (``Generator.decode``: ``step`` inside a
   compiled ``lax.scan`` of ``chunk`` tokens);
2. time per token and memory after prefilling contexts of 64, 1k, 16k and 64k tokens (or
   ``--contexts``): the carry's bytes and the decode loop's XLA temporaries, which do not grow
   with the context;
3. the alternative without a carry: re-running the whole 1k-token prefix through the parallel
   model for every new token, and the speed-up of the carry over it.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from timing import machine

from glrnn.generate import GREEDY, Generator
from glrnn.models import LanguageModel
from glrnn.params import init_params
from glrnn.train.recipes import load_recipe


def decode_seconds(generator: Generator, logits, carry, tokens: int) -> float:
    """Seconds per decoded token (best of 3, compiled first)."""
    generator.decode(logits, carry, generator.chunk)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        generator.decode(logits, carry, tokens)
        best = min(best, time.perf_counter() - start)
    return best / tokens


def tree_bytes(tree) -> int:
    return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="stdlib-bytes")
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--chunk", type=int, default=64)
    parser.add_argument("--contexts", type=int, nargs="+", default=[64, 1024, 16384, 65536])
    args = parser.parse_args()

    cfg = load_recipe(args.recipe).model
    model = LanguageModel(cfg)
    params, _ = init_params(model, jax.random.key(0), jnp.zeros((1, 8), jnp.int32))
    generator = Generator(model, params, chunk=args.chunk, prefill_chunk=4096)
    rng = np.random.default_rng(0)
    print(f"# {machine()}; recipe {args.recipe} ({cfg.mixer}, {cfg.n_layers} x {cfg.d_model}); "
          f"decode chunk {args.chunk}")

    print("| batch | decode tok/s |\n|---|---|")
    for batch in (1, 64):
        prompt = rng.integers(0, cfg.vocab_size, (batch, 16)).astype(np.int32)
        logits, carry = generator.prefill(prompt, np.ones_like(prompt))
        seconds = decode_seconds(generator, logits, carry, args.tokens)
        print(f"| {batch} | {batch / seconds:,.0f} |", flush=True)

    decode_fn = jax.jit(generator._decode_fn, static_argnames=("settings",))
    print("\n| context | ms per token | carry KB | decode temp KB |\n|---|---|---|---|")
    per_token = {}
    for context in args.contexts:
        prompt = rng.integers(0, cfg.vocab_size, (1, context)).astype(np.int32)
        logits, carry = generator.prefill(prompt, np.ones_like(prompt))
        per_token[context] = decode_seconds(generator, logits, carry, args.tokens)
        temp = decode_fn.lower(params, logits, carry, None, jax.random.key(0), np.int32(1),
                               settings=GREEDY).compile().memory_analysis()
        print(f"| {context:,} | {per_token[context] * 1e3:.4f} | {tree_bytes(carry) / 1024:.1f} | "
              f"{temp.temp_size_in_bytes / 1024:.1f} |", flush=True)
    longest, shortest = max(args.contexts), min(args.contexts)
    print(f"\ntime per token at {longest:,} / at {shortest:,}: "
          f"{per_token[longest] / per_token[shortest]:.3f}")

    prefix = jnp.asarray(rng.integers(0, cfg.vocab_size, (1, 1024)).astype(np.int32))
    forward = jax.jit(lambda p, t: model.apply({"params": p}, t)[0][:, -1])
    forward(params, prefix).block_until_ready()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        forward(params, prefix).block_until_ready()
        best = min(best, time.perf_counter() - start)
    print(f"re-running the 1k prefix per token: {best * 1e3:.2f} ms per token; the carry: "
          f"{per_token[1024] * 1e3:.4f} ms ({best / per_token[1024]:,.0f}x faster)")


if __name__ == "__main__":
    main()
