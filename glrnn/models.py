"""Models: the block stack (``Backbone``) and what sits around it (``LanguageModel``,
``Classifier``).

Each follows the mixer protocol, so a whole model is a recurrent cell: ``__call__`` runs a
sequence in parallel, ``step`` one position, and ``init_carry`` gives the zero state; the carry of
a stack is the tuple of its blocks' carries.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from glrnn.blocks import Block, Carry, reverse_index
from glrnn.config import ModelConfig
from glrnn.density import FrameDensity
from glrnn.errors import check
from glrnn.layers import dense, make_norm, normalize, soft_cap
from glrnn.params import with_role
from glrnn.positions import PositionCarry, PositionEncoding, check_room, document_offsets
from glrnn.task_config import TaskInfo


class Backbone(nn.Module):
    """``cfg.n_layers`` blocks: [batch, length, d_model] -> same; carry: tuple of block carries."""

    cfg: ModelConfig

    def setup(self) -> None:
        self.blocks = [Block(self.cfg, layer) for layer in range(self.cfg.n_layers)]

    def init_carry(self, batch_size: int) -> tuple[Carry, ...]:
        return tuple(block.init_carry(batch_size) for block in self.blocks)

    def __call__(self, x: jax.Array, carry: tuple[Carry, ...] | None = None, *,
                 segment_ids: jax.Array | None = None, mask: jax.Array | None = None,
                 reverse: jax.Array | None = None,
                 deterministic: bool = True) -> tuple[jax.Array, tuple[Carry, ...]]:
        """x [B, L, d_model], carry or None, segment_ids int [B, L] or None, mask bool
        [B, L, 1] or None, reverse int [B, L] or None (see Block) -> (y [B, L, d_model], carry)."""
        carries = (None,) * len(self.blocks) if carry is None else carry
        out = []
        for block, c in zip(self.blocks, carries, strict=True):
            x, c = block(x, c, segment_ids=segment_ids, mask=mask, reverse=reverse,
                         deterministic=deterministic)
            out.append(c)
        return x, tuple(out)

    def step(self, x_t: jax.Array, carry: tuple[Carry, ...], *,
             deterministic: bool = True) -> tuple[jax.Array, tuple[Carry, ...]]:
        """x_t [B, d_model], carry -> (y_t [B, d_model], carry)."""
        out = []
        for block, c in zip(self.blocks, carry, strict=True):
            x_t, c = block.step(x_t, c, deterministic=deterministic)
            out.append(c)
        return x_t, tuple(out)


class LanguageModel(nn.Module):
    """Input encoder (+ a position encoding) -> Backbone -> norm -> head. Outputs are float32.

    * ``cfg.input = "tokens"``: a token embedding (times ``cfg.embed_scale``); the head gives
      logits over the vocabulary (the embedding's transpose when ``cfg.tie_embeddings``, else a
      bias-free Dense), soft-capped when ``cfg.logit_softcap``.
    * ``cfg.input = "continuous"``: frames of F = ``cfg.frame_width`` values, each with a start
      flag as its last input column ([B, L, F + 1]: 1 on a document's start position, whose
      values are 0, else 0), through a Dense encoder, so the flag's column is the learned start
      vector that opens every document (what BOS is to text); the head is a Dense giving the
      next frame's distribution parameters (glrnn/density.py: a Gaussian mixture or a point
      prediction).

    The carry is the backbone's, or with ``cfg.positions`` a ``PositionCarry`` of it and each
    row's next position (glrnn/positions.py)."""

    cfg: ModelConfig

    def setup(self) -> None:
        cfg = self.cfg
        if cfg.continuous:
            self.encoder = dense(cfg.d_model, cfg.dtype)
        else:  # std 1/√d: with the tied head, unit-RMS features give logits of unit scale
            self.embed = nn.Embed(cfg.vocab_size, cfg.d_model, dtype=jnp.dtype(cfg.dtype),
                                  embedding_init=with_role(
                                      nn.initializers.normal(1 / math.sqrt(cfg.d_model)),
                                      "embedding"))
        self.backbone = Backbone(cfg)
        self.norm = make_norm(cfg.norm, cfg.dtype)
        if cfg.continuous:
            self.head = dense(FrameDensity.of(cfg).raw_width, cfg.dtype)
        elif not cfg.tie_embeddings:
            self.head = dense(cfg.vocab_size, cfg.dtype, use_bias=False)
        if cfg.positions != "none":
            self.positions = PositionEncoding(cfg)

    def init_carry(self, batch_size: int) -> Carry:
        blocks = self.backbone.init_carry(batch_size)
        if self.cfg.positions == "none":
            return blocks
        return PositionCarry(blocks, jnp.zeros((batch_size,), jnp.int32))

    def __call__(self, tokens: jax.Array, carry: Carry = None, *,
                 segment_ids: jax.Array | None = None,
                 deterministic: bool = True) -> tuple[jax.Array, Carry]:
        """tokens int32 [B, L] (frames: float [B, L, F + 1]), carry or None, segment_ids int
        [B, L] or None (packed documents: every recurrent state is cleared, and the positions
        restart, where the id changes) -> (logits float32 [B, L, vocab] (frames: the head's
        [B, L, P]), carry)."""
        x, blocks, position = self._place(self._embed(tokens), carry, segment_ids)
        x, blocks = self.backbone(x, blocks, segment_ids=segment_ids,
                                  deterministic=deterministic)
        return self._logits(x), self._carry(blocks, position)

    def step(self, token: jax.Array, carry: Carry, *,
             deterministic: bool = True) -> tuple[jax.Array, Carry]:
        """token int32 [B] (frames: float [B, F + 1]), carry -> (logits float32 [B, vocab]
        (frames: [B, P]), carry)."""
        x, blocks, position = self._place(self._embed(token)[:, None], carry)
        x, blocks = self.backbone.step(x[:, 0], blocks, deterministic=deterministic)
        return self._logits(x), self._carry(blocks, position)

    def _embed(self, tokens: jax.Array) -> jax.Array:
        if self.cfg.continuous:  # the residual stream stays float32
            return self.encoder(tokens.astype(jnp.dtype(self.cfg.dtype))).astype(jnp.float32)
        x = self.embed(tokens).astype(jnp.float32)
        return x * self.cfg.embed_scale if self.cfg.embed_scale != 1.0 else x

    def _place(self, x: jax.Array, carry: Carry, segment_ids: jax.Array | None = None
               ) -> tuple[jax.Array, Carry, jax.Array | None]:
        """x [B, L, d_model] plus the encoding of each position in its document -> (x, the
        backbone's carry, the next position int32 [B]); without positions (x, carry, None).
        A learned table too short for L positions from zero is refused before any work."""
        if self.cfg.positions == "none":
            return x, carry, None
        batch, length = x.shape[:2]
        if carry is None:
            check_room(self.cfg, length, f"a sequence of {length} tokens")
            blocks, position = None, jnp.zeros((batch,), jnp.int32)
        else:
            blocks, position = carry
        offsets = document_offsets(position, length, segment_ids)
        return x + self.positions(offsets), blocks, offsets[:, -1] + 1

    def _carry(self, blocks: Carry, position: jax.Array | None) -> Carry:
        return blocks if position is None else PositionCarry(blocks, position)

    def _logits(self, x: jax.Array) -> jax.Array:
        x = normalize(self.norm, x)
        if self.cfg.tie_embeddings and not self.cfg.continuous:
            logits = self.embed.attend(x)
        else:
            logits = self.head(x)
        logits = logits.astype(jnp.float32)
        return logits if self.cfg.continuous else soft_cap(logits, self.cfg.logit_softcap)


