"""Frozen configuration dataclasses; every range check lives here.

A bad value fails in ``__post_init__`` with a ``ConfigError`` whose one-line message names the
field (dotted path as on the command line) and what is allowed, before any work starts.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

from glrnn.errors import ConfigError, check, check_choice
from glrnn.task_config import TaskConfig

FLOAT32_MAX = 3.4028234663852886e38
FLOAT32_TINY = 1.1754943508222875e-38  # the smallest normal float32: below it, values flush to 0
FLOAT32_RANGE = "a finite value float32 can hold (0 or 1.2e-38 <= |value| <= 3.4e38)"


def float32_ok(value: float) -> bool:
    """Whether ``value`` survives the float32 arithmetic of a run: finite, not overflowing to inf
    nor (nonzero) flushing to 0."""
    return value == 0 or FLOAT32_TINY <= abs(value) <= FLOAT32_MAX


def check_float32(config: Any, prefix: str = "") -> None:
    """ConfigError naming the first float field of the (nested) dataclass ``config`` that is
    not :func:`float32_ok` (inf, nan, 1e39, 1e-50)."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            check_float32(value, f"{prefix}{f.name}.")
        elif isinstance(value, float):
            check(float32_ok(value), f"{prefix}{f.name}", value, FLOAT32_RANGE)


SCAN_METHODS = ("auto", "associative", "sequential", "chunked")
# rmsnorm_plus_one: RMSNorm multiplying by (1 + scale), scale starting at 0 (Gemma, recurrentgemma)
NORMS = ("layernorm", "rmsnorm", "batchnorm", "rmsnorm_plus_one")
POOLINGS = ("mean", "last", "none")
ENCODERS = ("embed", "onehot")
CHANNEL_MIXERS = ("mlp", "glu", "none")
DTYPES = ("float32", "bfloat16")
ACTIVATIONS = ("identity", "tanh", "gelu", "silu", "relu", "sigmoid")
BLOCKS = ("prenorm", "hawk", "griffin")
ENCODING_ERRORS = ("strict", "replace")  # text files that are not UTF-8: refused, or U+FFFD
POSITIONS = ("none", "learned", "sinusoidal")  # a language model's position encodings
FEATURE_MAPS = ("identity", "elu")  # gateloop_qkv's map of q and k (glrnn/mixers/gateloop_qkv.py)
GRIFFIN_ATTENTION_EVERY = 3  # Griffin's pattern: two recurrent blocks, then one attention block
# parameter roles (glrnn/params.py tags every parameter with one)
ROLES = ("recurrent", "weight", "bias", "norm", "embedding")
# the time mixers: the names of glrnn.mixers.MIXERS (tests/test_layering.py checks they agree)
MIXER_NAMES = ("lru", "gateloop", "gateloop_qkv", "rglru", "attention", "dense_rnn", "diag_rnn",
               "gru")
RNN_ACTIVATIONS = ("identity", "tanh", "relu")  # the dense RNN's φ (glrnn/mixers/dense_rnn.py)
# the recurrence initialisations (glrnn/mixers/rnn_init.py): dense matrices / diagonal eigenvalues
DENSE_INITS = ("glorot", "orthogonal", "rescaled_glorot", "fixed")
DIAGONAL_INITS = ("glorot", "rescaled_glorot", "fixed")
MIN_RESCALED_WIDTH = 164  # the rescaled Glorot constant γ_n > 0 from here on
# what a language model reads (tokens through an embedding, or real-valued frames through a dense
# encoder) and, for frames, the next frame's distribution (glrnn/density.py)
INPUTS = ("tokens", "continuous")
FRAME_HEADS = ("gmm", "mse")


@dataclass(frozen=True)
class LRUConfig:
    """The LRU's initialisation ring (Orvieto et al. 2023, section 3.3)."""

    r_min: float = 0.9  # inner radius of the ring: the smallest |λ| at initialisation
    r_max: float = 0.999  # outer radius of the ring: the largest |λ| at initialisation
    max_phase: float = math.pi / 10  # arg λ drawn uniformly from [0, max_phase]

    def __post_init__(self) -> None:
        check(0.0 <= self.r_min < 1.0, "model.lru.r_min", self.r_min, "0 <= r_min < 1")
        check(0.0 < self.r_max < 1.0, "model.lru.r_max", self.r_max, "0 < r_max < 1")
        check(self.r_min < self.r_max, "model.lru.r_min", self.r_min,
              f"r_min < r_max (r_max={self.r_max})")
        check(0.0 < self.max_phase <= 2 * math.pi, "model.lru.max_phase", self.max_phase,
              "0 < max_phase <= 2*pi")


