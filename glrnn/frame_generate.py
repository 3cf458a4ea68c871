"""Generation over real-valued frames: read a prompt in parallel, then draw frame after frame with
the recurrent carry, in compiled chunks.

A fresh sequence is read as ``[start, prompt frames...]`` (the start row alone without a
prompt: the first frame is drawn from the learned start vector), normalised as the run's
training data were (glrnn/frames.py). The prompt goes through
:meth:`glrnn.generate.Generator.prefill` (pieces of power-of-two sizes, the carry passed along);
decoding runs ``LanguageModel.step`` in a ``lax.scan`` over ``chunk`` frames (compiled once per
batch shape and temperature), each step drawing a frame from the head's distribution
(glrnn/density.py) and feeding it back with its start flag 0. Memory per frame is constant:
the carry, one frame and the head's outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from glrnn.density import FrameDensity
from glrnn.generate import Generator
from glrnn.models import LanguageModel

Params = Any


@dataclass(frozen=True)
class GeneratedFrames:
    frames: np.ndarray  # [B, n, F] float32, the drawn frames (normalised)
    next_raw: jax.Array  # [B, P]: the head's outputs for the frame after the last one
    carry: Any  # the model's state after the last frame ([B, ...] arrays)


class FrameGenerator:
    """Prompt prefill + chunked frame-by-frame decoding for one continuous-input model."""

    def __init__(self, model: LanguageModel, params: Params, chunk: int = 16,
                 prefill_chunk: int = 0) -> None:
        self.model, self.params, self.chunk = model, params, chunk
        self.density = FrameDensity.of(model.cfg)
        self._reader = Generator(model, params, chunk, prefill_chunk)
        self._decode = jax.jit(self._decode_fn, static_argnames=("temperature",))

    def read(self, inputs: np.ndarray, carry: Any = None) -> tuple[jax.Array, Any]:
        """Model inputs [B, P, F + 1] (glrnn.frames.with_flags) from ``carry`` (None: the zero
        state) -> (the head's outputs for the next frame [B, P_raw], carry)."""
        return self._reader.prefill(inputs, np.ones(inputs.shape[:2], np.int32), carry)

    def _decode_fn(self, params: Params, raw: jax.Array, carry: Any, key: jax.Array,
                   steps: jax.Array, *, temperature: float):
        """``chunk`` steps from (raw [B, P], carry): draw a frame, then step the model on it;
        only the first ``steps`` of them advance the state -> (frames [B, chunk, F], raw,
        carry)."""

        def body(state, inputs):
            raw, carry = state
            step_key, index = inputs
            frame = self.density.sample(raw, step_key, temperature)
            x = jnp.concatenate([frame, jnp.zeros_like(frame[:, :1])], axis=-1)  # flag 0
            new = self.model.apply({"params": params}, x, carry, method="step")
            state = jax.tree.map(lambda n, o: jnp.where(index < steps, n, o), new, state)
            return state, frame

        inputs = (jax.random.split(key, self.chunk), jnp.arange(self.chunk))
        (raw, carry), frames = jax.lax.scan(body, (raw, carry), inputs)
        return jnp.swapaxes(frames, 0, 1), raw, carry

    def decode(self, raw: jax.Array, carry: Any, n_frames: int, *, temperature: float = 1.0,
               seed: int = 0,
               on_chunk: Callable[[np.ndarray], None] | None = None) -> GeneratedFrames:
        """``n_frames`` frames after (raw [B, P], carry), drawn at ``temperature`` (0: greedy,
        see glrnn/density.py); ``on_chunk`` gets each chunk's frames [B, <= chunk, F]."""
        key = jax.random.key(seed)
        out = [np.zeros((raw.shape[0], 0, self.density.width), np.float32)]
        produced = 0
        while produced < n_frames:
            key, chunk_key = jax.random.split(key)
            n = min(self.chunk, n_frames - produced)
            frames, raw, carry = self._decode(self.params, raw, carry, chunk_key, np.int32(n),
                                              temperature=float(temperature))
            frames = np.asarray(frames[:, :n])
            out.append(frames)
            produced += n
            if on_chunk is not None:
                on_chunk(frames)
        return GeneratedFrames(np.concatenate(out, axis=1), raw, carry)
