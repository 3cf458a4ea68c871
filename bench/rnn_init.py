"""The spectral radius of the dense-RNN initialisations, sampled: what rescaled Glorot promises.

    python bench/rnn_init.py [--widths 170 256 512 1024] [--seeds 16] [--quantile 0.9]

For each width n, ``--seeds`` matrices of each initialisation (glrnn/mixers/rnn_init.py, the
same keys for glorot and rescaled_glorot): the mean spectral radius and the share of matrices
whose radius exceeds one; beside them the rescaling constant s_n and Rider's asymptotic mean of
Glorot's radius, 1 + √(γ_n/4n) + 0.5772/√(4nγ_n). Rescaled Glorot aims at P(ρ ≤ 1) = quantile.
"""

from __future__ import annotations

import argparse
import math

import jax
import numpy as np
from timing import machine

from glrnn.mixers.rnn_init import recurrent_matrix_init, rescaled_glorot_scale, rider_gamma

EULER = 0.5772156649  # the mean of a standard Gumbel variable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[170, 256, 512, 1024])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--quantile", type=float, default=0.9)
    args = parser.parse_args()
    init = jax.jit(jax.vmap(recurrent_matrix_init, in_axes=(0, None, None, None, None)),
                   static_argnums=(1, 2, 3, 4))
    print(f"# {machine()}; {args.seeds} matrices per width, quantile {args.quantile}")
    print("| n | s_n | Rider mean ρ (Glorot) | mean ρ Glorot | P(ρ > 1) Glorot | mean ρ rescaled "
          "| P(ρ ≤ 1) rescaled | mean ρ fixed (0.99) |")
    print("|---|---|---|---|---|---|---|---|")
    for n in args.widths:
        keys = jax.random.split(jax.random.key(n), args.seeds)
        radii = {kind: np.abs(np.linalg.eigvals(np.asarray(
            init(keys, n, kind, 0.99, args.quantile)))).max(axis=1)
                 for kind in ("glorot", "rescaled_glorot", "fixed")}
        gamma = rider_gamma(n)
        rider = 1 + math.sqrt(gamma / (4 * n)) + EULER / math.sqrt(4 * n * gamma)
        print(f"| {n} | {rescaled_glorot_scale(n, args.quantile):.3f} | {rider:.4f} | "
              f"{radii['glorot'].mean():.4f} | {(radii['glorot'] > 1).mean():.2f} | "
              f"{radii['rescaled_glorot'].mean():.4f} | "
              f"{(radii['rescaled_glorot'] <= 1).mean():.2f} | {radii['fixed'].mean():.4f} |",
              flush=True)


if __name__ == "__main__":
    main()
