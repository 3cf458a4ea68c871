"""recurrentgemma's Griffin and Hawk <-> glrnn's hawk/griffin language model: the presets, the
parameter tree's expected shapes, and the two mappings (pure: names and reshapes, no I/O).

recurrentgemma (github.com/google-deepmind/recurrentgemma, ``recurrentgemma.jax``) names its
parameters ``embedder/input_embedding``, ``blocks.{i}/...``, ``final_norm/scale``; block i is a
recurrent block (``recurrent_block``: ``linear_y``, ``linear_x``, ``conv_1d``, ``rg_lru``,
``linear_out``) or a local attention block (``attention_block``: ``proj_q``, ``proj_k``,
``proj_v``, ``proj_final``), each followed by a gated MLP (``mlp_block``: ``ffw_up`` [2, D, F] +
[2, 1, 1, F], ``ffw_down``). The function it computes is glrnn's with these settings (every one a
config field that defaults to glrnn's own behaviour):

=============================================  ====================================================
recurrentgemma                                 glrnn
=============================================  ====================================================
RMSNorm x̂ · (scale + 1), ε 1e-6                ``norm="rmsnorm_plus_one"`` (scale as stored)
embedding · bf16(√width) (its bf16 cast)       ``embed_scale`` = that value, rounded the same way
decode with the embedding, tanh soft cap       ``tie_embeddings``, ``logit_softcap``
y = linear_out(gelu(linear_y x) ⊙ lru(conv(x)))  ``block="hawk"``/``"griffin"``: ``proj_in`` =
                                               [linear_y | linear_x], conv kernel reversed in time
RG-LRU log a = −8 σ(gate_a) softplus(a_param)  ``lam`` = −a_param, ``gate_kernel`` =
                                               [a_gate | input_gate] per head (``gate_blocks``)
segment_pos == 0: h = i ⊙ x, no √(1 − a²)      ``rglru.unscaled_start`` (a cleared carry starts
                                               a document)
gated MLP gelu(up₀) ⊙ up₁, with biases         ``channel_mixer="glu"``: ``up`` = [up₀ | up₁]
MQA, window W: sees t − W ≤ p ≤ t              ``kv_heads=1``, ``window = max_len = W + 1``
RoPE on the first half of each head            ``attention.rope_fraction=0.5``
proj_final with bias                           ``attention.out_bias``
=============================================  ====================================================

Presets: recurrentgemma's own (``recurrentgemma.common.Preset``): RecurrentGemma 2B and 9B
(``recurrentgemma-2b``, ``recurrentgemma-9b``, also called ``griffin-2b``/``griffin-9b``) and the
paper's Griffin and Hawk 7B. Their widths, heads, layers and the hypers a parameter tree cannot
show (√width embedding scale, window, soft cap) are restated here (tests/test_convert.py checks
them against the package). ``auto`` reads the shapes from the tree, as recurrentgemma's
``GriffinConfig.from_flax_params_or_variables`` does, and takes those three hypers as given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np

from glrnn.config import AttentionConfig, ConfigError, ModelConfig, RGLRUConfig

Tree = dict[str, Any]  # a nested dict of arrays
Path = tuple[str, ...]
RECURRENT, ATTENTION = "recurrent", "attention"
CONV_WIDTH = 4  # recurrentgemma's Conv1D temporal width (not configurable there)
RG_LRU_C = 8.0  # log a = -8 · σ(gate) · softplus(a_param)
ROPE_BASE = 10_000.0  # recurrentgemma's _MAX_WAVELENGTH


@dataclass(frozen=True)
class GriffinSpec:
    """recurrentgemma's ``GriffinConfig``, framework-neutral."""

    vocab_size: int
    width: int  # d_model
    mlp_width: int  # the MLP's expanded width
    heads: int  # attention heads and RG-LRU gate blocks
    lru_width: int
    block_types: tuple[str, ...]  # RECURRENT or ATTENTION per block
    scale_embeddings: bool  # embeddings · √width (rounded to bfloat16)
    window: int  # attention_window_size: a query sees itself and the `window` before it
    softcap: float  # logits_soft_cap; 0: none


