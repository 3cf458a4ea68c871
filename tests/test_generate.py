"""Generation: the sampler, prefill + chunked decode against the parallel forward, the CLI."""

from __future__ import annotations

import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tiny_lm import load_script, tiny_config

from glrnn.config import AttentionConfig, ConfigError, GateLoopQKVConfig, ModelConfig
from glrnn.generate import (
    Generator,
    Session,
    SessionState,
    TextStream,
    prefill_pieces,
    zero_carry,
)
from glrnn.mixers import MIXERS
from glrnn.models import LanguageModel
from glrnn.params import abstract_params, init_params
from glrnn.runs.checkpoint import Checkpoints
from glrnn.runs.run import run_dir_of, write_config
from glrnn.sampling import Sampling, filter_logits, sample
from glrnn.state import load_state, model_identity, save_state
from glrnn.tokenizer import ByteTokenizer
from glrnn.train.optim import make_optimizer

generate_cli = load_script("generate")


def reference_filter(logits, temperature, top_k=0, top_p=1.0, min_p=0.0, penalty=1.0,
                     seen=None):
    """The filters written out in numpy, one row at a time."""
    out = []
    for row, x in enumerate(np.asarray(logits, np.float64)):
        x = x.copy()
        if seen is not None:
            s = seen[row]
            x[s] = np.where(x[s] > 0, x[s] / penalty, x[s] * penalty)
        x = x / temperature
        if 0 < top_k < len(x):
            x[x < np.sort(x)[-top_k]] = -np.inf
        p = np.exp(x - x.max())
        p /= p.sum()
        order = np.argsort(-x, kind="stable")
        kept, mass = [], 0.0
        for i in order:
            if mass >= top_p:
                break
            kept.append(i)
            mass += p[i]
        x[[i for i in range(len(x)) if i not in kept]] = -np.inf
        p = np.exp(x - x[np.isfinite(x)].max())
        p /= p.sum()
        x[p < min_p * p.max()] = -np.inf
        out.append(x)
    return np.array(out)


LOGITS = np.array([[0.0, 3.0, 1.0, 2.0, -1.0, 2.5], [5.0, 0.1, -2.0, 4.9, 1.0, 0.5]],
                  np.float32)
SEEN = np.array([[0, 1, 0, 0, 1, 0], [1, 0, 0, 0, 0, 1]], bool)


@pytest.mark.parametrize("settings", [
    {"temperature": 0.7}, {"temperature": 1.0, "top_k": 3}, {"temperature": 1.3, "top_p": 0.6},
    {"temperature": 1.0, "min_p": 0.3}, {"temperature": 0.9, "repetition_penalty": 1.8},
    {"temperature": 1.1, "top_k": 4, "top_p": 0.9, "min_p": 0.05, "repetition_penalty": 1.3}])
def test_filters_match_numpy_reference(settings):
    sampling = Sampling(**settings)
    got = filter_logits(jnp.asarray(LOGITS), sampling, jnp.asarray(SEEN))
    ref = reference_filter(LOGITS, sampling.temperature, sampling.top_k, sampling.top_p,
                           sampling.min_p, sampling.repetition_penalty, SEEN)
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(ref))
    np.testing.assert_allclose(np.asarray(got)[np.isfinite(ref)], ref[np.isfinite(ref)],
                               rtol=1e-5)
    # samples only ever land on the kept tokens
    draws = jax.vmap(lambda k: sample(jnp.asarray(LOGITS), k, sampling, jnp.asarray(SEEN)))(
        jax.random.split(jax.random.key(0), 300))
    for row in range(2):
        assert set(np.unique(draws[:, row])) <= set(np.flatnonzero(np.isfinite(ref[row])))


