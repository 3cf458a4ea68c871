"""LRU layer throughput: glrnn's scan methods against the paper's reference implementation.

    python bench/lru_layer.py [--lengths 1024 4096] [--batch 8] [--width 256] [--repeats 5]

The reference is the LRU paper's own pseudo-code (appendix A): complex matmuls, a complex
``jax.lax.associative_scan`` over time differentiated by autodiff, vmapped over the batch.
Both sides compute the same function with the same parameters (checked before timing), and the
loss is a sum of squares of the output, differentiated with respect to every parameter and x.
Prints one table: tokens/s forward and forward+backward, peak temp memory, ratio to the reference.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from timing import machine, timed

from glrnn.mixers.lru import LRU
from glrnn.params import init_params


def reference_lru(params: dict, x: jax.Array) -> jax.Array:
    """The paper's LRU forward for one sequence x [L, H] -> y [L, H]."""
    lam = jnp.exp(-jnp.exp(params["nu_log"]) + 1j * jnp.exp(params["theta_log"]))
    b_norm = (params["B_re"] + 1j * params["B_im"]) * jnp.exp(params["gamma_log"])[:, None]
    c = params["C_re"] + 1j * params["C_im"]
    lam_elements = jnp.repeat(lam[None], x.shape[0], axis=0)
    bu = jax.vmap(lambda u: b_norm @ u)(x)

    def binary_operator_diag(q_i, q_j):
        a_i, b_i = q_i
        a_j, b_j = q_j
        return a_j * a_i, a_j * b_i + b_j

    _, h = jax.lax.associative_scan(binary_operator_diag, (lam_elements, bu))
    return jax.vmap(lambda h_t, x_t: (c @ h_t).real + params["D"] * x_t)(h, x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--width", type=int, default=256, help="H = N")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chunk-size", type=int, default=64)
    parser.add_argument("--methods", nargs="+", default=["sequential", "associative", "chunked"])
    args = parser.parse_args()

    print(f"# {machine()}; B={args.batch} H=N={args.width}")
    header = ("L", "impl", "fwd tok/s", "fwd+bwd tok/s", "x ref", "fwd+bwd temp MB")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for length in args.lengths:
        x = jax.random.normal(jax.random.PRNGKey(1), (args.batch, length, args.width))
        tokens = args.batch * length
        rows: list[tuple[str, float, float, float]] = []
        ref_params = None
        for impl in ["reference", *args.methods]:
            method = "associative" if impl == "reference" else impl
            layer = LRU(args.width, args.width, 0.9, 0.999, np.pi / 10, method, args.chunk_size)
            params, _ = init_params(layer, jax.random.PRNGKey(0), x[:, :8])
            if impl == "reference":
                ref_params = params

                def forward(p, x):
                    return jax.vmap(lambda s: reference_lru(p, s))(x)
            else:
                def forward(p, x, layer=layer):
                    return layer.apply({"params": p}, x)[0]

                np.testing.assert_allclose(
                    jax.jit(forward)(params, x[:, :256]),
                    jax.jit(lambda p, s: jax.vmap(lambda q: reference_lru(p, q))(s))(
                        ref_params, x[:, :256]),
                    rtol=2e-3, atol=2e-3)

            def loss(p, x, forward=forward):
                return jnp.sum(forward(p, x) ** 2)

            fwd_s, _ = timed(forward, params, x, repeats=args.repeats)
            bwd_s, temp = timed(jax.grad(loss, (0, 1)), params, x, repeats=args.repeats)
            rows.append((impl, tokens / fwd_s, tokens / bwd_s, temp / 2**20))
        ref_bwd = rows[0][2]
        for impl, fwd, bwd, temp in rows:
            print(f"| {length} | {impl} | {fwd:,.0f} | {bwd:,.0f} | {bwd / ref_bwd:.2f} | "
                  f"{temp:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
