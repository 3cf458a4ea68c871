"""Generation from a run directory as generate.py asks for it: the options (:class:`Args`),
checked before any work, then the turns of a token run streamed to standard output (or, for a
μ-law run, into a WAV file) through a :class:`glrnn.generate.Session`, or a continuous-input
run's frames drawn by a :class:`glrnn.frame_generate.FrameGenerator` and written to a file.

generate.py parses the command line into :class:`Args` and calls :func:`generate`; a user's
mistake is one line on stderr and an exit status (glrnn/cli.py), before anything is generated
where it can be known then. In ``--interactive`` mode a line that cannot be read (not UTF-8,
or past a learned position table) is reported and skipped, the session's state kept; Ctrl-C
keeps what was read or drawn so far (``--save-state``, ``--frames-out``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from glrnn.audio import MuLawTokenizer, WavWriter, draw_spectrogram
from glrnn.cli import USER_ERRORS, report
from glrnn.config import Config, ConfigError, check
from glrnn.files import output_file, write_atomic
from glrnn.frame_generate import FrameGenerator
from glrnn.frames import FrameCodec, check_frames, draw_frames, with_flags
from glrnn.generate import Generator, Session, SessionState, TextStream, zero_carry
from glrnn.runs.load import load_run
from glrnn.sampling import Sampling
from glrnn.state import load_state, model_identity, save_state
from glrnn.tokenizer import Tokenizer


@dataclass(frozen=True)
class Args:
    run: str = "runs/latest"  # run directory (config.json + checkpoints/)
    prompt: str = ""  # text to continue; empty starts from BOS alone (or the loaded state)
    max_new_tokens: int = 256  # tokens to generate after the prompt (per sample)
    temperature: float = 0.8  # 0: greedy
    top_k: int = 0  # sample among the k most likely tokens; 0: all
    top_p: float = 1.0  # sample among the most likely tokens holding this much probability
    min_p: float = 0.0  # drop tokens less likely than min_p x the most likely one
    repetition_penalty: float = 1.0  # > 1 makes tokens already in the text less likely
    stop: tuple[str, ...] = ()  # stop when one of these strings appears (EOS always stops)
    num_samples: int = 1  # continuations of the prompt, decoded as one batch
    seed: int = 0  # the sampling's random key
    save_state: str = ""  # write the state after generating to this file
    load_state: str = ""  # continue from a state saved by --save-state
    interactive: bool = False  # read prompts from stdin, one per line, keeping the state
    audio: str = ""  # a μ-law (audio) run: stream the samples into this .wav file (+ .png)
    frames: int = 0  # a continuous-input run: frames to generate (per sample)
    prompt_frames: str = ""  # a continuous-input run: a .npy of frames [T, F] to continue
    frames_out: str = ""  # a continuous-input run: write the frames to this .npy file (+ .png)


def generate(args: Args) -> int:
    """Everything generate.py does with ``args``; the exit status (0, or the status of the
    mistake or Ctrl-C reported)."""
    try:
        sampling = check_args(args)
        cfg, tokenizer, model, params, step = load_run(args.run)
        if cfg.model.continuous:
            check_frame_options(args)
            prompt = read_prompt_frames(args.prompt_frames, tokenizer)
        else:
            check_token_options(args)
    except USER_ERRORS as e:
        return report(e)
    if cfg.model.continuous:
        return generate_frames(args, cfg, tokenizer, model, params, step, prompt)
    return generate_text(args, sampling, cfg, tokenizer, model, params, step)


def check_args(args: Args) -> Sampling:
    """The sampling ``args`` ask for; ConfigError (one line naming the option) for an option
    that is wrong whatever the run, and for an output file that cannot be written."""
    check(args.max_new_tokens > 0, "--max-new-tokens", args.max_new_tokens, "> 0")
    check(args.num_samples >= 1, "--num-samples", args.num_samples, ">= 1")
    check(args.num_samples == 1 or not (args.save_state or args.load_state or args.interactive),
          "--num-samples", args.num_samples, "1 with --save-state, --load-state or "
          "--interactive")
    sampling = Sampling(args.temperature, args.top_k, args.top_p, args.min_p,
                        args.repetition_penalty)
    if args.save_state:  # checked before generating: nothing generated is lost
        output_file(args.save_state, "--save-state")
    if args.audio:
        check(Path(args.audio).suffix.lower() == ".wav", "--audio", args.audio,
              "a .wav file (its spectrogram goes beside it as .png)")
        check(not args.interactive, "--audio", args.audio,
              "no --interactive (each turn would write the file anew)")
        output_file(args.audio, "--audio")
        output_file(Path(args.audio).with_suffix(".png"), "--audio (its spectrogram)")
    check(args.frames >= 0, "--frames", args.frames, ">= 0")
    if args.frames_out:
        check(Path(args.frames_out).suffix == ".npy", "--frames-out", args.frames_out,
              "a .npy file (a picture of the frames goes beside it as .png)")
        output_file(args.frames_out, "--frames-out")
        output_file(Path(args.frames_out).with_suffix(".png"), "--frames-out (its picture)")
    return sampling


def check_token_options(args: Args) -> None:
    """The frame options, which mean nothing to a token run, refused before any work."""
    for flag, value in (("--frames", args.frames), ("--prompt-frames", args.prompt_frames),
                        ("--frames-out", args.frames_out)):
        check(not value, flag, value, f"{'0' if flag == '--frames' else 'empty'} for a token run "
              "(frames are for a run with model.input=continuous)")


def check_run_options(args: Args, tokenizer: Tokenizer) -> None:
    """The options against the run's tokenizer: ``--audio`` for a μ-law run and for it only."""
    audio_run = isinstance(tokenizer, MuLawTokenizer)
    check(not args.audio or audio_run, "--audio", args.audio,
          f"a run with a μ-law tokenizer (this run's is {tokenizer.name})")
    check(args.audio or not audio_run, "--audio", args.audio,
          "a .wav file to write this μ-law (audio) run's samples into")
    check(not (args.prompt and audio_run), "--prompt", args.prompt,
          "empty for a μ-law (audio) run (text means nothing to it)")
    check(args.audio == "" or args.num_samples == 1, "--num-samples", args.num_samples,
          "1 with --audio")