def test_greedy_with_penalty_and_bad_settings():
    key = jax.random.key(0)
    np.testing.assert_array_equal(sample(jnp.asarray(LOGITS), key, Sampling(0.0)), [1, 0])
    penalised = sample(jnp.asarray(LOGITS), key, Sampling(0.0, repetition_penalty=2.0),
                       jnp.asarray(SEEN))
    np.testing.assert_array_equal(penalised, [5, 3])  # 3.0/2 < 2.5; 5.0/2 < 4.9
    for bad, match in [({"temperature": -1.0}, "--temperature=-1.0"),
                       ({"top_p": 0.0}, r"--top-p=0.0: expected in \(0, 1\]"),
                       ({"top_p": 1.5}, "--top-p=1.5"), ({"top_k": -2}, "--top-k=-2"),
                       ({"min_p": 1.0}, "--min-p=1.0"),
                       ({"repetition_penalty": 0.5}, "--repetition-penalty=0.5")]:
        with pytest.raises(ConfigError, match=match):
            Sampling(**bad)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    cfg = tiny_config(tmp_path_factory.mktemp("generate"))
    model = LanguageModel(cfg.model)
    params, _ = init_params(model, jax.random.key(1), jnp.zeros((1, 4), jnp.int32))
    return cfg, model, params


def test_decoding_from_the_carry_matches_the_parallel_forward(tiny_model):
    _, model, params = tiny_model
    prompt = np.array([[256, 104, 105]], np.int32)
    out = Generator(model, params, chunk=8).generate(prompt, 20)
    assert out.tokens.shape == (1, 20) and out.logits.shape == (1, 20, 259)
    # greedy: token i is the argmax of the logits it was sampled from ...
    np.testing.assert_array_equal(out.tokens, out.logits.argmax(-1))
    # ... and those logits are what the parallel forward gives on the grown sequence (causal, so
    # one forward over the whole sequence gives every prefix's last logits).
    full = np.concatenate([prompt, out.tokens], axis=1)
    logits, _ = model.apply({"params": params}, jnp.asarray(full[:, :-1]), deterministic=True)
    np.testing.assert_allclose(out.logits, np.asarray(logits[:, prompt.shape[1] - 1:]),
                               rtol=1e-5, atol=1e-5)


def test_stop_token_ends_generation(tiny_model):
    _, model, params = tiny_model
    prompt = np.array([[256]], np.int32)
    out = Generator(model, params, chunk=4).generate(prompt, 10)
    stop = int(out.tokens[0, 5])
    stopped = Generator(model, params, chunk=4).generate(prompt, 10, stop_id=stop)
    first = int(np.flatnonzero(out.tokens[0] == stop)[0])
    np.testing.assert_array_equal(stopped.tokens, out.tokens[:, :first + 1])
    assert Generator(model, params).generate(prompt, 0).tokens.shape == (1, 0)


def test_uneven_prompts_generate_what_each_generates_alone(tiny_model):
    """Left padding never enters the state: every row of a padded batch (greedy) gives the
    tokens and logits of its prompt run alone, with or without chunked prefill."""
    _, model, params = tiny_model
    prompts = [[256, 104, 105, 32, 116, 104, 101], [256], [256, 97, 98]]
    alone = [Generator(model, params, chunk=4).generate([p], 9) for p in prompts]
    for prefill_chunk in (0, 3, 2):  # 2 and 3: some prompt starts exactly on a chunk edge
        batch = Generator(model, params, chunk=4, prefill_chunk=prefill_chunk).generate(
            prompts, 9, pad_id=258)
        for row, single in enumerate(alone):
            np.testing.assert_array_equal(batch.tokens[row], single.tokens[0])
            np.testing.assert_allclose(batch.logits[row], single.logits[0], rtol=2e-5,
                                       atol=2e-5)


# every registered mixer in a pre-norm block but the LRU (the test above), and Griffin's layout
# (a recurrent block, then a global attention block)
FAMILIES = {name: {"mixer": name} for name in MIXERS if name != "lru"} | {
    "griffin": {"mixer": "rglru", "block": "griffin", "n_layers": 2, "attention_every": 2}}


