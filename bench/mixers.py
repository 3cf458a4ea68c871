"""Time-mixer throughput: every glrnn mixer beside the PyPI peers, one layer, forward+backward.

    pip install --no-deps flax-gated-linear-rnn==1.0.3 recurrentgemma==1.0.1   # the peers
    pip install jaxtyping                                     # (the "bench" extra's versions)
    python bench/mixers.py [--lengths 1024 4096] [--batch 8] [--width 256] [--repeats 3]
                           [--mixers lru gateloop ...]   # default: every registered mixer

Every mixer in ``glrnn.mixers.MIXERS`` (so mixers added later are picked up) runs as one layer
of width 256 (state width 256) on x [B, L, 256], in the same process as the peers at the same
shapes:

* recurrentgemma's ``RGLRU`` layer (Griffin's RG-LRU, block-diagonal gates with ``--heads``
  blocks, as glrnn's ``rglru`` here) with its ``LINEAR_NATIVE`` (``lax.scan``) and
  ``ASSOCIATIVE_NATIVE`` (``lax.associative_scan``) scans, both differentiated by autodiff;
* flax-gated-linear-rnn's ``GatedLinearRNN`` (the GateLoop author's layer: tied gates, output
  gate, associative scan), and its true-recurrence mode (``nn.scan``) beside glrnn's.

Before timing, glrnn's RG-LRU and GateLoop are checked to compute the peers' functions on the
same parameters. The loss is the sum of squares of the output, differentiated with respect to
every parameter and x. All layers of one length are compiled first, then timed in turn for
``--repeats`` rounds, and each one's fastest round is reported (on a shared machine the load
falls on all alike). Prints tokens/s forward and forward+backward, XLA's temporary memory of
the forward+backward, and the ratio of glrnn's RG-LRU to recurrentgemma's best scan and of
glrnn's GateLoop to the peer. One more row times glrnn's GateLoop with its recurrence taken out
(its matmuls and gates alone): the bound on what any implementation of that layer can reach.

recurrentgemma 1.0.1 pins typeguard<3, which the rest of the environment (tyro) cannot take; its
run-time type checks only run while tracing, so this script replaces ``typeguard.typechecked``
with the identity before importing it (the compiled programs are the same).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from timing import compile_call, fastest_interleaved, machine

from glrnn.config import AttentionConfig, GateLoopConfig, ModelConfig, RGLRUConfig
from glrnn.mixers import MIXERS, make_mixer

Forward = Callable[[Any, jax.Array], jax.Array]  # (params, x [B, L, H]) -> y [B, L, H]


@dataclass
class Layer:
    name: str
    params: Any
    forward: Forward


def glrnn_layer(name: str, cfg: ModelConfig, x: jax.Array) -> Layer:
    module = make_mixer(cfg)
    params = nn.meta.unbox(jax.jit(module.init)(jax.random.key(0), x[:, :8]))["params"]
    return Layer(name, params, lambda p, x: module.apply({"params": p}, x)[0])


def glrnn_layers(width: int, heads: int, length: int, x: jax.Array,
                 mixers: list[str]) -> list[Layer]:
    """The registered ``mixers`` (attention: global over the whole length), plus GateLoop's
    true recurrence and attention with a sliding window of 256 when those mixers are in."""
    base = {"d_model": width, "d_state": width, "rglru": RGLRUConfig(gate_blocks=heads),
            "attention": AttentionConfig(heads=heads, max_len=length)}
    layers = [glrnn_layer(f"glrnn {name}", ModelConfig(mixer=name, **base), x)
              for name in mixers]
    if "gateloop" in mixers:
        layers.append(glrnn_layer("glrnn gateloop (true recurrence)", ModelConfig(
            mixer="gateloop", gateloop=GateLoopConfig(recurrent=True), **base), x))
    if "attention" in mixers:
        window = {**base, "attention": AttentionConfig(heads=heads, window=256, max_len=length)}
        layers.append(glrnn_layer("glrnn attention (window 256)",
                                  ModelConfig(mixer="attention", **window), x))
    return layers


def recurrentgemma_layers(width: int, heads: int, x: jax.Array) -> list[Layer]:
    import typeguard

    typeguard.typechecked = lambda f=None, **_: f  # see the module docstring
    from recurrentgemma.jax import ScanType
    from recurrentgemma.jax.layers import RGLRU

    # positions from 1: no document starts inside the sequence (recurrentgemma treats position
    # 0 as a reset and drops the √(1 − a²) scaling there)
    positions = jnp.broadcast_to(jnp.arange(1, x.shape[1] + 1), x.shape[:2])
    layers = []
    for scan in (ScanType.LINEAR_NATIVE, ScanType.ASSOCIATIVE_NATIVE):
        module = RGLRU(width=width, num_heads=heads, scan_type=scan)
        params = module.init(jax.random.key(0), x[:, :8], positions[:, :8])["params"]

        def forward(p, x, module=module):
            pos = jnp.broadcast_to(jnp.arange(1, x.shape[1] + 1), x.shape[:2])
            return module.apply({"params": p}, x, pos)[0]

        layers.append(Layer(f"recurrentgemma RGLRU {scan.name}", params, forward))
    return layers


def peer_gateloop_layers(width: int) -> list[Layer]:
    from flax_gated_linear_rnn import GatedLinearRNN

    layers = []
    for recurrent in (False, True):
        module = GatedLinearRNN(d_model=width, d_h=width, use_true_recurrence=recurrent)
        params = module.init(jax.random.key(0), jnp.zeros((1, 8, width)))["params"]
        name = "flax-gated-linear-rnn GatedLinearRNN" + (" (true recurrence)" * recurrent)
        layers.append(Layer(name, params,
                            lambda p, x, module=module: module.apply({"params": p}, x)[1]))
    return layers


def rglru_params_as_glrnn(peer: Any) -> dict:
    """recurrentgemma's RGLRU parameters in glrnn's layout: Λ = −a_param (σ(Λ) =
    exp(−softplus(a_param))), the gates fused per block (recurrence gate first)."""
    return {"lam": -peer["a_param"],
            "gate_kernel": jnp.concatenate([peer["a_gate"]["w"], peer["input_gate"]["w"]], -1),
            "gate_bias": jnp.concatenate([peer["a_gate"]["b"], peer["input_gate"]["b"]], -1)}


def gateloop_params_as_glrnn(peer: Any) -> tuple[dict, dict]:
    """The peer's GatedLinearRNN parameters in glrnn's layout, and the output bias glrnn's
    read-out has no place for (added to glrnn's output when comparing). The peer's fused
    projection is [candidate, input gate, output gate] with forget = 1 − input gate; glrnn's is
    [forget, candidate, output] with input = 1 − forget, so the forget block is the negated input
    gate block (σ(−u) = 1 − σ(u))."""
    w, b = peer["proj"]["kernel"], peer["proj"]["bias"]
    (w_z, w_i, w_o), (b_z, b_i, b_o) = jnp.split(w, 3, axis=1), jnp.split(b, 3)
    return ({"w_in": jnp.concatenate([-w_i, w_z, w_o], axis=1),
             "b_in": jnp.concatenate([-b_i, b_z, b_o]), "w_out": peer["out_proj"]["kernel"]},
            peer["out_proj"]["bias"])


def gateloop_without_recurrence(layer: Layer) -> Layer:
    """glrnn's GateLoop with the recurrence taken out (h_t = i_t ⊙ z_t): its matmuls and gates
    alone, the least time any implementation of the layer with these matmuls can take."""
    from glrnn.mixers.gateloop import gateloop_preactivation, gateloop_readout, gates_of

    def forward(p: dict, x: jax.Array) -> jax.Array:
        layout = ("forget", "candidate", "output")
        g = gates_of(gateloop_preactivation(x, p["w_in"], p["b_in"]), layout, jnp.tanh,
                     jax.nn.sigmoid)
        return gateloop_readout(g.input * g.candidate, g.output, p["w_out"], jnp.tanh, x.dtype)

    return Layer("glrnn gateloop without its recurrence (bound)", layer.params, forward)


def check_same_functions(layers: dict[str, Layer], x: jax.Array) -> None:
    """glrnn's RG-LRU and GateLoop compute the peers' functions on the peers' parameters."""
    x = x[:, :256]
    rg = layers["recurrentgemma RGLRU LINEAR_NATIVE"]
    ours = layers["glrnn rglru"]
    np.testing.assert_allclose(jax.jit(ours.forward)(rglru_params_as_glrnn(rg.params), x),
                               jax.jit(rg.forward)(rg.params, x), rtol=2e-4, atol=2e-5)
    for suffix in ("", " (true recurrence)"):
        peer = layers["flax-gated-linear-rnn GatedLinearRNN" + suffix]
        ours = layers["glrnn gateloop" + suffix]
        params, bias = gateloop_params_as_glrnn(peer.params)
        if suffix:
            z, i, o = jnp.split(peer.params["model"]["recurrent_proj"]["kernel"], 3, axis=1)
            params["w_rec"] = jnp.concatenate([-i, z, o], axis=1)
        np.testing.assert_allclose(jax.jit(ours.forward)(params, x) + bias,
                                   jax.jit(peer.forward)(peer.params, x), rtol=2e-4, atol=2e-5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4,
                        help="RG-LRU gate blocks (both sides) and attention heads")
    parser.add_argument("--repeats", type=int, default=5,
                        help="rounds; each layer's fastest round is reported")
    parser.add_argument("--mixers", nargs="+", default=list(MIXERS), choices=list(MIXERS),
                        help="glrnn's mixers to build (gateloop and rglru always are: the "
                        "checks against the peers need them)")
    parser.add_argument("--only", nargs="*", default=None,
                        help="time only the layers whose name contains one of these")
    args = parser.parse_args()

    print(f"# {machine()}; B={args.batch} width={args.width} heads={args.heads}")
    header = ("L", "layer", "fwd tok/s", "fwd+bwd tok/s", "fwd+bwd temp MB")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header), flush=True)
    ratios = []
    for length in args.lengths:
        x = jax.random.normal(jax.random.key(1), (args.batch, length, args.width))
        layers = {layer.name: layer for layer in [
            *glrnn_layers(args.width, args.heads, length, x,
                          [m for m in MIXERS if m in {*args.mixers, "gateloop", "rglru"}]),
            *recurrentgemma_layers(args.width, args.heads, x),
            *peer_gateloop_layers(args.width)]}
        check_same_functions(layers, x)
        bound = gateloop_without_recurrence(layers["glrnn gateloop"])
        layers[bound.name] = bound
        tokens = args.batch * length
        calls, temps = {}, {}
        for name, layer in layers.items():
            if args.only and not any(part in name for part in args.only):
                continue

            def loss(p, x, forward=layer.forward):
                return jnp.sum(forward(p, x).astype(jnp.float32) ** 2)

            calls[(name, "fwd")], _ = compile_call(layer.forward, layer.params, x)
            calls[(name, "bwd")], temps[name] = compile_call(jax.grad(loss, (0, 1)),
                                                             layer.params, x)
        best = fastest_interleaved(calls, args.repeats)
        speed = {name: tokens / best[(name, "bwd")] for name in temps}
        for name, temp in temps.items():
            print(f"| {length} | {name} | {tokens / best[(name, 'fwd')]:,.0f} | "
                  f"{speed[name]:,.0f} | {temp / 2**20:,.0f} |", flush=True)
        ratios.append((length, speed))
    print()
    for length, speed in ratios:
        best_rg = max((v for k, v in speed.items() if k.startswith("recurrentgemma")),
                      default=None)
        for ours, peer in (("glrnn rglru", best_rg),
                           ("glrnn gateloop", speed.get("flax-gated-linear-rnn GatedLinearRNN")),
                           ("glrnn gateloop (true recurrence)",
                            speed.get("flax-gated-linear-rnn GatedLinearRNN (true recurrence)"))):
            if ours in speed and peer:
                print(f"L={length}: {ours} / peer (fwd+bwd) = {speed[ours] / peer:.2f}")


if __name__ == "__main__":
    main()