def generate_text(args: Args, sampling: Sampling, cfg: Config, tokenizer: Tokenizer,
                  model: Any, params: Any, step: int) -> int:
    """The turns of a token run: ``--prompt``, or each line of standard input with
    ``--interactive``; then ``--save-state``. The exit status."""
    try:
        check_run_options(args, tokenizer)
        identity = model_identity(cfg, tokenizer, step)
        session = Session(Generator(model, params), tokenizer, args.num_samples)
        state = SessionState()
        if args.load_state:
            carry, logits, history = load_state(args.load_state, identity,
                                                zero_carry(model, params, 1))
            state = SessionState(tuple(history), jnp.asarray(logits),
                                 jax.tree.map(jnp.asarray, carry))
        if not args.interactive:  # a learned position table long enough (each line: below)
            session.check_turn(state, args.prompt, args.max_new_tokens)
    except USER_ERRORS as e:
        return report(e)
    status = 0
    try:
        if args.interactive:
            for i, raw in enumerate(sys.stdin.buffer):
                line = usable_line(session, state, raw, i + 1, args.max_new_tokens)
                if line is not None:
                    state = session.read(state, line)  # kept if Ctrl-C comes while decoding
                    state = stream_turn(session, state, line, args, sampling, args.seed + i)
        else:
            state = session.read(state, args.prompt)
            state = stream_turn(session, state, args.prompt, args, sampling, args.seed)
    except KeyboardInterrupt as e:  # the state so far (what was read) is still saved
        print(flush=True)
        status = report(e)
    if args.save_state and state.carry is None:  # an interactive session given no line
        print(f"warning: nothing was read: no state saved to {args.save_state}", file=sys.stderr)
    elif args.save_state:
        path = save_state(args.save_state, state.carry, state.logits, list(state.tokens),
                          identity=identity)
        print(f"state after {len(state.tokens)} tokens saved to {path}", file=sys.stderr)
    return status


def usable_line(session: Session, state: SessionState, raw: bytes, number: int,
                max_new_tokens: int) -> str | None:
    """Input line ``number`` (``raw``, its bytes) as the next turn's text, or None when it is
    not UTF-8 or would reach past a learned position table after ``state``: then it is
    reported in one line and skipped (the session and its state go on)."""
    try:
        line = raw.decode().rstrip("\r\n")
    except UnicodeDecodeError as e:
        report(ConfigError(f"input line {number} is not UTF-8 text ({e.reason} at byte "
                           f"{e.start}): skipped, the state is kept"))
        return None
    try:
        session.check_turn(state, line, max_new_tokens)
    except ConfigError as e:
        report(ConfigError(f"input line {number}: {e}: skipped, the state is kept"))
        return None
    return line