@dataclass(frozen=True)
class GateLoopConfig:
    """GateLoop-style gated linear RNN (Katsch 2023), see glrnn/mixers/gateloop.py."""

    tied_gates: bool = True  # input gate i = 1 - f; false: an input gate of its own
    input_activation: str = "tanh"  # σ_in of the candidate z = σ_in(W_z x + b_z)
    hidden_activation: str = "tanh"  # σ_h of the state before the read-out W_y (o ⊙ σ_h(h))
    gate_activation: str = "sigmoid"  # σ_g of the gates (tanh only with untied gates)
    output_gate: bool = True  # o = σ_g(W_o x + b_o) multiplies the read-out
    # forget gate f = sigmoid(bias + W x): biases are set so that at initialisation f spans
    # [f_min, f_max] (memory time-scales 1/(1-f) spread log-uniformly)

    f_min: float = 0.9  # the forget gate's smallest value at initialisation (shortest memory)
    f_max: float = 0.999  # the forget gate's largest value at initialisation (longest memory)
    # true recurrence: the gates and the candidate also see h_{t-1} through a zero-initialised
    # projection (a nonlinear RNN, run sequentially; starts equal to the linear model)
    recurrent: bool = False

    def __post_init__(self) -> None:
        for name in ("input_activation", "hidden_activation", "gate_activation"):
            check_choice(f"model.gateloop.{name}", getattr(self, name), ACTIVATIONS)
        # the forget gate must stay inside (-1, 1); tied gates (i = 1 - f) need f in (0, 1)
        check_choice("model.gateloop.gate_activation", self.gate_activation,
                     ("sigmoid",) if self.tied_gates else ("sigmoid", "tanh"))
        check(0.0 < self.f_min < 1.0, "model.gateloop.f_min", self.f_min, "0 < f_min < 1")
        check(self.f_min < self.f_max < 1.0, "model.gateloop.f_max", self.f_max,
              f"f_min < f_max < 1 (f_min={self.f_min})")


@dataclass(frozen=True)
class GateLoopQKVConfig:
    """GateLoop's query/key/value model over a matrix state per head (Katsch 2023), see
    glrnn/mixers/gateloop_qkv.py."""

    heads: int = 4  # heads, each with its own K x V matrix state
    key_width: int = 0  # K per head; 0: the mixer's width / heads
    value_width: int = 0  # V per head; 0: the mixer's width / heads
    phase: bool = True  # complex transitions (a free phase); false: real decays, a real state
    # |a| = sigmoid(bias + W x): biases put |a| on [a_min, a_max] at initialisation (memory
    # time-scales 1/(1-|a|) spread log-uniformly over each head's key channels)

    a_min: float = 0.9  # the smallest |a| at initialisation (the shortest memory)
    a_max: float = 0.999  # the largest |a| at initialisation (the longest memory)
    max_phase: float = math.pi / 10  # initial phases spread evenly on [0, max_phase]
    # applied to q and k: "identity" (the paper's) or "elu" (elu + 1 > 0: every stored value
    # enters a read with a positive weight)
    feature_map: str = "identity"

    def __post_init__(self) -> None:
        _check_positive_int("model.gateloop_qkv.heads", self.heads)
        check_choice("model.gateloop_qkv.feature_map", self.feature_map, FEATURE_MAPS)
        for name in ("key_width", "value_width"):
            value = getattr(self, name)
            check(isinstance(value, int) and value >= 0, f"model.gateloop_qkv.{name}", value,
                  "an integer >= 0 (0: the width divided among the heads)")
        check(0.0 < self.a_min < 1.0, "model.gateloop_qkv.a_min", self.a_min, "0 < a_min < 1")
        check(self.a_min < self.a_max < 1.0, "model.gateloop_qkv.a_max", self.a_max,
              f"a_min < a_max < 1 (a_min={self.a_min})")
        check(0.0 <= self.max_phase <= 2 * math.pi, "model.gateloop_qkv.max_phase",
              self.max_phase, "0 <= max_phase <= 2*pi")


@dataclass(frozen=True)
class RGLRUConfig:
    """Griffin's real-gated LRU (De et al. 2024), see glrnn/mixers/rglru.py."""

    c: float = 8.0  # a_t = sigmoid(Lambda)^(c * r_t)
    # initialisation ring: a^c uniform in area on [r_min, r_max] (the paper's text)

    r_min: float = 0.9  # the initialisation ring's inner edge (the smallest a^c)
    r_max: float = 0.999  # the initialisation ring's outer edge (the largest a^c)
    # the two gates' projections are block-diagonal with this many blocks (Griffin: one per
    # head); 1 is a dense projection. Must divide the RG-LRU's width.
    gate_blocks: int = 1
    # recurrentgemma's document start: a document's first input enters without the
    # sqrt(1 - a^2) factor, and a cleared (zero) carry counts as a document start (the carry
    # then also holds a per-row "started" flag)
    unscaled_start: bool = False

    def __post_init__(self) -> None:
        check(0.0 < self.c < math.inf, "model.rglru.c", self.c, "a finite value > 0")
        check(0.0 < self.r_min < 1.0, "model.rglru.r_min", self.r_min, "0 < r_min < 1")
        check(self.r_min < self.r_max < 1.0, "model.rglru.r_max", self.r_max,
              f"r_min < r_max < 1 (r_min={self.r_min})")
        _check_positive_int("model.rglru.gate_blocks", self.gate_blocks)