def family_model(family: str) -> tuple[LanguageModel, dict]:
    """A one-block (griffin: two-block) language model of width 16 and its parameters."""
    cfg = ModelConfig(**{"d_model": 16, "d_state": 16, "n_layers": 1, "mlp_ratio": 1.0,
                         "attention": AttentionConfig(heads=2, max_len=32),
                         "gateloop_qkv": GateLoopQKVConfig(heads=2), **FAMILIES[family]})
    model = LanguageModel(cfg)
    params, _ = init_params(model, jax.random.key(2), jnp.zeros((1, 4), jnp.int32))
    return model, params


@pytest.mark.parametrize("family", FAMILIES)
def test_every_mixer_family_decodes_a_padded_batch_as_one_by_one(family):
    """Prompts of 3, 2 and 1 tokens left-padded into one batch: the 2-token prompt starts inside
    the first prefill piece (segment ids clear the state), the 1-token one exactly at the second
    (the carry is cleared); each row decodes what its prompt decodes unpadded (in a batch of its
    own copies, so that one compilation of each shape serves both)."""
    model, params = family_model(family)
    prompts = [[256, 104, 105], [256, 97], [256]]
    generator = Generator(model, params, chunk=4)
    batch = generator.generate(prompts, 4, pad_id=258)
    for row, prompt in enumerate(prompts):
        alone = generator.generate([prompt] * len(prompts), 4)
        np.testing.assert_array_equal(batch.tokens[row], alone.tokens[0])
        np.testing.assert_allclose(batch.logits[row], alone.logits[0], rtol=2e-5, atol=2e-5)


def test_chunked_prefill_equals_one_pass(tiny_model):
    """Prefill in pieces (powers of two, after chunks of 7) ≡ one parallel pass, logits and
    carry; prompts of every length from 1 to 31 compile only a few piece shapes."""
    _, model, params = tiny_model
    prompt = np.array([[256, *range(60, 90)]], np.int32)
    logits, carry = model.apply({"params": params}, jnp.asarray(prompt))
    whole = (logits[:, -1], carry)
    for prefill_chunk in (0, 7):
        pieces = Generator(model, params, prefill_chunk=prefill_chunk).prefill(
            prompt, np.ones_like(prompt))
        for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(pieces), strict=True):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)
    generator = Generator(model, params)
    for length in range(1, 32):
        generator.prefill(prompt[:, :length], np.ones((1, length), np.int32))
    assert generator._prefill._cache_size() == 5  # sizes 1, 2, 4, 8, 16


def test_prefill_pieces_are_powers_of_two_after_chunks():
    assert prefill_pieces(13) == [8, 4, 1]
    assert prefill_pieces(16) == [16]
    assert prefill_pieces(23, chunk=8) == [8, 8, 4, 2, 1]
    for length in range(1, 300):
        pieces = prefill_pieces(length, chunk=64)
        assert sum(pieces) == length and all(p & (p - 1) == 0 or p == 64 for p in pieces)


def test_text_stream_waits_for_whole_characters():
    pieces = []
    stream = TextStream(ByteTokenizer(), pieces.append)
    data = list("aé€".encode())
    stream(np.array([data[:2]]))
    stream(np.array([data[2:4]]))
    stream(np.array([data[4:]]))
    stream.close()
    assert pieces == ["a", "é", "€"]


def test_cli_without_a_run_directory(tmp_path, capsys):
    assert generate_cli.main(["--run", str(tmp_path / "missing")]) == 1
    assert "missing does not exist" in capsys.readouterr().err
    assert generate_cli.main(["--run", str(tmp_path)]) == 1
    assert "not a run directory" in capsys.readouterr().err
    assert generate_cli.main(["--run", str(tmp_path), "--temperature", "-1"]) == 2
    assert generate_cli.main(["--run", str(tmp_path), "--top-p", "1.5"]) == 2
    assert generate_cli.main(["--run", str(tmp_path), "--max-new-tokens", "0"]) == 2
    assert capsys.readouterr().err == ("error: --temperature=-1.0: expected 0 (greedy) or a "
                                       "float32 value in [1.2e-38, 3.4e38]\n"
                                       "error: --top-p=1.5: expected in (0, 1]\n"
                                       "error: --max-new-tokens=0: expected > 0\n")


