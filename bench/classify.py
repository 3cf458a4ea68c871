"""Classifier training throughput at the Long Range Arena's ListOps size, glrnn against a plain
implementation of the same model.

    python bench/classify.py [--length 2000] [--layers 6] [--width 128] [--batch 8]

The model is a ListOps classifier (20-token vocabulary, 10 classes, mean pooling) of ``layers``
pre-norm blocks of width H = N = ``width`` (RMSNorm, GLU channel mixer) with LRU or GateLoop
time mixers, trained at length L by a jitted step (cross entropy, gradients, clipping, AdamW,
state donated). The reference computes the same function from the same parameters in plain JAX,
the way the papers' pseudo-code does: complex (LRU) or real (GateLoop) matmuls around a
``jax.lax.associative_scan`` differentiated by autodiff, vmapped over the batch (its logits are
checked against glrnn's before timing). Prints examples/s and tokens/s of training, the ratio
to the reference, and the XLA temporary memory of one step.
"""

from __future__ import annotations

import argparse
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from lru_layer import reference_lru
from timing import machine, timed

from glrnn.config import ClassifierConfig, ModelConfig
from glrnn.data.tasks.base import TaskInfo
from glrnn.models import Classifier
from glrnn.params import init_params

VOCAB, CLASSES = 20, 10


def diagonal_scan(a: jax.Array, b: jax.Array) -> jax.Array:
    """h_t = a_t h_{t-1} + b_t over axis 0 by ``jax.lax.associative_scan``."""

    def combine(left, right):
        return right[0] * left[0], right[0] * left[1] + right[1]

    return jax.lax.associative_scan(combine, (a, b))[1]


def reference_gateloop(p: dict, x: jax.Array) -> jax.Array:
    """GateLoop (tied gates, output gate) for one sequence x [L, H] -> [L, H]."""
    forget, candidate, output = jnp.split(x @ p["w_in"] + p["b_in"], 3, axis=-1)
    f = jax.nn.sigmoid(forget)
    h = diagonal_scan(f, (1 - f) * jnp.tanh(candidate))
    return (jax.nn.sigmoid(output) * jnp.tanh(h)) @ p["w_out"]


def rms_norm(p: dict, x: jax.Array) -> jax.Array:
    return x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + 1e-6) * p["scale"]


def reference_logits(params: Any, tokens: jax.Array, mixer: str) -> jax.Array:
    """The classifier written out: tokens [B, L] -> logits [B, classes]."""
    mix = {"lru": reference_lru, "gateloop": reference_gateloop}[mixer]
    x = params["encoder"]["embedding"][tokens]
    blocks = sorted((k for k in params["backbone"]), key=lambda k: int(k.split("_")[1]))
    for name in blocks:
        p = params["backbone"][name]
        x = x + jax.vmap(lambda s, p=p: mix(p["mixer"], s))(rms_norm(p["norm1"], x))
        up = rms_norm(p["norm2"], x) @ p["channel_mixer"]["up"]["kernel"]
        gate, value = jnp.split(up + p["channel_mixer"]["up"]["bias"], 2, axis=-1)
        down = p["channel_mixer"]["down"]
        x = x + (jax.nn.gelu(gate) * value) @ down["kernel"] + down["bias"]
    pooled = rms_norm(params["norm"], x).mean(axis=1)
    return pooled @ params["head"]["kernel"] + params["head"]["bias"]


def train_step(logits_fn, optimizer):
    def step(params, opt_state, tokens, labels):
        def loss(p):
            return optax.softmax_cross_entropy_with_integer_labels(logits_fn(p, tokens),
                                                                   labels).mean()

        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=2000)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mixers", nargs="+", default=["lru", "gateloop"])
    args = parser.parse_args()

    info = TaskInfo("listops", n_classes=CLASSES, seq_len=args.length, vocab_size=VOCAB)
    rng = np.random.default_rng(0)
    tokens = jnp.asarray(rng.integers(1, VOCAB, (args.batch, args.length)), jnp.int32)
    labels = jnp.asarray(rng.integers(0, CLASSES, args.batch), jnp.int32)
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-3))
    print(f"# {machine()}; L={args.length}, {args.layers} layers, H=N={args.width}, "
          f"batch {args.batch}")
    print("| mixer | implementation | examples/s | tokens/s | x reference | step temp MB |")
    print("|---|---|---|---|---|---|")
    for mixer in args.mixers:
        cfg = ModelConfig(vocab_size=VOCAB, d_model=args.width, d_state=args.width,
                          n_layers=args.layers, mixer=mixer, mlp_ratio=2.0,
                          classifier=ClassifierConfig(pooling="mean"))
        model = Classifier(cfg, info)
        params, _ = init_params(model, jax.random.key(0), tokens[:2])
        ours = lambda p, t, model=model: model.apply({"params": p}, t)[0]  # noqa: E731
        plain = lambda p, t, mixer=mixer: reference_logits(p, t, mixer)  # noqa: E731
        np.testing.assert_allclose(jax.jit(ours)(params, tokens[:2, :256]),
                                   jax.jit(plain)(params, tokens[:2, :256]),
                                   rtol=2e-3, atol=2e-3)
        rows = []
        for name, fn in (("reference", plain), ("glrnn", ours)):
            fresh = jax.tree.map(jnp.copy, params)  # the step donates (deletes) its inputs
            seconds, temp = timed(train_step(fn, optimizer), fresh, optimizer.init(fresh),
                                  tokens, labels, repeats=args.repeats, donate=(0, 1))
            rows.append((name, args.batch / seconds, temp))
        for name, rate, temp in rows:
            print(f"| {mixer} | {name} | {rate:,.2f} | {rate * args.length:,.0f} | "
                  f"{rate / rows[0][1]:.2f} | {temp / 2**20:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
