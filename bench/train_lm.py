"""Language-model training throughput: glrnn's LRU and GateLoop LMs against the PyPI peer.

    pip install flax-gated-linear-rnn==1.0.3 --no-deps   # the peer (bench extra: .[bench])
    python bench/train_lm.py [--seq-len 512] [--batch 8] [--repeats 5] [--dtypes float32 bfloat16]

Three language models of about 10M parameters (byte vocabulary, 4 blocks, width 512) train at
L=512: glrnn with LRU mixers, glrnn with GateLoop mixers, and ``GatedLinearRNNLM`` of the
``flax-gated-linear-rnn`` package (the GateLoop author's reference, associative scan) with its
channel mixer widened to equal the parameter count. glrnn's models run in each of ``--dtypes``
(``model.dtype``: bfloat16 matmuls with float32 parameters and state); the peer, which has no
such setting, in float32. Each gets the same jitted step: next-token
cross entropy, gradients, global-norm clipping and AdamW, with parameters and optimizer state
donated. Prints tokens/s, the ratio to the peer, and MFU: model FLOPs per second (6 per matmul
parameter per token, the head counted, embedding lookups not) over this machine's matmul
throughput in the model's dtype, measured in the same run.
"""

from __future__ import annotations

import argparse
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from timing import machine, timed

from glrnn.config import ModelConfig
from glrnn.models import LanguageModel
from glrnn.train.flops import measure_peak_flops

VOCAB = 259  # glrnn's byte tokenizer


Model = tuple[Any, Any, tuple[str, ...]]  # (init(key, tokens), logits(params, tokens), lookups)


def glrnn_model(mixer: str, width: int, layers: int, dtype: str = "float32") -> Model:
    """(init, logits function, names of lookup-only embeddings) for a glrnn LM."""
    model = LanguageModel(ModelConfig(vocab_size=VOCAB, d_model=width, n_layers=layers,
                                      mixer=mixer, d_state=width, channel_mixer="glu",
                                      mlp_ratio=2.0, dtype=dtype))
    return model.init, lambda p, x: model.apply({"params": p}, x)[0], ()


def peer_model(width: int, layers: int, glu_params: int) -> Model:
    """The peer's GatedLinearRNNLM, its MLP hidden width chosen to match ``glu_params`` per
    block (its MLP has two matrices of width x hidden)."""
    from flax_gated_linear_rnn import GatedLinearRNNLM

    model = GatedLinearRNNLM(
        n_layer=layers, d_model=width, d_channel_mixing=glu_params // (2 * width), eps=1e-6,
        channel_mixing_dropout=0.0, time_mixing_dropout=0.0, input_vocab_size=VOCAB,
        output_vocab_size=VOCAB, max_seq_length=1, embedding_dropout=0.0,
        use_word_embedding=True, positional_encoding_mode="none", use_head=True, d_h=width)
    return (lambda key, x: model.init(key, x, training=False),
            lambda p, x: model.apply({"params": p}, x, training=False)[1], ("input_function",))


def matmul_params(params: Any, lookups: tuple[str, ...]) -> int:
    """Parameters of matrices used in matmuls: every array of rank >= 2 except lookup tables."""
    total = 0
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        names = {getattr(k, "key", None) for k in path}
        if leaf.ndim >= 2 and not names & set(lookups):
            total += leaf.size
    return total


def make_step(logits_fn: Any, optimizer: optax.GradientTransformation) -> Any:
    def loss_fn(params: Any, batch: jax.Array) -> jax.Array:
        logits = logits_fn(params, batch[:, :-1]).astype(jnp.float32)
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch[:, 1:]).mean()

    def step(params: Any, opt_state: Any, batch: jax.Array) -> tuple[Any, Any, jax.Array]:
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--peak-size", type=int, default=2048,
                        help="the square matmul that measures the peak FLOP/s")
    parser.add_argument("--dtypes", nargs="+", default=["float32"],
                        choices=["float32", "bfloat16"], help="glrnn's compute dtypes")
    args = parser.parse_args()

    peaks = {dtype: measure_peak_flops(args.peak_size, dtype=dtype)
             for dtype in {"float32", *args.dtypes}}
    print(f"# {machine()}; B={args.batch} L={args.seq_len} width={args.width} "
          f"layers={args.layers}; matmul peak " + ", ".join(
              f"{dtype} {peak / 1e9:.1f} GFLOP/s" for dtype, peak in peaks.items()))
    glu_params = 3 * args.width * int(2.0 * args.width)  # glrnn's GLU: in 2x hidden, out
    mixers = (("LRU", "lru"), ("GateLoop", "gateloop"))
    models = {(f"glrnn {name}" + ("" if dtype == "float32" else f" {dtype}"), dtype):
              glrnn_model(mixer, args.width, args.layers, dtype)
              for dtype in args.dtypes for name, mixer in mixers}
    models["peer GatedLinearRNNLM", "float32"] = peer_model(args.width, args.layers, glu_params)
    batch = jax.random.randint(jax.random.key(1), (args.batch, args.seq_len + 1), 0, VOCAB)
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-3))
    results = {}
    for (name, dtype), (init, logits_fn, lookups) in models.items():
        params = nn.meta.unbox(init(jax.random.key(0), batch[:1, :8]))["params"]
        n_params = sum(leaf.size for leaf in jax.tree.leaves(params))
        flops_per_token = 6 * matmul_params(params, lookups)
        seconds, temp = timed(make_step(logits_fn, optimizer), params, optimizer.init(params),
                              batch, repeats=args.repeats, donate=(0, 1))
        results[name] = (n_params, args.batch * args.seq_len / seconds,
                         flops_per_token / peaks[dtype], temp)
    peer_tps = results["peer GatedLinearRNNLM"][1]
    header = ("model", "params", "train tok/s", "x peer", "MFU", "temp MB")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, (n_params, tps, utilisation, temp) in results.items():
        print(f"| {name} | {n_params / 1e6:.2f}M | {tps:,.0f} | {tps / peer_tps:.2f} | "
              f"{tps * utilisation:.0%} | {temp / 2**20:,.0f} |")


if __name__ == "__main__":
    main()
