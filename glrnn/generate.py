"""Generation: prefill the prompts in parallel, then decode in compiled chunks.

Prompts (``BOS + tokens`` each) are left-padded to one length and run through
``LanguageModel.__call__`` with segment ids 0 for the padding and 1 for the prompt, so the
recurrent state is cleared where each prompt starts: padding never enters the state, and every
row computes what its prompt alone would. A prompt is prefilled in pieces whose sizes
are powers of two (after chunks of ``prefill_chunk`` positions for very long prompts), the carry
passed along, so any prompt length compiles one of a few shapes (a row whose prompt starts
exactly at a piece boundary has its carry cleared there). Decoding runs
``LanguageModel.step`` inside a ``lax.scan`` over ``chunk`` tokens (compiled once per batch
shape and sampling setting), and a Python loop over chunks hands each chunk to a callback, so
text streams out without one Python call per token. Sampling: glrnn/sampling.py.

Positions (``model.positions``): each prompt's BOS is position 0 (the segment ids restart it),
the carry counts on through prefill pieces, decoding, saved states and turns, and a clear row
starts again at 0. With a learned table, :meth:`Generator.generate`, :meth:`Generator.prefill`,
:meth:`Generator.decode` and :meth:`Session.check_turn` refuse, before any work, a request that
would reach past it (glrnn/positions.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from glrnn.models import LanguageModel
from glrnn.positions import check_room, next_position
from glrnn.sampling import Sampling, sample
from glrnn.tokenizer import Tokenizer

Params = Any
GREEDY = Sampling(temperature=0.0)


@dataclass(frozen=True)
class Generated:
    tokens: np.ndarray  # [B, n] int32, the sampled tokens
    logits: np.ndarray  # [B, n, V] float32, the logits each token was sampled from
    next_logits: jax.Array  # [B, V]: the logits of the token after the last one
    carry: Any  # the model's state after the last token ([B, ...] arrays)


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(tokens [B, P] int32, segment ids [B, P] int32: 0 on padding, 1 on the prompt)."""
    length = max(len(p) for p in prompts)
    if min(len(p) for p in prompts) == 0:
        raise ValueError("every prompt needs at least one token (BOS)")
    tokens = np.full((len(prompts), length), pad_id, np.int32)
    segments = np.zeros((len(prompts), length), np.int32)
    for row, prompt in enumerate(prompts):
        tokens[row, length - len(prompt):] = prompt
        segments[row, length - len(prompt):] = 1
    return tokens, segments


