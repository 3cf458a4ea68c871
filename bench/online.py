"""Online learning against BPTT: time and memory of one gradient of a small LRU language model.

    python bench/online.py [--lengths 1024 4096 16384] [--batch 4] [--width 64] [--layers 2]
                           [--rules bptt online_full] [--repeats 3]

Both rules compute the gradient of the mean next-token cross entropy of a batch of random
tokens with glrnn.online.gradient_function (the training loop's call). Memory is XLA's own
account of the compiled gradient (``memory_analysis()``): temporaries, and the peak estimate
temporaries + arguments + outputs. BPTT's temporaries grow with the length (the activations of
every position are kept for the backward pass); online_full's stay flat (a loop over positions
carrying states, sensitivities and the gradient sum). Prints one table, BPTT the reference.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
from timing import machine, timed

from glrnn.config import ModelConfig
from glrnn.losses import token_cross_entropy
from glrnn.models import LanguageModel
from glrnn.online import gradient_function
from glrnn.params import init_params

VOCAB = 256


def measure(rule: str, model: LanguageModel, params: dict, tokens: jax.Array,
            repeats: int) -> tuple[float, float, float]:
    """(seconds per gradient, temp bytes, peak bytes) of ``rule`` on ``tokens`` [B, L+1]."""
    grad_fn = gradient_function(rule, model, token_cross_entropy)
    args = (params, tokens[:, :-1], tokens[:, 1:])
    mem = jax.jit(grad_fn).lower(*args).compile().memory_analysis()
    seconds, temp = timed(grad_fn, *args, repeats=repeats)
    peak = temp + mem.argument_size_in_bytes + mem.output_size_in_bytes
    return seconds, temp, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--rules", nargs="+", default=["bptt", "online_full"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cfg = ModelConfig(vocab_size=VOCAB, d_model=args.width, d_state=args.width,
                      n_layers=args.layers, mixer="lru")
    model = LanguageModel(cfg)
    print(f"# {machine()}; LRU LM, {args.layers} layers, width {args.width}, batch "
          f"{args.batch}, median of {args.repeats}")
    print("| L | rule | ms / gradient | tokens/s | temp MiB | peak MiB | time vs bptt |"
          " peak vs bptt |")
    print("|---|---|---|---|---|---|---|---|")
    for length in args.lengths:
        tokens = jax.random.randint(jax.random.key(length), (args.batch, length + 1), 0, VOCAB)
        params = init_params(model, jax.random.key(0), tokens[:, :8])[0]
        rows = {rule: measure(rule, model, params, tokens, args.repeats) for rule in args.rules}
        ref = rows.get("bptt", next(iter(rows.values())))
        for rule, (seconds, temp, peak) in rows.items():
            print(f"| {length} | {rule} | {seconds * 1e3:.1f} | "
                  f"{args.batch * length / seconds:,.0f} | {temp / 2**20:.2f} | "
                  f"{peak / 2**20:.2f} | {seconds / ref[0]:.2f}x | {peak / ref[2]:.3f}x |",
                  flush=True)


if __name__ == "__main__":
    jnp.zeros(())  # initialise the backend before timing anything
    main()
