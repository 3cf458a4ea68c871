"""Where batch-1 decoding's time goes: the model's step alone, the generator's chunks, and the
weights' matrix-vector products alone.

    python bench/decode_parts.py [--recipe stdlib-bytes] [--tokens 512] [--chunks 64 256]

With the recipe's model (random parameters), microseconds per token, batch 1, best of 3:

1. a bare ``lax.scan`` of ``argmax`` + the model's ``step`` (no sampling, no chunking);
2. ``Generator.decode`` (greedy) with each chunk size;
3. a chain of one vector-matrix product per 2-D weight of the model (each input depends on the
   previous product), the weights' bytes read once per token, and the rate that reading is.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from timing import machine

from glrnn.generate import Generator
from glrnn.models import LanguageModel
from glrnn.params import init_params
from glrnn.train.recipes import load_recipe


def per_token(run: Callable[[], object], tokens: int) -> float:
    """Seconds per token of ``run`` (which makes ``tokens`` tokens): best of 3, after one call."""
    jax.block_until_ready(run())
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        jax.block_until_ready(run())
        best = min(best, time.perf_counter() - start)
    return best / tokens


def bare_scan(model: LanguageModel, params, carry, token, tokens: int) -> Callable[[], object]:
    """``tokens`` greedy steps in one ``lax.scan``."""
    def body(state, _):
        tok, c = state
        logits, c = model.apply({"params": params}, tok, c, method="step")
        return (jnp.argmax(logits, -1).astype(jnp.int32), c), None

    run = jax.jit(lambda t, c: jax.lax.scan(body, (t, c), None, length=tokens)[0])
    return lambda: run(token, carry)


def matvec_chain(weights: list[jax.Array], tokens: int) -> Callable[[], object]:
    """``tokens`` rounds of one vector-matrix product per weight, each fed by the last."""
    def body(s, _):
        for w in weights:
            s = (jnp.full((w.shape[0],), s, w.dtype) @ w)[0] * 1e-6
        return s, None

    run = jax.jit(lambda s: jax.lax.scan(body, s, None, length=tokens)[0])
    return lambda: run(jnp.float32(1.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="stdlib-bytes")
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--chunks", type=int, nargs="+", default=[64, 256])
    args = parser.parse_args()
    cfg = load_recipe(args.recipe).model
    model = LanguageModel(cfg)
    params, _ = init_params(model, jax.random.key(0), jnp.zeros((1, 8), jnp.int32))
    prompt = np.random.default_rng(0).integers(0, cfg.vocab_size, (1, 16)).astype(np.int32)
    print(f"# {machine()}; recipe {args.recipe} ({cfg.mixer}, {cfg.n_layers} x {cfg.d_model}), "
          f"batch 1, {args.tokens} tokens")

    generator = Generator(model, params, chunk=max(args.chunks))
    logits, carry = generator.prefill(prompt, np.ones_like(prompt))
    token = jnp.argmax(logits, -1).astype(jnp.int32)
    step = per_token(bare_scan(model, params, carry, token, args.tokens), args.tokens)
    print(f"bare lax.scan of argmax + step: {step * 1e6:.1f} us per token")
    for chunk in args.chunks:
        gen = Generator(model, params, chunk=chunk)
        logits, carry = gen.prefill(prompt, np.ones_like(prompt))
        t = per_token(lambda g=gen, lg=logits, c=carry: g.decode(lg, c, args.tokens).tokens,
                      args.tokens)
        print(f"Generator.decode, chunks of {chunk}: {t * 1e6:.1f} us per token "
              f"({t / step - 1:+.0%} on the bare scan)")

    weights = [w for w in jax.tree.leaves(params) if w.ndim == 2]
    n_bytes = sum(w.size * w.dtype.itemsize for w in weights)
    t = per_token(matvec_chain(weights, args.tokens), args.tokens)
    print(f"chain of {len(weights)} vector-matrix products over {n_bytes / 1e6:.2f} MB of "
          f"weights: {t * 1e6:.1f} us per token, {n_bytes / t / 1e9:.0f} GB/s")


if __name__ == "__main__":
    main()