@dataclass(frozen=True)
class AttentionConfig:
    """Causal multi-head attention with RoPE and a KV cache, see glrnn/mixers/attention.py."""

    heads: int = 4  # query heads (d_model / heads must be even: RoPE rotates pairs)
    kv_heads: int = 0  # key/value heads: 0 = heads (multi-head), 1 = multi-query (Griffin)
    # 0: every earlier position up to max_len back; > 0: a sliding window of this many positions
    # (the position itself included)
    window: int = 0
    max_len: int = 1024  # cache slots of global attention (window = 0)
    rope_base: float = 10000.0  # RoPE's base: pair i of a head turns by position / base^(2i/D)
    # RoPE turns the first rope_fraction of each head's channels (recurrentgemma: 0.5), the
    # rest carry no position
    rope_fraction: float = 1.0
    out_bias: bool = False  # the output projection has a bias (recurrentgemma's)

    def __post_init__(self) -> None:
        _check_positive_int("model.attention.heads", self.heads)
        check(isinstance(self.kv_heads, int) and self.kv_heads >= 0
              and self.heads % max(self.kv_heads, 1) == 0, "model.attention.kv_heads",
              self.kv_heads, f"0 or a divisor of model.attention.heads ({self.heads})")
        _check_positive_int("model.attention.max_len", self.max_len)
        check(isinstance(self.window, int) and 0 <= self.window <= self.max_len,
              "model.attention.window", self.window,
              f"an integer in [0, model.attention.max_len={self.max_len}]")
        check(1.0 < self.rope_base < math.inf, "model.attention.rope_base", self.rope_base,
              "a finite value > 1")
        check(0.0 < self.rope_fraction <= 1.0, "model.attention.rope_fraction",
              self.rope_fraction, "0 < rope_fraction <= 1")

    @property
    def slots(self) -> int:
        """Positions a query sees (itself included), and the KV cache's size."""
        return self.window or self.max_len


@dataclass(frozen=True)
class DenseRNNConfig:
    """Dense RNN h_t = φ(A h_{t-1} + B x_t + b), see glrnn/mixers/dense_rnn.py."""

    activation: str = "tanh"  # identity (the linear RNN), tanh or relu
    # A: glorot, orthogonal, rescaled_glorot (needs d_state >= 164) or fixed (see rnn_init.py)
    a_init: str = "fixed"
    radius: float = 0.99  # fixed: the spectral radius of A
    quantile: float = 0.9  # rescaled_glorot: the probability that the spectral radius is <= 1

    def __post_init__(self) -> None:
        check_choice("model.dense_rnn.activation", self.activation, RNN_ACTIVATIONS)
        check_choice("model.dense_rnn.a_init", self.a_init, DENSE_INITS)
        _check_rnn_init("model.dense_rnn", self.radius, self.quantile)


@dataclass(frozen=True)
class DiagRNNConfig:
    """Diagonal complex linear RNN h_t = λ ⊙ h_{t-1} + B x_t, see glrnn/mixers/diag_rnn.py."""

    # λ: eigenvalues of a glorot, rescaled_glorot (needs d_state >= 164) or fixed matrix
    eig_init: str = "fixed"
    radius: float = 0.99  # fixed: the largest |λ|
    quantile: float = 0.9  # rescaled_glorot: the probability that max |λ| <= 1

    def __post_init__(self) -> None:
        check_choice("model.diag_rnn.eig_init", self.eig_init, DIAGONAL_INITS)
        _check_rnn_init("model.diag_rnn", self.radius, self.quantile)


def _check_rnn_init(prefix: str, radius: float, quantile: float) -> None:
    check(0.0 < radius <= 1.0, f"{prefix}.radius", radius, "0 < radius <= 1")
    check(0.0 < quantile < 1.0, f"{prefix}.quantile", quantile, "0 < quantile < 1")


@dataclass(frozen=True)
class ClassifierConfig:
    """What sits around the backbone of a Classifier (glrnn/models.py)."""

    # "mean" over the real positions, the "last" real position, or "none": a prediction at every
    # position (tasks with per-step targets)
    pooling: str = "mean"
    encoder: str = "embed"  # token inputs: a learned "embed"ding or a "onehot" then Dense
    # two-tower (retrieval) tasks: hidden width of the MLP on [u, v, u*v, u-v]; 0: d_model
    head_hidden: int = 0

    def __post_init__(self) -> None:
        check_choice("model.classifier.pooling", self.pooling, POOLINGS)
        check_choice("model.classifier.encoder", self.encoder, ENCODERS)
        check(isinstance(self.head_hidden, int) and self.head_hidden >= 0,
              "model.classifier.head_hidden", self.head_hidden, "an integer >= 0")


