"""Generation: prefill the prompt in one parallel call, then decode in compiled chunks.

The prompt ``BOS + tokens`` runs through ``LanguageModel.__call__`` once, giving the carry and
the logits of the next token. Decoding then runs ``LanguageModel.step`` inside a ``lax.scan``
over ``chunk`` tokens (compiled once), and a Python loop over chunks hands each chunk to a
callback, so text streams out without one Python call per token.

Sampling is a pure function of (logits, key): greedy at temperature 0, else softmax at the
temperature over the ``top_k`` most likely tokens (all when ``top_k`` is 0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from glrnn.config import Config
from glrnn.models import LanguageModel
from glrnn.params import abstract_params
from glrnn.tokenizer import Tokenizer
from glrnn.train.checkpoint import Checkpoints, checkpoint_dir
from glrnn.train.run import read_config

Params = Any


def sample(logits: jax.Array, key: jax.Array, temperature: float, top_k: int) -> jax.Array:
    """Next tokens: logits [B, V], key -> [B] int32. Greedy when ``temperature == 0``; else
    sample from softmax(logits / temperature) restricted to the ``top_k`` largest (0: all)."""
    if temperature == 0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    logits = logits.astype(jnp.float32) / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = jax.lax.top_k(logits, top_k)[0][..., -1:]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)


@dataclass(frozen=True)
class Generated:
    tokens: np.ndarray  # [B, n] int32, the sampled tokens
    logits: np.ndarray  # [B, n, V] float32, the logits each token was sampled from


class Generator:
    """Prefill + chunked decode for one model and its parameters."""

    def __init__(self, model: LanguageModel, params: Params, chunk: int = 16) -> None:
        self.model, self.params, self.chunk = model, params, chunk
        self._prefill = jax.jit(self._prefill_fn)
        self._decode = jax.jit(self._decode_fn, static_argnames=("temperature", "top_k"))

    def _prefill_fn(self, params: Params, tokens: jax.Array) -> tuple[jax.Array, Any]:
        """tokens [B, P] -> (logits of the next token [B, V], carry)."""
        logits, carry = self.model.apply({"params": params}, tokens, deterministic=True)
        return logits[:, -1], carry

    def _decode_fn(self, params: Params, logits: jax.Array, carry: Any, key: jax.Array, *,
                   temperature: float, top_k: int):
        """``chunk`` steps from (logits [B, V], carry): sample, then step the model.
        -> (tokens [B, chunk], the logits they came from [B, chunk, V], last logits, carry)."""

        def body(state, step_key):
            logits, carry = state
            token = sample(logits, step_key, temperature, top_k)
            next_logits, carry = self.model.apply({"params": params}, token, carry,
                                                  method="step")
            return (next_logits, carry), (token, logits)

        keys = jax.random.split(key, self.chunk)
        (logits, carry), (tokens, used) = jax.lax.scan(body, (logits, carry), keys)
        return tokens.T, jnp.swapaxes(used, 0, 1), logits, carry

    def generate(self, prompt: np.ndarray, max_new_tokens: int, *, temperature: float = 1.0,
                 top_k: int = 0, seed: int = 0, stop_id: int | None = None,
                 on_chunk: Callable[[np.ndarray], None] | None = None) -> Generated:
        """Continue ``prompt`` [B, P] int32 (P >= 1) by up to ``max_new_tokens`` tokens.

        ``on_chunk`` gets each chunk's tokens [B, <= chunk] as it is decoded. With ``stop_id``
        (B = 1) decoding ends after that token, which is kept as the last one.
        """
        logits, carry = self._prefill(self.params, jnp.asarray(prompt, jnp.int32))
        key = jax.random.key(seed)
        tokens = [np.zeros((logits.shape[0], 0), np.int32)]
        used = [np.zeros((logits.shape[0], 0, logits.shape[1]), np.float32)]
        produced = 0
        while produced < max_new_tokens:
            key, chunk_key = jax.random.split(key)
            chunk_tokens, chunk_logits, logits, carry = self._decode(
                self.params, logits, carry, chunk_key, temperature=temperature, top_k=top_k)
            n = min(self.chunk, max_new_tokens - produced)
            chunk_tokens, chunk_logits = np.asarray(chunk_tokens[:, :n]), chunk_logits[:, :n]
            stops = np.flatnonzero(chunk_tokens[0] == stop_id) if stop_id is not None else []
            if len(stops):
                n = int(stops[0]) + 1
                chunk_tokens, chunk_logits = chunk_tokens[:, :n], chunk_logits[:, :n]
            tokens.append(chunk_tokens)
            used.append(np.asarray(chunk_logits))
            produced += n
            if on_chunk is not None:
                on_chunk(chunk_tokens)
            if len(stops):
                break
        return Generated(np.concatenate(tokens, axis=1), np.concatenate(used, axis=1))


class TextStream:
    """Turns chunks of token ids into text pieces, holding back a trailing partial character
    (decoded as U+FFFD) until the next chunk completes it."""

    def __init__(self, tokenizer: Tokenizer, write: Callable[[str], None]) -> None:
        self.tokenizer, self.write = tokenizer, write
        self.ids: list[int] = []
        self.shown = 0

    def __call__(self, chunk: np.ndarray) -> None:
        """chunk [1, n] int: the next tokens of the one sequence."""
        self.ids += chunk[0].tolist()
        self._emit(self.tokenizer.decode(self.ids).rstrip("\ufffd"))

    def close(self) -> None:
        self._emit(self.tokenizer.decode(self.ids))

    def _emit(self, text: str) -> None:
        if len(text) > self.shown:
            self.write(text[self.shown:])
            self.shown = len(text)


def load_run(run_dir: str | Path) -> tuple[Config, Tokenizer, LanguageModel, Params, int]:
    """(config, tokenizer, model, params of the latest checkpoint, its step) of a run."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    cfg, tokenizer = read_config(run_dir)
    if not checkpoint_dir(run_dir).is_dir():
        raise FileNotFoundError(f"run directory {run_dir} has no checkpoints yet")
    checkpoints = Checkpoints(run_dir, writable=False)
    try:
        step = checkpoints.latest_step()
        if step is None:
            raise FileNotFoundError(f"run directory {run_dir} has no checkpoints yet")
        model = LanguageModel(cfg.model)
        abstract, _ = abstract_params(model, jnp.zeros((1, 1), jnp.int32))
        params = checkpoints.restore_params(step, abstract)
    finally:
        checkpoints.close()
    return cfg, tokenizer, model, params, step