def prefill_pieces(length: int, chunk: int = 0) -> list[int]:
    """Piece sizes (summing to ``length``) in which a prompt is prefilled: pieces of ``chunk``
    (0: no limit), then the rest as powers of two, largest first (13 -> 8, 4, 1). The prefill
    compiles once per piece size, so prompts of any length need at most log2 of the longest
    + 2 compilations per batch size instead of one per length."""
    sizes = [chunk] * (length // chunk) if chunk else []
    rest = length - sum(sizes)
    while rest:
        sizes.append(1 << (rest.bit_length() - 1))
        rest -= sizes[-1]
    return sizes


def clear_rows(carry: Any, rows: np.ndarray) -> Any:
    """The carry (a pytree of [B, ...] arrays) with the states of ``rows`` (bool [B]) zeroed."""
    rows = jnp.asarray(rows)
    return jax.tree.map(lambda c: jnp.where(rows.reshape((-1,) + (1,) * (c.ndim - 1)), 0, c),
                        carry)


class Generator:
    """Prefill + chunked decode for one model and its parameters."""

    def __init__(self, model: LanguageModel, params: Params, chunk: int = 16,
                 prefill_chunk: int = 0) -> None:
        self.model, self.params, self.chunk = model, params, chunk
        self.prefill_chunk = prefill_chunk
        self._prefill = jax.jit(self._prefill_fn)
        self._decode = jax.jit(self._decode_fn, static_argnames=("settings",))

    def _prefill_fn(self, params: Params, tokens: jax.Array, segments: jax.Array,
                    carry: Any) -> tuple[jax.Array, Any]:
        """tokens, segments [B, P], carry or None -> (logits of the next token [B, V], carry)."""
        logits, carry = self.model.apply({"params": params}, tokens, carry,
                                         segment_ids=segments, deterministic=True)
        return logits[:, -1], carry

    def prefill(self, tokens: np.ndarray, segments: np.ndarray,
                carry: Any = None) -> tuple[jax.Array, Any]:
        """The prompt batch tokens, segments [B, P] from ``carry`` (None: the zero state), in the
        pieces of :func:`prefill_pieces` -> (logits of the next token [B, V], carry)."""
        start = next_position(carry)
        check_room(self.model.cfg, start + tokens.shape[1],
                   f"{start} tokens so far + a prompt of {tokens.shape[1]}")
        if carry is None:  # the zero state, so that every piece compiles one way
            carry = zero_carry(self.model, self.params, tokens.shape[0])
        start = 0
        for size in prefill_pieces(tokens.shape[1], self.prefill_chunk):
            if start:  # rows whose prompt starts right here drop the padding's state
                carry = clear_rows(carry, segments[:, start] != segments[:, start - 1])
            logits, carry = self._prefill(self.params, jnp.asarray(tokens[:, start:start + size]),
                                          jnp.asarray(segments[:, start:start + size]), carry)
            start += size
        return logits, carry

    def _decode_fn(self, params: Params, logits: jax.Array, carry: Any, seen: jax.Array | None,
                   key: jax.Array, steps: jax.Array, *, settings: Sampling):
        """``chunk`` steps from (logits [B, V], carry): sample, then step the model; only the
        first ``steps`` of them advance the state (so a short last chunk ends exactly).
        -> (tokens [B, chunk], the logits they came from [B, chunk, V], last logits, carry,
        seen)."""

        def body(state, inputs):
            logits, carry, seen = state
            step_key, index = inputs
            token = sample(logits, step_key, settings, seen)
            new_seen = None if seen is None else seen.at[jnp.arange(token.shape[0]), token].set(
                True)
            next_logits, next_carry = self.model.apply({"params": params}, token, carry,
                                                       method="step")
            new = (next_logits, next_carry, new_seen)
            state = jax.tree.map(lambda n, o: jnp.where(index < steps, n, o), new, state)
            return state, (token, logits)

        inputs = (jax.random.split(key, self.chunk), jnp.arange(self.chunk))
        (logits, carry, seen), (tokens, used) = jax.lax.scan(body, (logits, carry, seen), inputs)
        return tokens.T, jnp.swapaxes(used, 0, 1), logits, carry, seen

    def generate(self, prompts: Sequence[Sequence[int]] | np.ndarray, max_new_tokens: int, *,
                 sampling: Sampling = GREEDY, seed: int = 0, stop_id: int | None = None,
                 pad_id: int = 0,
                 on_chunk: Callable[[np.ndarray], bool | None] | None = None) -> Generated:
        """Continue each prompt (lists of ids of any lengths >= 1, or an array [B, P]) by up to
        ``max_new_tokens`` tokens.

        ``on_chunk`` gets each chunk's tokens [B, <= chunk] as it is decoded and may return True
        to end decoding there. With ``stop_id`` (B = 1) decoding ends after that token, which is
        kept as the last one.
        """
        tokens, segments = left_pad([list(map(int, p)) for p in prompts], pad_id)
        check_room(self.model.cfg, tokens.shape[1] + max_new_tokens,
                   f"a prompt of {tokens.shape[1]} tokens + {max_new_tokens} new ones")
        logits, carry = self.prefill(tokens, segments)
        seen = None
        if sampling.repetition_penalty != 1.0:
            seen = np.zeros(logits.shape, bool)
            rows, cols = np.nonzero(segments)
            seen[rows, tokens[rows, cols]] = True
        return self.decode(logits, carry, max_new_tokens, sampling=sampling, seed=seed,
                           stop_id=stop_id, seen=seen, on_chunk=on_chunk)

    def decode(self, logits: jax.Array, carry: Any, max_new_tokens: int, *,
               sampling: Sampling = GREEDY, seed: int = 0, stop_id: int | None = None,
               seen: np.ndarray | None = None,
               on_chunk: Callable[[np.ndarray], bool | None] | None = None) -> Generated:
        """Decode from the next-token ``logits`` [B, V] and ``carry`` (after a prefill, or a
        saved state); ``seen`` [B, V] bool: tokens the repetition penalty counts."""
        start = next_position(carry)
        check_room(self.model.cfg, start + max_new_tokens,
                   f"{start} tokens so far + {max_new_tokens} new ones")
        if sampling.repetition_penalty != 1.0:
            seen = jnp.asarray(np.zeros(logits.shape, bool) if seen is None else seen)
        else:
            seen = None
        key = jax.random.key(seed)
        out = [np.zeros((logits.shape[0], 0), np.int32)]
        used = [np.zeros((logits.shape[0], 0, logits.shape[1]), np.float32)]
        produced = 0
        while produced < max_new_tokens:
            key, chunk_key = jax.random.split(key)
            n = min(self.chunk, max_new_tokens - produced)
            before = (logits, carry, seen)
            chunk_tokens, chunk_logits, logits, carry, seen = self._decode(
                self.params, *before, chunk_key, np.int32(n), settings=sampling)
            chunk_tokens, chunk_logits = np.asarray(chunk_tokens[:, :n]), chunk_logits[:, :n]
            stops = np.flatnonzero(chunk_tokens[0] == stop_id) if stop_id is not None else []
            if len(stops):  # redo the chunk so that the state ends right after the stop token
                n = int(stops[0]) + 1
                _, _, logits, carry, seen = self._decode(
                    self.params, *before, chunk_key, np.int32(n), settings=sampling)
                chunk_tokens, chunk_logits = chunk_tokens[:, :n], chunk_logits[:, :n]
            out.append(chunk_tokens)
            used.append(np.asarray(chunk_logits))
            produced += n
            asked_to_stop = on_chunk is not None and on_chunk(chunk_tokens)
            if len(stops) or asked_to_stop:
                break
        return Generated(np.concatenate(out, axis=1), np.concatenate(used, axis=1), logits,
                         carry)


@dataclass(frozen=True)
class SessionState:
    """Where a session stands, as values: every token read or generated so far (of the first
    sequence), the logits of the next token [B, V] and the model's carry ([B, ...] arrays);
    logits and carry are None before the first token."""

    tokens: tuple[int, ...] = ()
    logits: Any = None
    carry: Any = None


class Session:
    """One conversation with a model, turn by turn: :meth:`read` a prompt on top of the state,
    then :meth:`decode` its continuation; each returns the new state as a value (nothing is
    kept here), so a caller can save it, go on from it, or go back to an earlier one.
    ``num_samples`` continuations of one prompt decode as one batch."""

    def __init__(self, generator: Generator, tokenizer: Tokenizer, num_samples: int = 1) -> None:
        self.generator, self.tokenizer, self.num_samples = generator, tokenizer, num_samples

    def prompt(self, state: SessionState, text: str) -> list[int]:
        """The ids :meth:`read` reads for ``text``: BOS first when nothing was read yet."""
        prompt = self.tokenizer.encode(text)
        return prompt if state.carry is not None else [self.tokenizer.bos_id, *prompt]

    def check_turn(self, state: SessionState, text: str, max_new_tokens: int) -> None:
        """ConfigError, before any work, unless reading ``text`` after ``state`` and decoding
        ``max_new_tokens`` stays inside a learned position table."""
        start, prompt = next_position(state.carry), len(self.prompt(state, text))
        check_room(self.generator.model.cfg, start + prompt + max_new_tokens,
                   f"{start} tokens so far + a prompt of {prompt} + {max_new_tokens} new ones")

    def read(self, state: SessionState, text: str) -> SessionState:
        """``state`` after the tokens of ``text`` (BOS first when nothing was read yet)."""
        prompt = self.prompt(state, text)
        if not prompt:
            return state
        ids = np.asarray([prompt] * self.num_samples, np.int32)
        carry = None if state.carry is None else jax.tree.map(
            lambda c: jnp.repeat(c, self.num_samples, axis=0), state.carry)
        logits, carry = self.generator.prefill(ids, np.ones_like(ids), carry)
        return SessionState((*state.tokens, *prompt), logits, carry)

    def decode(self, state: SessionState, max_new_tokens: int, *, sampling: Sampling = GREEDY,
               seed: int = 0, on_chunk: Callable[[np.ndarray], bool | None] | None = None
               ) -> tuple[Generated, SessionState]:
        """Up to ``max_new_tokens`` tokens after ``state`` (one sequence stops after EOS); the
        repetition penalty counts every token of the state (prompts and earlier turns)."""
        seen = np.zeros(state.logits.shape, bool)
        seen[:, list(state.tokens)] = True
        single = self.num_samples == 1
        out = self.generator.decode(state.logits, state.carry, max_new_tokens, sampling=sampling,
                                    seed=seed, stop_id=self.tokenizer.eos_id if single else None,
                                    seen=seen, on_chunk=on_chunk)
        tokens = (*state.tokens, *out.tokens[0].tolist())
        return out, SessionState(tokens, out.next_logits, out.carry)


class TextStream:
    """Turns chunks of generated token ids into text pieces as they come, holding back a
    trailing partial character (decoded as U+FFFD) and anything that may be the start of a stop
    string; ``__call__`` returns True once a stop string has appeared (the text is cut before
    it)."""

    def __init__(self, tokenizer: Tokenizer, write: Callable[[str], None],
                 stop: Sequence[str] = ()) -> None:
        self.tokenizer, self.write, self.stop = tokenizer, write, [s for s in stop if s]
        self.hold = max((len(s) for s in self.stop), default=1) - 1
        self.ids: list[int] = []
        self.shown = 0
        self.stopped = False

    def __call__(self, chunk: np.ndarray) -> bool:
        """chunk [1, n] int: the next tokens of the one sequence -> whether to stop."""
        if self.stopped:
            return True
        self.ids += chunk[0].tolist()
        text = self.tokenizer.decode(self.ids)
        cuts = [i for i in (text.find(s) for s in self.stop) if i >= 0]
        if cuts:
            self.stopped = True
            self._emit(text[:min(cuts)])
            return True
        self._emit(text.rstrip("\ufffd")[:max(0, len(text) - self.hold)])
        return False

    def close(self) -> None:
        if not self.stopped:
            self._emit(self.tokenizer.decode(self.ids))

    def _emit(self, text: str) -> None:
        if len(text) > self.shown:
            self.write(text[self.shown:])
            self.shown = len(text)


def zero_carry(model: LanguageModel, params: Params, batch_size: int) -> Any:
    """The model's zero state for ``batch_size`` sequences."""
    return model.apply({"params": params}, batch_size, method="init_carry")