def test_cli_on_a_run_without_checkpoints(tiny_model, capsys):
    cfg, _, _ = tiny_model
    write_config(run_dir_of(cfg), cfg, ByteTokenizer())
    assert generate_cli.main(["--run", str(run_dir_of(cfg))]) == 1
    assert "has no checkpoints yet" in capsys.readouterr().err


@pytest.fixture(scope="module")
def saved_run(tiny_model):
    cfg, _, params = tiny_model
    run_dir = run_dir_of(cfg)
    write_config(run_dir, cfg, ByteTokenizer())
    checkpoints = Checkpoints(run_dir)
    _, roles = abstract_params(LanguageModel(cfg.model), jnp.zeros((1, 4), jnp.int32))
    checkpoints.save(1, params, make_optimizer(cfg.optim, 10, roles).init(params), {"step": 1})
    checkpoints.close()
    return run_dir


def test_cli_generates_from_an_empty_prompt(saved_run, capsys):
    argv = ["--run", str(saved_run), "--max-new-tokens", "12", "--seed", "3"]
    assert generate_cli.main([*argv, "--prompt", ""]) == 0
    first = capsys.readouterr().out
    assert generate_cli.main([*argv, "--prompt", "", "--top-k", "5", "--num-samples", "3"]) == 0
    out = capsys.readouterr().out
    assert first and all(f"--- sample {i} ---" in out for i in (1, 2, 3))


def test_cli_refuses_frame_options_for_a_token_run(saved_run, tmp_path, capsys):
    out = tmp_path / "frames.npy"
    for argv in (["--frames", "5"], ["--frames-out", str(out)],
                 ["--prompt-frames", str(tmp_path / "p.npy")]):
        assert generate_cli.main(["--run", str(saved_run), *argv]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == ("error: --frames=5: expected 0 for a token run (frames are for a run "
                        "with model.input=continuous)")
    assert len(lines) == 3 and all("for a token run" in line for line in lines)
    assert not out.exists()


def test_saved_state_continues_exactly(saved_run, tmp_path, capsys):
    """save -> load -> continue prints what one uninterrupted greedy generation prints."""
    argv = ["--run", str(saved_run), "--temperature", "0"]
    assert generate_cli.main([*argv, "--prompt", "ab", "--max-new-tokens", "20"]) == 0
    whole = capsys.readouterr().out
    state = tmp_path / "s.npz"
    assert generate_cli.main([*argv, "--prompt", "ab", "--max-new-tokens", "7",
                              "--save-state", str(state)]) == 0
    first = capsys.readouterr()
    assert "state after 10 tokens saved" in first.err  # BOS + 2 + 7
    assert generate_cli.main([*argv, "--max-new-tokens", "13", "--load-state", str(state)]) == 0
    second = capsys.readouterr().out
    assert first.out.rstrip("\n") + second.rstrip("\n") == whole.rstrip("\n")


def test_bad_state_files_are_refused_before_decoding(saved_run, tiny_model, tmp_path, capsys):
    cfg, model, params = tiny_model
    state = tmp_path / "s.npz"
    carry = zero_carry(model, params, 1)
    save_state(state, carry, np.zeros((1, 259)), [256], identity="another model")
    argv = ["--run", str(saved_run), "--load-state", str(state)]
    assert generate_cli.main(argv) == 2
    assert "saved by another model" in capsys.readouterr().err
    identity = model_identity(cfg, ByteTokenizer(), 1)
    save_state(state, carry, np.zeros((1, 259)), [256], identity=identity)
    state.write_bytes(state.read_bytes()[:200])  # truncated
    assert generate_cli.main(argv) == 2
    assert "truncated or not a glrnn state" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="carry array 0"):
        save_state(state, (np.zeros(3),), np.zeros((1, 259)), [256], identity=identity)
        load_state(state, identity, carry)