def griffin_pattern(n_layers: int) -> tuple[str, ...]:
    """recurrentgemma's Griffin pattern: two recurrent blocks, then an attention block."""
    return tuple(ATTENTION if i % 3 == 2 else RECURRENT for i in range(n_layers))


def _preset(width: int, heads: int, lru_width: int, blocks: tuple[str, ...], scale: bool,
            window: int, softcap: float) -> dict[str, Any]:
    return {"width": width, "mlp_width": 3 * width, "heads": heads, "lru_width": lru_width,
            "block_types": blocks, "scale_embeddings": scale, "window": window,
            "softcap": softcap}


# recurrentgemma.common.Preset.config_dict, by name (vocab_size comes from the checkpoint)
PRESETS: dict[str, dict[str, Any]] = {
    "recurrentgemma-2b": _preset(2560, 10, 2560, griffin_pattern(26), True, 2048, 30.0),
    "recurrentgemma-9b": _preset(4096, 16, 4096, griffin_pattern(38), True, 2048, 30.0),
    "griffin-7b": _preset(4096, 32, 5632, griffin_pattern(32), False, 1024, 0.0),
    "hawk-7b": _preset(4096, 32, 5632, (RECURRENT,) * 32, False, 1024, 0.0),
}
PRESETS["griffin-2b"] = PRESETS["recurrentgemma-2b"]
PRESETS["griffin-9b"] = PRESETS["recurrentgemma-9b"]
# the names of recurrentgemma.common.Preset members, for the test that compares them
RG_PRESET_NAMES = {"recurrentgemma-2b": "RECURRENT_GEMMA_2B_V1",
                   "recurrentgemma-9b": "RECURRENT_GEMMA_9B_V1",
                   "griffin-7b": "GRIFFIN_PAPER_7B", "hawk-7b": "HAWK_PAPER_7B"}
AUTO = "auto"


def unwrap(tree: Mapping[str, Any]) -> Mapping[str, Any]:
    """The parameters of a checkpoint saved as ``{"params": params}`` (recurrentgemma's
    ``save_parameters``) or as the parameters themselves."""
    return tree["params"] if set(tree) == {"params"} else tree


def _get(tree: Mapping[str, Any], path: Path) -> Any:
    """The leaf at ``path``, or None where the tree has no such entry."""
    for key in path:
        if not isinstance(tree, Mapping) or key not in tree:
            return None
        tree = tree[key]
    return tree


def _shape(tree: Mapping[str, Any], path: Path, what: str) -> tuple[int, ...]:
    leaf = _get(tree, path)
    if leaf is None or isinstance(leaf, Mapping):
        raise ConfigError(f"{what}: no parameter {'/'.join(path)}")
    return tuple(leaf.shape)


def infer_spec(tree: Mapping[str, Any], scale_embeddings: bool, window: int, softcap: float,
               what: str = "the checkpoint") -> GriffinSpec:
    """The spec a parameter tree shows (vocabulary, widths, heads, block types), with the three
    hypers it cannot show; ConfigError naming the first parameter it needs and lacks."""
    vocab, width = _shape(tree, ("embedder", "input_embedding"), what)
    mlp_width = _shape(tree, ("blocks.0", "mlp_block", "ffw_up", "w"), what)[-1]
    heads = lru_width = None
    kinds = []
    while (block := _get(tree, (f"blocks.{len(kinds)}",))) is not None:
        name = f"blocks.{len(kinds)}"
        if "recurrent_block" in block:
            heads, size, _ = _shape(tree, (name, "recurrent_block", "rg_lru", "a_gate", "w"), what)
            lru_width = heads * size
            kinds.append(RECURRENT)
        elif "attention_block" in block:
            head_dim = _shape(tree, (name, "attention_block", "proj_k", "kernel"), what)[1]
            heads = width // head_dim
            kinds.append(ATTENTION)
        else:
            raise ConfigError(f"{what}: {name} is neither a recurrent nor an attention block "
                              f"(it holds {', '.join(sorted(block))})")
    return GriffinSpec(vocab, width, mlp_width, heads, lru_width or width, tuple(kinds),
                       scale_embeddings, window, softcap)