@dataclass(frozen=True)
class ModelConfig:
    """A stack of pre-norm residual blocks: time mixer, then channel mixer."""

    vocab_size: int = 259  # rows of the embedding, >= the tokenizer's vocabulary
    d_model: int = 256  # width of the residual stream
    n_layers: int = 4  # blocks, each a time mixer then a channel mixer
    # the time mixer (glrnn/mixers/): lru, gateloop, gateloop_qkv, rglru, dense_rnn, diag_rnn,
    # gru or attention
    mixer: str = "lru"
    d_state: int = 256  # width of the recurrent state (lru, gateloop, dense_rnn, diag_rnn, gru)
    channel_mixer: str = "glu"  # after each time mixer: mlp, glu or none
    mlp_ratio: float = 2.0  # the channel mixer's hidden width over d_model
    # layernorm, rmsnorm, batchnorm (classifiers only) or rmsnorm_plus_one (scale stored as its
    # offset from 1: Gemma, recurrentgemma)
    norm: str = "rmsnorm"
    dropout: float = 0.0  # dropout rate on each block's outputs while training
    tie_embeddings: bool = True  # the output head reuses the embedding matrix
    # how linear recurrences run over a sequence: associative, sequential, chunked, or auto
    scan_method: str = "auto"
    chunk_size: int = 64  # positions per chunk of the chunked scan
    # compute dtype of matmuls and activations; parameters, the recurrent state, norms' statistics,
    # the residual stream and the logits stay float32
    dtype: str = "float32"
    # every block also runs a second time mixer over the reversed sequence (classifiers of tasks
    # that are not causal; no step mode, no generation)
    bidirectional: bool = False
    # language models: a position encoding added to the embedding, "none", "learned" (a table of
    # max_positions rows) or "sinusoidal" (Vaswani et al. 2017); a token's position is its
    # offset in its document (glrnn/positions.py). Attention has RoPE either way.
    positions: str = "none"
    # positions="learned": rows of the table, the most positions a document reaches in training
    # windows and in generation alike; 0: data.seq_len (filled in when the Config is built)
    max_positions: int = 0

    lru: LRUConfig = field(default_factory=LRUConfig)
    gateloop: GateLoopConfig = field(default_factory=GateLoopConfig)
    gateloop_qkv: GateLoopQKVConfig = field(default_factory=GateLoopQKVConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    # block layout (glrnn/mixers/__init__.py): "prenorm" applies the mixer directly; "hawk" wraps
    # it in Griffin's recurrent block, out(gelu(W_g x) * mixer(conv(W_x x))) at width rnn_width;
    # "griffin" is hawk with a local attention block every attention_every layers
    block: str = "prenorm"
    # every k-th block (k, 2k, ...) is an attention block; 0: none (prenorm, hawk), or
    # GRIFFIN_ATTENTION_EVERY (griffin)
    attention_every: int = 0
    conv: bool = False  # prenorm blocks: a short causal convolution before the mixer
    conv_width: int = 4  # the short convolution's width (hawk and griffin blocks always have it)
    rnn_width: int = 0  # hawk/griffin: width of the recurrent branch; 0: d_model
    rglru: RGLRUConfig = field(default_factory=RGLRUConfig)
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    dense_rnn: DenseRNNConfig = field(default_factory=DenseRNNConfig)
    diag_rnn: DiagRNNConfig = field(default_factory=DiagRNNConfig)
    # what the language model reads: "tokens" (an embedding; logits over the vocabulary) or
    # "continuous" (real-valued frames of frame_width values: a dense encoder; frame_head)
    input: str = "tokens"
    frame_width: int = 0  # continuous input: F, the values per frame (0 with tokens)
    # continuous input: the next frame's distribution, "gmm" (a mixture of mixture_components
    # diagonal Gaussians, trained by its exact NLL) or "mse" (a point prediction, squared error)
    frame_head: str = "gmm"
    mixture_components: int = 8  # gmm: K, the mixture's components
    min_sigma: float = 1e-3  # gmm: the floor of every σ, in units of the data's (normalised) std
    # language models: the embedding's output is multiplied by this (recurrentgemma: sqrt(d_model)
    # rounded to bfloat16)
    embed_scale: float = 1.0
    # language models: logits are soft-capped to c * tanh(logits / c); 0: no cap (Gemma: 30)
    logit_softcap: float = 0.0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_model", "n_layers", "d_state", "chunk_size"):
            value = getattr(self, name)
            check(isinstance(value, int) and value > 0, f"model.{name}", value,
                  "a positive integer")
        check_choice("model.mixer", self.mixer, MIXER_NAMES)
        check_choice("model.channel_mixer", self.channel_mixer, CHANNEL_MIXERS)
        check_choice("model.norm", self.norm, NORMS)
        check_choice("model.scan_method", self.scan_method, SCAN_METHODS)
        check_choice("model.dtype", self.dtype, DTYPES)
        check(self.mlp_ratio > 0, "model.mlp_ratio", self.mlp_ratio, "> 0")
        check(0.0 <= self.dropout < 1.0, "model.dropout", self.dropout, "0 <= dropout < 1")
        check_choice("model.positions", self.positions, POSITIONS)
        check(isinstance(self.max_positions, int) and self.max_positions >= 0
              and (self.max_positions == 0 or self.positions == "learned"),
              "model.max_positions", self.max_positions,
              "an integer >= 1 with model.positions='learned' (0: data.seq_len), else 0")
        check(0.0 < self.embed_scale < math.inf, "model.embed_scale", self.embed_scale,
              "a finite value > 0")
        check(0.0 <= self.logit_softcap < math.inf, "model.logit_softcap", self.logit_softcap,
              "a finite value >= 0 (0: no cap)")
        self._check_layout()
        self._check_rescaled_glorot_width()
        self._check_input()

    @property
    def continuous(self) -> bool:
        """Whether the model reads real-valued frames (``input="continuous"``)."""
        return self.input == "continuous"

    def _check_input(self) -> None:
        """Tokens, or frames of a positive width with a known head."""
        check_choice("model.input", self.input, INPUTS)
        check_choice("model.frame_head", self.frame_head, FRAME_HEADS)
        _check_positive_int("model.mixture_components", self.mixture_components)
        check(0.0 < self.min_sigma < 1.0, "model.min_sigma", self.min_sigma,
              "0 < min_sigma < 1 (in units of the normalised data's std)")
        if self.continuous:
            check(isinstance(self.frame_width, int) and self.frame_width > 0,
                  "model.frame_width", self.frame_width,
                  "a positive integer (the values per frame) with model.input='continuous'")
            for name, default in (("embed_scale", 1.0), ("logit_softcap", 0.0)):
                check(getattr(self, name) == default, f"model.{name}", getattr(self, name),
                      f"{default} with model.input='continuous' (it scales token embeddings, "
                      "caps logits)")
        else:
            check(self.frame_width == 0, "model.frame_width", self.frame_width,
                  "0 with model.input='tokens' (set model.input=continuous to read frames)")

    @property
    def attention_period(self) -> int:
        """k such that blocks k, 2k, ... (counted from 1) are attention blocks; 0 for none."""
        if self.block == "griffin":
            return self.attention_every or GRIFFIN_ATTENTION_EVERY
        return self.attention_every

    @property
    def recurrent_width(self) -> int:
        """The width the (recurrent) mixer runs at: rnn_width in hawk/griffin blocks."""
        return (self.rnn_width or self.d_model) if self.block != "prenorm" else self.d_model

    def uses_attention(self) -> bool:
        return self.mixer == "attention" or self.attention_period > 0

    def _check_layout(self) -> None:
        """The block layout, the short convolution and the new mixers' shapes."""
        check_choice("model.block", self.block, BLOCKS)
        check(isinstance(self.attention_every, int) and 0 <= self.attention_every
              <= self.n_layers, "model.attention_every", self.attention_every,
              f"an integer in [0, model.n_layers={self.n_layers}]")
        check(self.block != "hawk" or self.attention_every == 0, "model.attention_every",
              self.attention_every, "0 with model.block='hawk' (use 'griffin' for attention)")
        check(self.block == "prenorm" or self.mixer != "attention", "model.mixer", self.mixer,
              f"a recurrent mixer with model.block={self.block!r} (not 'attention')")
        _check_positive_int("model.conv_width", self.conv_width)
        check(isinstance(self.rnn_width, int) and self.rnn_width >= 0, "model.rnn_width",
              self.rnn_width, "an integer >= 0")
        if self.mixer == "rglru":
            check(self.recurrent_width % self.rglru.gate_blocks == 0, "model.rglru.gate_blocks",
                  self.rglru.gate_blocks, f"a divisor of the RG-LRU width {self.recurrent_width}")
        if self.mixer == "gateloop_qkv":
            self._check_gateloop_qkv()
        if self.mixer == "gateloop" and self.gateloop.recurrent:
            check_choice("model.scan_method", self.scan_method, ("auto", "sequential"))
        if self.uses_attention():
            heads = self.attention.heads
            check(self.d_model % heads == 0 and (self.d_model // heads) % 2 == 0,
                  "model.attention.heads", heads,
                  f"a divisor of model.d_model={self.d_model} leaving an even head width (RoPE)")
            turned = self.d_model // heads * self.attention.rope_fraction
            check(turned == int(turned) and int(turned) % 2 == 0, "model.attention.rope_fraction",
                  self.attention.rope_fraction, f"a fraction of the head width "
                  f"{self.d_model // heads} that is an even number of channels")

    def _check_gateloop_qkv(self) -> None:
        """Heads that share the mixer's width, and chunks its chunked scan can halve."""
        g, width = self.gateloop_qkv, self.recurrent_width
        if not (g.key_width and g.value_width):
            check(width % g.heads == 0, "model.gateloop_qkv.heads", g.heads,
                  f"a divisor of the mixer's width {width} (or set model.gateloop_qkv.key_width "
                  "and value_width)")
        size = self.chunk_size
        check(size & (size - 1) == 0, "model.chunk_size", size,
              "a power of two with model.mixer='gateloop_qkv' (its chunks split in halves)")

    def _check_rescaled_glorot_width(self) -> None:
        """The rescaled Glorot constant is undefined below width 164 (glrnn/mixers/rnn_init.py)."""
        init = {"dense_rnn": ("a_init", self.dense_rnn.a_init),
                "diag_rnn": ("eig_init", self.diag_rnn.eig_init)}.get(self.mixer)
        if init is not None and init[1] == "rescaled_glorot":
            check(self.d_state >= MIN_RESCALED_WIDTH, "model.d_state", self.d_state,
                  f">= {MIN_RESCALED_WIDTH} with model.{self.mixer}.{init[0]}='rescaled_glorot' "
                  "(its constant is undefined for smaller widths; 'fixed' works at any width)")


@dataclass(frozen=True)
class DataConfig:
    """Where the text comes from and how it is cut into windows (see glrnn/data/text.py)."""

    # "stdlib" (the embedded corpus), "hf:NAME" (a hub dataset) or a local file, folder or glob
    # (text files are one document each; json/jsonl/parquet one document per row)
    source: str = "stdlib"
    text_field: str = "text"  # json/jsonl/parquet/hub: the column holding the text
    hub_config: str = ""  # hub datasets: the configuration name (e.g. wikitext-103-raw-v1)
    hub_split: str = "train"  # hub datasets: the split to read
    split: str = "hash"  # train/validation: "hash" by document, "head" first/last part of the text
    streaming: bool = False  # stream the source (corpora larger than memory; glrnn/data/stream.py)
    shuffle_buffer: int = 1000  # streaming: documents in the shuffle buffer
    tokenizer: str = "byte"  # "byte", or a file made by python -m glrnn.tokenizer_train
    # text files that are not UTF-8: "strict" refuses them (naming the file and the first bad
    # byte), "replace" reads U+FFFD for each bad byte
    encoding_errors: str = "strict"
    include_tests: bool = False  # stdlib only: also the test suites (about 2.5x the text)
    seq_len: int = 256  # tokens per training window (each window holds seq_len + 1)
    batch_size: int = 16  # windows (or examples) per training step
    val_fraction: float = 0.02  # share of documents held out, chosen by a hash of their path
    val_windows: int = 64  # at most this many validation windows of seq_len + 1 tokens
    seed: int = 0  # the split and the training batches
    # classification: batches of examples of similar length, cut to the next power of two of
    # the longest (much less work where lengths spread widely: ListOps, IMDb)
    bucket_by_length: bool = False

    def __post_init__(self) -> None:
        check(bool(self.source), "data.source", self.source, '"stdlib" or a path')
        check(self.tokenizer == "byte" or self.tokenizer.startswith("mulaw:")
              or self.tokenizer.endswith((".json", ".model")), "data.tokenizer", self.tokenizer,
              "'byte', 'mulaw:RATE' or a tokenizer file (.json characters, .model SentencePiece)")
        for name in ("seq_len", "batch_size", "val_windows", "shuffle_buffer"):
            _check_positive_int(f"data.{name}", getattr(self, name))
        check(0.0 < self.val_fraction < 1.0, "data.val_fraction", self.val_fraction,
              "0 < val_fraction < 1")
        check_choice("data.split", self.split, ("hash", "head"))
        check_choice("data.encoding_errors", self.encoding_errors, ENCODING_ERRORS)
        check(not (self.streaming and self.split == "head"), "data.split", self.split,
              "'hash' when data.streaming is on")
        _check_seed("data.seed", self.seed)


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warmup, cosine decay to ``min_lr_ratio * lr`` and global-norm clipping."""

    lr: float = 2e-3  # peak learning rate, reached after the warmup
    min_lr_ratio: float = 0.1  # the cosine decay ends at min_lr_ratio * lr
    warmup_steps: int = 100  # steps of linear warmup from 0 to lr
    weight_decay: float = 0.1  # AdamW's decoupled weight decay (on decay_roles only)
    b1: float = 0.9  # Adam's decay of the first moment
    b2: float = 0.99  # Adam's decay of the second moment
    eps: float = 1e-8  # Adam's epsilon, added to the root of the second moment
    clip_norm: float = 1.0  # gradients are rescaled to this global norm when above it
    # parameter roles (glrnn/params.py) that weight decay applies to: weight, recurrent, bias,
    # norm, embedding
    decay_roles: tuple[str, ...] = ("weight",)
    # the learning rate of the recurrent parameters over lr (the LRU paper uses 0.5)
    recurrent_lr_factor: float = 1.0
    grad_accum: int = 1  # split each batch into this many micro-batches (same update, less memory)

    def __post_init__(self) -> None:
        for role in self.decay_roles:
            check_choice("optim.decay_roles", role, ROLES)
        check(0.0 < self.recurrent_lr_factor < math.inf, "optim.recurrent_lr_factor",
              self.recurrent_lr_factor, "a finite value > 0")
        check(isinstance(self.grad_accum, int) and self.grad_accum >= 1, "optim.grad_accum",
              self.grad_accum, "an integer >= 1")
        check(math.isfinite(self.lr) and self.lr > 0, "optim.lr", self.lr, "a finite value > 0")
        check(0.0 <= self.min_lr_ratio <= 1.0, "optim.min_lr_ratio", self.min_lr_ratio,
              "0 <= min_lr_ratio <= 1")
        check(isinstance(self.warmup_steps, int) and self.warmup_steps >= 0,
              "optim.warmup_steps", self.warmup_steps, "an integer >= 0")
        check(0.0 <= self.weight_decay < math.inf, "optim.weight_decay", self.weight_decay,
              "a finite value >= 0")
        check(0.0 <= self.b1 < 1.0, "optim.b1", self.b1, "0 <= b1 < 1")
        check(0.0 <= self.b2 < 1.0, "optim.b2", self.b2, "0 <= b2 < 1")
        check(0.0 < self.eps < 1.0, "optim.eps", self.eps, "0 < eps < 1")
        check(0.0 < self.clip_norm < math.inf, "optim.clip_norm", self.clip_norm,
              "a finite value > 0")


@dataclass(frozen=True)
class TrainConfig:
    """Length of the run, how often it evaluates, logs and saves, and where it writes."""

    steps: int = 1000  # training steps (one batch each)
    # > 0: a wall-clock budget in minutes that sets steps instead: the step is timed after it
    # compiles and steps are fixed so that the run, evaluations and checkpoints included, ends
    # within it (glrnn/train/budget.py; config.json records what was measured). On the command
    # line --train.steps over a recipe's budget turns the budget off; giving both is refused
    minutes: float = 0.0
    # classification: train this many passes over the training split instead (sets steps); 0: off
    epochs: float = 0.0
    eval_every: int = 250  # steps between evaluations on the validation split
    # stop when the validation figure that ranks checkpoints (val_loss, or val_acc for
    # classifiers) has not improved for this many evaluations; 0: never
    patience: int = 0
    log_every: int = 10  # steps between rows of metrics.jsonl (and the progress bar's figures)
    checkpoint_every: int = 250  # steps between checkpoints
    keep_checkpoints: int = 2  # the newest checkpoints kept (older ones are deleted)
    keep_best: bool = True  # also keep the best checkpoint (val_loss; val_acc for classifiers)
    on_nan: str = "stop"  # a NaN/inf loss: "stop" (naming the last good checkpoint) or "skip"
    max_skips: int = 10  # with on_nan="skip": stop after this many non-finite steps in a row
    seed: int = 0  # parameter initialisation and dropout
    out_dir: str = "runs"  # the folder of run directories and of the "latest" link to the newest
    name: str = ""  # run directory out_dir/name; empty: the CLI names it recipe-timestamp
    fsdp: int = 1  # mesh axis "fsdp": devices that split each parameter (1: replicate)
    tensorboard: bool = False  # also write TensorBoard event files into the run directory
    wandb: str = ""  # a Weights & Biases project name to log to; empty: off
    # a run directory whose latest parameters start this run (parameters this model adds keep
    # their initialisation, e.g. a true-recurrence GateLoop from a linear one); fresh optimizer
    init_from: str = ""
    # the learning rule (glrnn/online/rules.py): bptt, or online_full, online_snap1,
    # online_1truncated, online_spatial (real-time learning, memory constant in the length)
    rule: str = "bptt"

    def __post_init__(self) -> None:
        for name in ("steps", "eval_every", "log_every", "checkpoint_every", "keep_checkpoints"):
            _check_positive_int(f"train.{name}", getattr(self, name))
        _check_seed("train.seed", self.seed)
        check(0.0 <= self.epochs < math.inf, "train.epochs", self.epochs, "a finite value >= 0")
        check(0.0 <= self.minutes < math.inf, "train.minutes", self.minutes,
              "a finite value >= 0 (0: the run's length is train.steps)")
        check(not (self.minutes and self.epochs), "train.minutes", self.minutes,
              f"0 with train.epochs={self.epochs} (a run's length is one or the other)")
        check(isinstance(self.patience, int) and self.patience >= 0, "train.patience",
              self.patience, "an integer >= 0")
        _check_positive_int("train.fsdp", self.fsdp)
        _check_positive_int("train.max_skips", self.max_skips)
        check_choice("train.on_nan", self.on_nan, ("stop", "skip"))
        check(bool(self.out_dir), "train.out_dir", self.out_dir, "a directory")
        check("/" not in self.name and self.name not in (".", "..", "latest"), "train.name",
              self.name, "a plain directory name (no '/', not 'latest')")


@dataclass(frozen=True)
class Config:
    """Everything a run needs; ``train_lm.py`` builds it from a recipe plus overrides.

    ``task.name`` empty: a language model of ``data``; else a classifier of that task
    (glrnn/data/tasks/), batched by ``data.batch_size`` and split by ``data.seed``."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    task: TaskConfig = field(default_factory=TaskConfig)

    def __post_init__(self) -> None:
        check_float32(self)
        self._check_positions()
        # optim.warmup_steps against the run's length: at run start, once the length is known
        # (glrnn.train.loop.resolve_steps; a budget's in glrnn/train/budget.py)
        check(self.data.batch_size % self.optim.grad_accum == 0, "optim.grad_accum",
              self.optim.grad_accum, f"a divisor of data.batch_size ({self.data.batch_size})")
        # the training length: a task's (when it fixes one) or the language model's
        length, length_field = ((self.task.seq_len, "task.seq_len") if self.task.name
                                else (self.data.seq_len, "data.seq_len"))
        if self.model.uses_attention() and length:
            attention = self.model.attention
            if attention.window:
                check(attention.window <= length, "model.attention.window",
                      attention.window, f"<= {length_field} ({length})")
            else:
                check(attention.max_len >= length, "model.attention.max_len",
                      attention.max_len, f">= {length_field} ({length}) for global "
                      "attention (model.attention.window=0)")
        if self.model.continuous:
            check(not self.task.name, "model.input", self.model.input,
                  f"'tokens' with task.name={self.task.name!r} (a classifier's encoder follows "
                  "its task's inputs; 'continuous' is for language models of frames)")
            self._check_frame_data()

    def _check_frame_data(self) -> None:
        """A continuous-input language model reads a local folder of frames, split by file."""
        source = self.data.source
        check(source != "stdlib" and not source.startswith("hf:"), "data.source", source,
              "a folder of .npy/.npz frames with model.input='continuous' (text sources are "
              "for model.input=tokens)")
        check(not self.data.streaming, "data.streaming", self.data.streaming,
              "false with model.input='continuous' (frames are read into memory)")
        check(self.data.split == "hash", "data.split", self.data.split,
              "'hash' with model.input='continuous' (frames are split by document)")


    def _check_positions(self) -> None:
        """Position encodings are the language model's; a learned table gets data.seq_len rows
        unless model.max_positions says otherwise, and never fewer."""
        positions = self.model.positions
        if positions == "none":
            return
        check(not self.task.name, "model.positions", positions,
              f"'none' for the classification task {self.task.name!r} (position encodings are "
              "the language model's)")
        if positions == "learned":
            if self.model.max_positions == 0:  # frozen: set once, here, before anyone reads it
                object.__setattr__(self, "model", dataclasses.replace(
                    self.model, max_positions=self.data.seq_len))
            check(self.model.max_positions >= self.data.seq_len, "model.max_positions",
                  self.model.max_positions, f">= data.seq_len ({self.data.seq_len}): the "
                  "learned position table needs a row for every position of a training window")


def _check_positive_int(name: str, value: object) -> None:
    check(isinstance(value, int) and value > 0, name, value, "a positive integer")


def _check_seed(name: str, value: object) -> None:
    check(isinstance(value, int) and value >= 0, name, value, "an integer >= 0")


T = TypeVar("T")


def from_dict(cls: type[T], values: dict[str, Any]) -> T:
    """Rebuild a (nested) config dataclass from ``dataclasses.asdict`` output; every check runs."""
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(values) - set(hints))
    if unknown:
        raise ConfigError(f"{cls.__name__} has no field {', '.join(unknown)}")
    kwargs = {name: _from_json(hints[name], value) for name, value in values.items()}
    return cls(**kwargs)


def _from_json(hint: Any, value: Any) -> Any:
    """A field's value as read from JSON: nested dataclasses rebuilt, lists back to tuples."""
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value)
    if typing.get_origin(hint) is tuple and isinstance(value, list):
        return tuple(value)
    return value