def stream_turn(session: Session, state: SessionState, text: str, args: Args,
                sampling: Sampling, seed: int) -> SessionState:
    """Decode the continuation of ``state`` (which has just read ``text``) and stream it:
    ``text`` and then the text as it is decoded to standard output (one sample), or each
    sample after a ``--- sample i ---`` line once all are decoded (``--num-samples``); a
    μ-law run's samples into the ``--audio`` WAV file (whole even after Ctrl-C) and its
    spectrogram beside it. Returns the state after the turn."""
    tokenizer = session.tokenizer
    streams = [TextStream(tokenizer, lambda s: print(s, end="", flush=True), args.stop)
               for _ in range(args.num_samples)]
    single = args.num_samples == 1
    if single:
        print(text, end="", flush=True)
    sink = streams[0] if single else None
    if args.audio:
        writer = WavWriter(args.audio, tokenizer.rate)
        sink = lambda chunk: writer.write(tokenizer.decode_audio(chunk[0]))  # noqa: E731
    try:
        out, state = session.decode(state, args.max_new_tokens, sampling=sampling, seed=seed,
                                    on_chunk=sink)
    finally:  # Ctrl-C too: the samples streamed so far make a whole WAV file
        if args.audio:
            writer.close()
    if args.audio:
        samples = tokenizer.decode_audio(out.tokens[0])
        png = draw_spectrogram(samples, tokenizer.rate, Path(args.audio).with_suffix(".png"))
        print(f"{len(samples)} samples written to {args.audio}, spectrogram {png}",
              file=sys.stderr)
    for i, stream in enumerate(streams):
        if not single:
            print(f"--- sample {i + 1} ---\n{text}", end="")
            stream(out.tokens[i:i + 1])
        stream.close()
        print(flush=True)
    return state


def check_frame_options(args: Args) -> None:
    """The options that mean nothing to a continuous-input run, refused before any work."""
    check(args.frames > 0, "--frames", args.frames,
          "> 0 (the frames to generate) for a continuous-input run")
    check(bool(args.frames_out), "--frames-out", args.frames_out,
          "a .npy file to write this continuous-input run's frames into")
    for flag, value, default in (("--prompt", args.prompt, ""), ("--audio", args.audio, ""),
                                 ("--interactive", args.interactive, False),
                                 ("--stop", args.stop, ()), ("--top-k", args.top_k, 0),
                                 ("--top-p", args.top_p, 1.0), ("--min-p", args.min_p, 0.0),
                                 ("--repetition-penalty", args.repetition_penalty, 1.0)):
        check(value == default, flag, value, f"{default!r} for a continuous-input run (it reads "
              "--prompt-frames FILE.npy and draws frames at --temperature)")


def read_prompt_frames(path: str, codec: FrameCodec) -> np.ndarray:
    """The frames [T, F] of ``path`` (none when empty); ConfigError for another width."""
    if not path:
        return np.zeros((0, codec.width), np.float32)
    if not Path(path).is_file():
        raise FileNotFoundError(f"--prompt-frames {path}: no such file")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ConfigError(f"--prompt-frames {path}: not a readable .npy array ({e})") from e
    return check_frames(array, codec.width, f"--prompt-frames {path}")


def generate_frames(args: Args, cfg: Config, codec: FrameCodec, model: Any, params: Any,
                    step: int, prompt: np.ndarray) -> int:
    """Draw ``args.frames`` frames after the prompt (and the loaded state) and write them."""
    generator = FrameGenerator(model, params)
    identity = model_identity(cfg, codec, step)
    repeat = lambda tree: jax.tree.map(  # noqa: E731
        lambda c: jnp.repeat(jnp.asarray(c), args.num_samples, axis=0), tree)
    raw = carry = None
    try:
        if args.load_state:
            carry, raw, _ = load_state(args.load_state, identity, zero_carry(model, params, 1))
            raw, carry = repeat(raw), repeat(carry)
    except USER_ERRORS as e:
        return report(e)
    inputs = with_flags(codec.normalize(prompt), start=carry is None)
    drawn: list[np.ndarray] = []
    status, out = 0, None
    try:
        if len(inputs):
            raw, carry = generator.read(np.repeat(inputs[None], args.num_samples, axis=0), carry)
        out = generator.decode(raw, carry, args.frames, temperature=args.temperature,
                               seed=args.seed, on_chunk=drawn.append)
    except KeyboardInterrupt as e:  # the frames drawn so far are still written
        status = report(e)
    frames = codec.denormalize(np.concatenate(drawn, axis=1) if drawn else
                               np.zeros((args.num_samples, 0, codec.width)))
    frames = frames[0] if args.num_samples == 1 else frames
    write_atomic(args.frames_out, lambda f: np.save(f, frames))
    picture = ""
    if frames.shape[-2]:
        png = draw_frames(frames, Path(args.frames_out).with_suffix(".png"),
                          f"{frames.shape[-2]} frames from {args.run} (step {step})")
        picture = f", picture {png}"
    print(f"{frames.shape[-2]} frames of {codec.width} values written to {args.frames_out} "
          f"{list(frames.shape)}{picture}", file=sys.stderr)
    if args.save_state and out is not None:
        path = save_state(args.save_state, out.carry, out.next_raw, [], identity=identity)
        print(f"state after {len(prompt)} prompt and {args.frames} drawn frames saved to "
              f"{path}", file=sys.stderr)
    return status