def example_inputs(cfg: ModelConfig, batch: int = 1, length: int = 1) -> jax.Array:
    """Zeros shaped as ``LanguageModel(cfg)``'s input: tokens int32 [B, L], or frames with their
    start flag float32 [B, L, frame_width + 1]."""
    if cfg.continuous:
        return jnp.zeros((batch, length, cfg.frame_width + 1), jnp.float32)
    return jnp.zeros((batch, length), jnp.int32)


class Classifier(nn.Module):
    """Encoder -> Backbone -> norm -> pooling -> head, for the arrays of glrnn/data/tasks/base.py.

    * Encoder: token inputs int [B, L] through an embedding (``cfg.classifier.encoder="embed"``)
      or a one-hot vector and a Dense layer ("onehot"); real inputs float [B, L, C] through a
      Dense layer.
    * Padding (positions ``t >= lengths``) is masked everywhere it could leak: BatchNorm's
      statistics, the reversed pass of bidirectional blocks (which starts at each sequence's
      end), and the pooling. A causal backbone never lets a pad reach an earlier position.
    * Pooling (``cfg.classifier.pooling``): ``mean`` over the real positions, the ``last`` real
      position, or ``none`` (a prediction at every position).
    * Head: Dense to ``n_classes`` logits (per label slot: labels [B, L, K] give logits
      [B, L, K, n_classes]). Two-tower tasks (retrieval) encode both documents with the same
      backbone, pool each into u and v, and classify [u, v, u ⊙ v, u − v] with an MLP (GeLU,
      hidden ``cfg.classifier.head_hidden`` or d_model), as in the LRA's AAN baseline.

    ``__call__`` is parallel over the whole sequence; with ``pooling="none"`` and a causal
    backbone the model is also a recurrent cell (``step``, ``init_carry``), like a language model.
    """

    cfg: ModelConfig
    info: TaskInfo
    label_slots: int = 0  # K of labels [N, L, K]; 0 for labels [N] or [N, L]

    def setup(self) -> None:
        cfg, info = self.cfg, self.info
        check(cfg.positions == "none", "model.positions", cfg.positions,
              "'none' for a classifier (position encodings are the language model's)")
        if info.tokens and cfg.classifier.encoder == "embed":
            self.encoder = nn.Embed(info.vocab_size, cfg.d_model, dtype=jnp.dtype(cfg.dtype),
                                    embedding_init=with_role(
                                        nn.initializers.normal(1 / math.sqrt(cfg.d_model)),
                                        "embedding"))
        else:
            self.encoder = dense(cfg.d_model, cfg.dtype)
        self.backbone = Backbone(cfg)
        self.norm = make_norm(cfg.norm, cfg.dtype)
        outputs = info.n_classes * max(1, self.label_slots)
        if info.two_tower:
            hidden = cfg.classifier.head_hidden or cfg.d_model
            self.head_hidden = dense(hidden, cfg.dtype)
        self.head = dense(outputs, cfg.dtype)

    def init_carry(self, batch_size: int) -> tuple[Carry, ...]:
        return self.backbone.init_carry(batch_size)

    def __call__(self, inputs: jax.Array, lengths: jax.Array | None = None,
                 inputs2: jax.Array | None = None, lengths2: jax.Array | None = None, *,
                 positions: jax.Array | None = None, carry: tuple[Carry, ...] | None = None,
                 deterministic: bool = True) -> tuple[jax.Array, tuple[Carry, ...]]:
        """inputs int [B, L] or float [B, L, C], lengths int [B] or None (all L); two-tower
        tasks also inputs2, lengths2; pooling "none" only: positions int [B, P] or None (the
        head runs at these positions only: tasks with few targets per sequence)
        -> (logits float32 [B, n_classes] pooled, [B, L or P, n_classes] with pooling "none",
        with a label axis K before n_classes when ``label_slots``; carry)."""
        features, carry = self._features(inputs, lengths, carry, deterministic)
        if positions is not None:
            features = jnp.take_along_axis(features, positions[..., None], axis=1)
        if self.info.two_tower:
            other, _ = self._features(inputs2, lengths2, None, deterministic)
            features = jnp.concatenate([features, other, features * other, features - other],
                                       axis=-1)
            features = nn.gelu(self.head_hidden(features))
        return self._head(features), carry

    def step(self, x_t: jax.Array, carry: tuple[Carry, ...], *,
             deterministic: bool = True) -> tuple[jax.Array, tuple[Carry, ...]]:
        """x_t int [B] or float [B, C], carry -> (logits float32 [B, (K,) n_classes], carry);
        for ``pooling="none"`` only (a pooled model predicts after the whole sequence)."""
        if self.cfg.classifier.pooling != "none":
            raise ValueError(f"model.classifier.pooling={self.cfg.classifier.pooling!r}: step "
                             "mode needs 'none' (a prediction at every position)")
        x, carry = self.backbone.step(self._encode(x_t), carry, deterministic=deterministic)
        return self._head(normalize(self.norm, x)), carry

    def _encode(self, inputs: jax.Array) -> jax.Array:
        if self.info.tokens and self.cfg.classifier.encoder == "onehot":
            inputs = jax.nn.one_hot(inputs, self.info.vocab_size, dtype=jnp.dtype(self.cfg.dtype))
        return self.encoder(inputs).astype(jnp.float32)  # the residual stream stays float32

    def _features(self, inputs: jax.Array, lengths: jax.Array | None,
                  carry: tuple[Carry, ...] | None,
                  deterministic: bool) -> tuple[jax.Array, tuple[Carry, ...]]:
        """-> (pooled features [B, d_model], or [B, L, d_model] for pooling "none"; carry)."""
        batch, length = inputs.shape[:2]
        if lengths is None:
            lengths = jnp.full((batch,), length, jnp.int32)
        mask = (jnp.arange(length)[None] < lengths[:, None])[..., None]  # [B, L, 1]
        reverse = reverse_index(lengths, length) if self.cfg.bidirectional else None
        x, carry = self.backbone(self._encode(inputs), carry, mask=mask, reverse=reverse,
                                 deterministic=deterministic)
        x = normalize(self.norm, x, mask, deterministic)
        return pool(x, lengths, self.cfg.classifier.pooling), carry

    def _head(self, features: jax.Array) -> jax.Array:
        logits = self.head(features).astype(jnp.float32)
        if self.label_slots:
            logits = logits.reshape(*logits.shape[:-1], self.label_slots, self.info.n_classes)
        return logits


def pool(x: jax.Array, lengths: jax.Array, pooling: str) -> jax.Array:
    """x [B, L, D], lengths int [B] -> [B, D]: the mean over positions t < length ("mean"), the
    position length − 1 ("last"); "none" returns x unchanged."""
    if pooling == "none":
        return x
    if pooling == "last":
        return jnp.take_along_axis(x, (lengths - 1)[:, None, None], axis=1)[:, 0]
    mask = jnp.arange(x.shape[1])[None, :, None] < lengths[:, None, None]
    return jnp.where(mask, x, 0).sum(axis=1) / lengths[:, None].astype(x.dtype)
