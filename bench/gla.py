"""The matrix-state primitive (``glrnn.scan.gated_linear_attention``): its three methods in one run.

    python bench/gla.py                                 # B 8, 4 heads, K = V = 64; L 1k, 4k, 16k
    python bench/gla.py --lengths 4096 --batch 2 --methods associative
    python bench/gla.py --lengths 256 --batch 16 --methods chunked --chunk-size 16 32 64 128 --real
    python bench/gla.py --methods chunked --grad autodiff custom  # the chunked form's gradients

For each length and method: forward+backward tokens/s (a sum of squares of y and the final
state, differentiated with respect to q, k, v, log|a| and the phase) and XLA's temporary memory
for that program (``compiled.memory_analysis()``). A program whose temporaries exceed
``--max-gb`` (default: 80 % of this machine's memory) is compiled and its memory reported, but
not run ("does not fit"). The methods agree before timing (checked at the shortest length).
``--chunk-size`` takes several sizes (a chunked row each); ``--real``: real decays (no phase);
``--grad`` how the chunked form is differentiated, JAX's autodiff and/or its adjoint ("custom",
the ``custom_vjp``): a chunked row each (the other methods: autodiff).
"""

from __future__ import annotations

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np
from timing import machine, timed

from glrnn.scan import gated_linear_attention
from glrnn.scan.matrix import GRADS

METHODS = ("chunked", "associative", "sequential")


def inputs(batch: int, length: int, heads: int, width: int,
           real: bool = False) -> tuple[jax.Array, ...]:
    """q, k, v, log|a| (|a| in [0.9, 1)) and, unless ``real``, the phase:
    [batch, length, heads, width]."""
    ks = jax.random.split(jax.random.PRNGKey(0), 5)
    shape = (batch, length, heads, width)
    q = jax.random.normal(ks[0], shape) / np.sqrt(width)
    k, v = jax.random.normal(ks[1], shape), jax.random.normal(ks[2], shape)
    log_a = jnp.log(jax.random.uniform(ks[3], shape, minval=0.9, maxval=1.0))
    if real:
        return q, k, v, log_a
    return q, k, v, log_a, jax.random.uniform(ks[4], shape, minval=0.0, maxval=0.3)


def machine_gb() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--width", type=int, default=64, help="K = V per head")
    parser.add_argument("--chunk-size", type=int, nargs="+", default=[64])
    parser.add_argument("--real", action="store_true", help="real decays (no phase)")
    parser.add_argument("--grad", nargs="+", default=["autodiff"], choices=GRADS,
                        help="the chunked form's gradient: autodiff, custom (its custom_vjp)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--max-gb", type=float, default=0.8 * machine_gb())
    args = parser.parse_args()

    kind = "real" if args.real else "complex"
    print(f"# {machine()}; B={args.batch} heads={args.heads} K=V={args.width}; {kind} "
          "transitions")
    header = ("L", "method", "chunk", "grad", "fwd+bwd tok/s", "temp MB", "x associative")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    reference = None  # (loss, gradient) of the first run at the first length
    for i, length in enumerate(args.lengths):
        x = inputs(args.batch, length, args.heads, args.width, args.real)
        argnums = tuple(range(len(x)))
        rows = {}
        runs = [(m, c, g) for m in args.methods
                for c in (args.chunk_size if m == "chunked" else [0])
                for g in (args.grad if m == "chunked" else ["autodiff"])]
        for method, chunk, how in runs:
            def loss(*x, method=method, chunk=chunk, how=how):
                y, h = gated_linear_attention(*x, method=method, chunk_size=chunk or 64,
                                              grad=how)
                return jnp.sum(y**2) + jnp.sum(jnp.abs(h) ** 2)

            grad = jax.grad(loss, argnums=argnums)
            temp = jax.jit(grad).lower(*x).compile().memory_analysis().temp_size_in_bytes
            if temp > args.max_gb * 2**30:
                rows[method, chunk, how] = (None, temp)
                continue
            if i == 0:  # every run computes the same loss and gradient as the first
                got = jax.jit(jax.value_and_grad(loss, argnums=argnums))(*x)
                reference = got if reference is None else reference
                for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(reference), strict=True):
                    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4 * np.abs(b).max())
            seconds, temp = timed(grad, *x, repeats=args.repeats)
            rows[method, chunk, how] = (args.batch * length / seconds, temp)
        base = rows.get(("associative", 0, "autodiff"), (None, 0))[0]
        for (method, chunk, how), (rate, temp) in rows.items():
            speed = "does not fit" if rate is None else f"{rate:,.0f}"
            ratio = "" if rate is None or base is None else f"{rate / base:.2f}"
            print(f"| {length} | {method} | {chunk or ''} | {how} | {speed} | "
                  f"{temp / 2**20:,.0f} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