def preset_spec(name: str, vocab_size: int) -> GriffinSpec:
    """The spec of preset ``name`` with the checkpoint's vocabulary."""
    return GriffinSpec(vocab_size=vocab_size, **PRESETS[name])


def expected_shapes(spec: GriffinSpec) -> dict[Path, tuple[int, ...]]:
    """Every parameter of recurrentgemma's Griffin for ``spec``, in order, with its shape."""
    d, f, h, w = spec.width, spec.mlp_width, spec.heads, spec.lru_width
    shapes: dict[Path, tuple[int, ...]] = {("embedder", "input_embedding"): (spec.vocab_size, d)}
    for i, kind in enumerate(spec.block_types):
        b = f"blocks.{i}"
        shapes[(b, "temporal_pre_norm", "scale")] = (d,)
        if kind == RECURRENT:
            r = (b, "recurrent_block")
            for name in ("linear_y", "linear_x"):
                shapes[(*r, name, "kernel")], shapes[(*r, name, "bias")] = (d, w), (w,)
            shapes[(*r, "conv_1d", "w")], shapes[(*r, "conv_1d", "b")] = (CONV_WIDTH, w), (w,)
            shapes[(*r, "rg_lru", "a_param")] = (w,)
            for gate in ("a_gate", "input_gate"):
                shapes[(*r, "rg_lru", gate, "w")] = (h, w // h, w // h)
                shapes[(*r, "rg_lru", gate, "b")] = (h, w // h)
            shapes[(*r, "linear_out", "kernel")], shapes[(*r, "linear_out", "bias")] = (w, d), (d,)
        else:
            a = (b, "attention_block")
            shapes[(*a, "proj_q", "kernel")] = (d, d)
            shapes[(*a, "proj_k", "kernel")] = shapes[(*a, "proj_v", "kernel")] = (d, d // h)
            shapes[(*a, "proj_final", "kernel")], shapes[(*a, "proj_final", "bias")] = (d, d), (d,)
        shapes[(b, "channel_pre_norm", "scale")] = (d,)
        m = (b, "mlp_block")
        shapes[(*m, "ffw_up", "w")], shapes[(*m, "ffw_up", "b")] = (2, d, f), (2, 1, 1, f)
        shapes[(*m, "ffw_down", "kernel")], shapes[(*m, "ffw_down", "bias")] = (f, d), (d,)
    shapes[("final_norm", "scale")] = (d,)
    return shapes


def leaf_paths(tree: Mapping[str, Any], prefix: Path = ()) -> list[Path]:
    """The paths of every leaf of a nested mapping, in its order."""
    paths = []
    for key, value in tree.items():
        if isinstance(value, Mapping):
            paths += leaf_paths(value, (*prefix, key))
        else:
            paths.append((*prefix, key))
    return paths


def check_tree(tree: Mapping[str, Any], spec: GriffinSpec, what: str) -> None:
    """ConfigError naming the first parameter of ``spec`` that ``tree`` lacks or holds in
    another shape, or else the first parameter it holds that ``spec`` has no place for.
    ``tree``'s leaves need only a ``shape`` (arrays, or a checkpoint's metadata)."""
    for path, shape in expected_shapes(spec).items():
        leaf = _get(tree, path)
        if leaf is None or isinstance(leaf, Mapping):
            raise ConfigError(f"{what}: parameter {'/'.join(path)} is missing (expected shape "
                              f"{shape})")
        if tuple(leaf.shape) != shape:
            raise ConfigError(f"{what}: parameter {'/'.join(path)} has shape "
                              f"{tuple(leaf.shape)}, expected {shape}")
    extra = [p for p in leaf_paths(tree) if p not in expected_shapes(spec)]
    if extra:
        raise ConfigError(f"{what}: parameter {'/'.join(extra[0])} has no place in this layout")


def check_spec(spec: GriffinSpec, what: str) -> None:
    """ConfigError where glrnn cannot hold the layout: heads must divide both widths, the
    attention blocks must come every k-th block, the MLP width be a whole multiple's worth."""
    if spec.width % spec.heads or spec.lru_width % spec.heads:
        raise ConfigError(f"{what}: {spec.heads} heads do not divide the width {spec.width} "
                          f"and the RG-LRU width {spec.lru_width}")
    attention_every(spec.block_types, what)
    if int(spec.mlp_width / spec.width * spec.width) != spec.mlp_width:
        raise ConfigError(f"{what}: MLP width {spec.mlp_width} is not a width glrnn's "
                          f"model.mlp_ratio can give with d_model {spec.width}")


def attention_every(block_types: tuple[str, ...], what: str) -> int:
    """k such that blocks k, 2k, ... (from 1) are the attention blocks; 0 for none.
    ConfigError for a pattern glrnn's layouts cannot express."""
    if ATTENTION not in block_types:
        return 0
    k = block_types.index(ATTENTION) + 1
    if tuple(ATTENTION if (i + 1) % k == 0 else RECURRENT
             for i in range(len(block_types))) != block_types:
        raise ConfigError(f"{what}: blocks {', '.join(block_types)}: glrnn's griffin layout "
                          "puts attention at every k-th block only")
    return k


def sqrt_width_bf16(width: int) -> float:
    """recurrentgemma's embedding scale: √width cast to bfloat16 (``Embedder.encode``)."""
    return float(jnp.sqrt(jnp.float32(width)).astype(jnp.bfloat16))


def model_config(spec: GriffinSpec, what: str = "the checkpoint") -> ModelConfig:
    """glrnn's ModelConfig computing recurrentgemma's Griffin/Hawk of ``spec``."""
    check_spec(spec, what)
    every = attention_every(spec.block_types, what)
    span = spec.window + 1  # the query and the window before it
    return ModelConfig(
        vocab_size=spec.vocab_size, d_model=spec.width, n_layers=len(spec.block_types),
        mixer="rglru", block="griffin" if every else "hawk", attention_every=every,
        channel_mixer="glu", mlp_ratio=spec.mlp_width / spec.width, norm="rmsnorm_plus_one",
        tie_embeddings=True, conv_width=CONV_WIDTH, rnn_width=spec.lru_width,
        rglru=RGLRUConfig(c=RG_LRU_C, gate_blocks=spec.heads, unscaled_start=True),
        attention=AttentionConfig(heads=spec.heads, kv_heads=1, window=span, max_len=span,
                                  rope_base=ROPE_BASE, rope_fraction=0.5, out_bias=True),
        embed_scale=sqrt_width_bf16(spec.width) if spec.scale_embeddings else 1.0,
        logit_softcap=spec.softcap)


def spec_of(cfg: ModelConfig) -> GriffinSpec:
    """The recurrentgemma spec of a glrnn model; ConfigError naming the first setting
    recurrentgemma's Griffin cannot compute."""
    scales = {1.0: False, sqrt_width_bf16(cfg.d_model): True}
    needed = [("mixer", cfg.mixer, "rglru"), ("channel_mixer", cfg.channel_mixer, "glu"),
              ("norm", cfg.norm, "rmsnorm_plus_one"), ("tie_embeddings", cfg.tie_embeddings, True),
              ("bidirectional", cfg.bidirectional, False), ("conv_width", cfg.conv_width, 4),
              ("rglru.c", cfg.rglru.c, RG_LRU_C), ("rglru.unscaled_start",
                                                   cfg.rglru.unscaled_start, True)]
    if cfg.block not in ("hawk", "griffin"):
        raise ConfigError(f"model.block={cfg.block!r}: recurrentgemma holds 'hawk' or "
                          "'griffin' models")
    heads = cfg.rglru.gate_blocks
    if cfg.attention_period:
        a = cfg.attention
        needed += [("attention.heads", a.heads, heads), ("attention.kv_heads", a.kv_heads, 1),
                   ("attention.rope_fraction", a.rope_fraction, 0.5),
                   ("attention.rope_base", a.rope_base, ROPE_BASE),
                   ("attention.out_bias", a.out_bias, True)]
        if not a.window:
            raise ConfigError("model.attention.window=0: recurrentgemma's attention is local "
                              "(expected a window)")
    for name, value, want in needed:
        if value != want:
            raise ConfigError(f"model.{name}={value!r}: recurrentgemma's Griffin needs {want!r}")
    if cfg.embed_scale not in scales:
        raise ConfigError(f"model.embed_scale={cfg.embed_scale!r}: recurrentgemma scales "
                          f"embeddings by 1 or {sqrt_width_bf16(cfg.d_model)!r} (√d_model in "
                          "bfloat16)")
    hidden = max(1, int(cfg.mlp_ratio * cfg.d_model))
    blocks = tuple(ATTENTION if cfg.attention_period and (i + 1) % cfg.attention_period == 0
                   else RECURRENT for i in range(cfg.n_layers))
    window = max(cfg.attention.window - 1, 0)  # glrnn's window counts the query itself
    return GriffinSpec(cfg.vocab_size, cfg.d_model, hidden, heads, cfg.recurrent_width, blocks,
                       scales[cfg.embed_scale], window, cfg.logit_softcap)


# --- the mappings ---


def to_glrnn(tree: Mapping[str, Any], spec: GriffinSpec) -> Tree:
    """recurrentgemma's parameters (checked by :func:`check_tree`) -> glrnn's LanguageModel
    parameters, float32 numpy arrays."""
    t = lambda *path: np.asarray(_get(tree, path), np.float32)  # noqa: E731
    blocks = {}
    for i, kind in enumerate(spec.block_types):
        b = f"blocks.{i}"
        up_w, up_b = t(b, "mlp_block", "ffw_up", "w"), t(b, "mlp_block", "ffw_up", "b")
        block = {
            "norm1": {"scale": t(b, "temporal_pre_norm", "scale")},
            "norm2": {"scale": t(b, "channel_pre_norm", "scale")},
            "channel_mixer": {
                "up": {"kernel": np.concatenate([up_w[0], up_w[1]], axis=-1),
                       "bias": np.concatenate([up_b[0, 0, 0], up_b[1, 0, 0]])},
                "down": {"kernel": t(b, "mlp_block", "ffw_down", "kernel"),
                         "bias": t(b, "mlp_block", "ffw_down", "bias")}}}
        if kind == RECURRENT:
            r = lambda *p, b=b: t(b, "recurrent_block", *p)  # noqa: E731
            block["mixer"] = {
                "proj_in": {"kernel": np.concatenate([r("linear_y", "kernel"),
                                                      r("linear_x", "kernel")], axis=-1),
                            "bias": np.concatenate([r("linear_y", "bias"), r("linear_x", "bias")])},
                "proj_out": {"kernel": r("linear_out", "kernel"), "bias": r("linear_out", "bias")},
                "mixer": {
                    "conv": {"kernel": r("conv_1d", "w")[::-1].copy(), "bias": r("conv_1d", "b")},
                    "mixer": {"lam": -r("rg_lru", "a_param"),
                              "gate_kernel": np.concatenate([r("rg_lru", "a_gate", "w"),
                                                             r("rg_lru", "input_gate", "w")], -1),
                              "gate_bias": np.concatenate([r("rg_lru", "a_gate", "b"),
                                                           r("rg_lru", "input_gate", "b")], -1)}}}
        else:
            a = lambda *p, b=b: t(b, "attention_block", *p)  # noqa: E731
            block["mixer"] = {
                "qkv": {"kernel": np.concatenate([a("proj_q", "kernel"), a("proj_k", "kernel"),
                                                  a("proj_v", "kernel")], axis=-1)},
                "out": {"kernel": a("proj_final", "kernel"), "bias": a("proj_final", "bias")}}
        blocks[f"blocks_{i}"] = block
    return {"embed": {"embedding": t("embedder", "input_embedding")},
            "backbone": blocks, "norm": {"scale": t("final_norm", "scale")}}


def from_glrnn(params: Mapping[str, Any], spec: GriffinSpec) -> Tree:
    """glrnn's LanguageModel parameters (a model of :func:`spec_of`) -> recurrentgemma's
    parameter tree, float32 numpy arrays; the inverse of :func:`to_glrnn`, exactly."""
    t = lambda *path: np.asarray(_get(params, path), np.float32)  # noqa: E731
    f, w = spec.mlp_width, spec.lru_width
    tree: Tree = {"embedder": {"input_embedding": t("embed", "embedding")}}
    for i, kind in enumerate(spec.block_types):
        g = lambda *p, i=i: t("backbone", f"blocks_{i}", *p)  # noqa: E731
        up_w, up_b = g("channel_mixer", "up", "kernel"), g("channel_mixer", "up", "bias")
        block: Tree = {
            "temporal_pre_norm": {"scale": g("norm1", "scale")},
            "channel_pre_norm": {"scale": g("norm2", "scale")},
            "mlp_block": {
                "ffw_up": {"w": np.stack([up_w[:, :f], up_w[:, f:]]),
                           "b": np.stack([up_b[:f], up_b[f:]]).reshape(2, 1, 1, f)},
                "ffw_down": {"kernel": g("channel_mixer", "down", "kernel"),
                             "bias": g("channel_mixer", "down", "bias")}}}
        if kind == RECURRENT:
            proj_in, bias_in = g("mixer", "proj_in", "kernel"), g("mixer", "proj_in", "bias")
            gates, gate_bias = (g("mixer", "mixer", "mixer", "gate_kernel"),
                                g("mixer", "mixer", "mixer", "gate_bias"))
            size = gates.shape[1]
            block["recurrent_block"] = {
                "linear_y": {"kernel": proj_in[:, :w], "bias": bias_in[:w]},
                "linear_x": {"kernel": proj_in[:, w:], "bias": bias_in[w:]},
                "conv_1d": {"w": g("mixer", "mixer", "conv", "kernel")[::-1].copy(),
                            "b": g("mixer", "mixer", "conv", "bias")},
                "rg_lru": {"a_param": -g("mixer", "mixer", "mixer", "lam"),
                           "a_gate": {"w": gates[..., :size], "b": gate_bias[:, :size]},
                           "input_gate": {"w": gates[..., size:], "b": gate_bias[:, size:]}},
                "linear_out": {"kernel": g("mixer", "proj_out", "kernel"),
                               "bias": g("mixer", "proj_out", "bias")}}
        else:
            qkv = g("mixer", "qkv", "kernel")
            d, head = spec.width, spec.width // spec.heads
            block["attention_block"] = {
                "proj_q": {"kernel": qkv[:, :d]}, "proj_k": {"kernel": qkv[:, d:d + head]},
                "proj_v": {"kernel": qkv[:, d + head:]},
                "proj_final": {"kernel": g("mixer", "out", "kernel"),
                               "bias": g("mixer", "out", "bias")}}
        tree[f"blocks.{i}"] = block
    tree["final_norm"] = {"scale": t("norm", "scale")}
    return tree


def spec_summary(spec: GriffinSpec) -> str:
    """One line describing a spec (for the converter's report)."""
    kinds = {k: spec.block_types.count(k) for k in (RECURRENT, ATTENTION)}
    fields = dataclasses.asdict(spec)
    fields["block_types"] = f"{kinds[RECURRENT]} recurrent + {kinds[ATTENTION]} attention"
    return ", ".join(f"{k} {v}" for k, v in fields.items())