PENALTY = Sampling(temperature=0.0, repetition_penalty=3.0)


def test_cli_repetition_penalty_counts_the_prompt(saved_run, tiny_model, capsys):
    """--repetition-penalty over the prompt: the CLI prints what ``Generator.generate`` (whose
    penalty counts the prompt) continues it with, not the continuation that ignores it."""
    _, model, params = tiny_model
    # UTF-8 bytes 0xC2, 0xA0..0xBF: among them the ids the untrained model decodes first
    text = "".join(map(chr, range(0xA0, 0xC0)))
    argv = ["--run", str(saved_run), "--temperature", "0", "--repetition-penalty", "3",
            "--max-new-tokens", "12", "--prompt", text]
    assert generate_cli.main(argv) == 0
    tok = ByteTokenizer()
    prompt = np.asarray([[tok.bos_id, *tok.encode(text)]], np.int32)
    generator = Generator(model, params)
    counted = generator.generate(prompt, 12, sampling=PENALTY, stop_id=tok.eos_id)
    assert capsys.readouterr().out == text + tok.decode(counted.tokens[0].tolist()) + "\n"
    logits, carry = generator.prefill(prompt, np.ones_like(prompt))
    ignored = generator.decode(logits, carry, 12, sampling=PENALTY, stop_id=tok.eos_id)
    assert ignored.tokens.tolist() != counted.tokens.tolist()


def test_a_session_returns_its_state_and_penalises_earlier_turns(tiny_model):
    """Two turns: the state holds every token read and generated, and the second turn decodes
    what one prefill of the whole text so far, penalising all of it, decodes."""
    _, model, params = tiny_model
    tok = ByteTokenizer()
    session = Session(Generator(model, params, chunk=4), tok)
    state = session.read(SessionState(), "ab")
    first, state = session.decode(state, 6, sampling=PENALTY)
    state = session.read(state, "cd")
    second, state = session.decode(state, 6, sampling=PENALTY)
    text = [tok.bos_id, *tok.encode("ab"), *first.tokens[0].tolist(), *tok.encode("cd")]
    assert state.tokens == (*text, *second.tokens[0].tolist())
    alone = Generator(model, params, chunk=4).generate([text], 6, sampling=PENALTY,
                                                        stop_id=tok.eos_id)
    np.testing.assert_array_equal(second.tokens, alone.tokens)
    np.testing.assert_allclose(state.logits, alone.next_logits, rtol=1e-4, atol=1e-5)


def test_interactive_mode_keeps_the_state(saved_run, tmp_path, capsys, monkeypatch):
    """Two lines typed one after another continue one sequence: the second turn prints what
    loading the state saved after the first turn and prompting with the second line prints. A
    line that is not UTF-8 in between is reported and skipped; the state is kept."""
    argv = ["--run", str(saved_run), "--temperature", "0", "--max-new-tokens", "5"]
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"ab\n\xff\xfe?\ncd\n")))
    assert generate_cli.main([*argv, "--interactive"]) == 0
    out, err = capsys.readouterr()
    assert err == ("error: input line 2 is not UTF-8 text (invalid start byte at byte 0): "
                   "skipped, the state is kept\n")
    turns = out.split("\n")
    state = tmp_path / "s.npz"
    assert generate_cli.main([*argv, "--prompt", "ab", "--save-state", str(state)]) == 0
    assert capsys.readouterr().out.split("\n")[0] == turns[0]
    assert generate_cli.main([*argv, "--prompt", "cd", "--load-state", str(state)]) == 0
    assert capsys.readouterr().out.split("\n")[0] == turns[1]
    assert turns[1].startswith("cd")


def test_stop_strings_cut_the_text():
    pieces = []
    stream = TextStream(ByteTokenizer(), pieces.append, stop=["END", "\n\n"])
    assert not stream(np.array([list(b"hello E")]))
    assert "".join(pieces) == "hello"  # "E" may start "END": held back
    assert stream(np.array([list(b"NDING")]))
    stream.close()
    assert "".join(pieces) == "hello "
