"""Position encodings (model.positions, glrnn/positions.py): the position of a token is its
offset in its document, the same in the parallel and the step-by-step modes, across prefill
pieces, packed documents, saved states and turns; a learned table too short is one line before
any work."""

from __future__ import annotations

import functools
import io
import re
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tiny_lm import load_script, tiny_config

from glrnn.config import Config, ConfigError, DataConfig, ModelConfig
from glrnn.data.text import segment_ids
from glrnn.evaluate import main as evaluate_main
from glrnn.generate import Generator, Session, SessionState, zero_carry
from glrnn.models import Classifier, LanguageModel
from glrnn.params import init_params
from glrnn.positions import PositionCarry, sinusoidal
from glrnn.runs.checkpoint import Checkpoints
from glrnn.runs.run import run_dir_of, write_config
from glrnn.state import load_state, model_identity, save_state
from glrnn.task_config import TaskConfig, TaskInfo
from glrnn.tokenizer import ByteTokenizer
from glrnn.train.flops import matmul_params
from glrnn.train.lm_task import lm_gradient, lm_loss
from glrnn.train.optim import make_optimizer

generate_cli = load_script("generate")
BOS = 256
KINDS = ("none", "learned", "sinusoidal")
ENCODED = ("learned", "sinusoidal")
TABLE = 40  # rows of the learned tables below


def config(kind: str, **fields) -> ModelConfig:
    return ModelConfig(**{"d_model": 16, "d_state": 16, "n_layers": 1, "mlp_ratio": 1.0,
                          "mixer": "gateloop", "positions": kind,
                          "max_positions": TABLE if kind == "learned" else 0, **fields})


@functools.cache
def lm(kind: str) -> tuple[LanguageModel, dict]:
    """A one-block GateLoop language model with positions ``kind`` and its parameters."""
    model = LanguageModel(config(kind))
    params, _ = init_params(model, jax.random.key(3), jnp.zeros((1, 4), jnp.int32))
    return model, params


@functools.cache
def parallel(kind: str):
    """The jitted parallel forward (params, tokens, carry, segment_ids) of ``lm(kind)``."""
    model, _ = lm(kind)
    return jax.jit(lambda params, tokens, carry, ids: model.apply(
        {"params": params}, tokens, carry, segment_ids=ids))


def forward(kind: str, tokens, carry=None, segment_ids=None):
    return parallel(kind)(lm(kind)[1], jnp.asarray(tokens), carry, segment_ids)


def text(length: int, seed: int = 0, rows: int = 2) -> np.ndarray:
    """int32 [rows, length]: BOS, then random bytes."""
    tokens = np.random.default_rng(seed).integers(0, 256, (rows, length)).astype(np.int32)
    tokens[:, 0] = BOS
    return tokens


def test_sinusoidal_is_the_transformers():
    """Vaswani et al. (2017), section 3.5, written out: PE(p, 2i) = sin(p / 10000^(2i/d)),
    PE(p, 2i + 1) = cos(p / 10000^(2i/d)), for an even and an odd width."""
    p = np.array([[0, 1, 7, 300]])
    for width in (16, 7):
        ref = np.zeros((1, 4, width))
        for j in range(width):
            angle = p / 10000 ** (2 * (j // 2) / width)
            ref[..., j] = np.sin(angle) if j % 2 == 0 else np.cos(angle)
        np.testing.assert_allclose(sinusoidal(jnp.asarray(p), width), ref, rtol=1e-5,
                                   atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_parallel_equals_step_by_step_from_a_nonzero_offset(kind):
    """A prefix of 6 prefilled in pieces (4, then 2 from the carry at position 4), then one
    token at a time from position 6: every logit is the parallel forward's over the whole text,
    and the carry counts the positions."""
    model, params = lm(kind)
    tokens = text(13)
    full, _ = forward(kind, tokens)
    logits, carry = Generator(model, params, prefill_chunk=4).prefill(
        tokens[:, :6], np.ones((2, 6), np.int32))
    steps = [logits]
    for t in range(6, 13):
        logits, carry = model.apply({"params": params}, jnp.asarray(tokens[:, t]), carry,
                                    method="step")
        steps.append(logits)
    np.testing.assert_allclose(np.stack(steps, 1), full[:, 5:], rtol=2e-5, atol=2e-5)
    if kind != "none":
        np.testing.assert_array_equal(carry.position, [13, 13])


@pytest.mark.parametrize("kind", ENCODED)
def test_the_encoding_follows_the_carrys_position(kind):
    """The same text read from a zero state but with the position counter at 5 gives other
    logits, and the same logits as the parallel forward's positions 5.. of a text whose first
    five tokens were cleared away by a document reset at 5 — except the restart; so: the counter
    is what the encoding reads."""
    model, params = lm(kind)
    tokens = text(8)
    zero = zero_carry(model, params, 2)
    at_five = PositionCarry(zero.blocks, jnp.full((2,), 5, jnp.int32))
    from_zero, _ = forward(kind, tokens)
    from_five, carry = forward(kind, tokens, at_five)
    assert not np.allclose(from_zero, from_five, atol=1e-3)
    np.testing.assert_array_equal(carry.position, [13, 13])
    # position 5 + t: what the step mode computes from the same carry
    logits, _ = model.apply({"params": params}, jnp.asarray(tokens[:, 0]), at_five,
                            method="step")
    np.testing.assert_allclose(logits, from_five[:, 0], rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_packed_documents_restart_at_position_zero(kind):
    """A document's logits are the same alone and after another one in a pack (segment ids from
    its BOS), also when the pack is read from a carry at position 9; the carry then counts
    the last document's positions."""
    model, params = lm(kind)
    first, second = text(5, seed=1, rows=1), text(7, seed=2, rows=1)
    pack = np.concatenate([first, second], axis=1)
    ids = segment_ids(pack, BOS)
    alone, _ = forward(kind, second)
    packed, carry = forward(kind, pack, segment_ids=ids)
    np.testing.assert_allclose(packed[:, 5:], alone, rtol=2e-5, atol=2e-5)
    _, ahead = forward(kind, text(9, seed=3, rows=1))
    later, _ = forward(kind, pack, ahead, segment_ids=ids)
    np.testing.assert_allclose(later[:, 5:], alone, rtol=2e-5, atol=2e-5)
    if kind != "none":
        np.testing.assert_array_equal(carry.position, [7])
        # without the restart the second document would sit at positions 5..: other logits
        shifted = PositionCarry(zero_carry(model, params, 1).blocks, jnp.array([5], jnp.int32))
        assert not np.allclose(forward(kind, second, shifted)[0], alone, atol=1e-3)


@pytest.mark.parametrize("kind", ENCODED)
def test_padded_prompts_generate_what_each_generates_alone(kind):
    """Left padding shifts no position: prompts of 5, 2 and 1 tokens in one batch, prefilled in
    pieces of 3 and 2 (the 2-token prompt starts exactly at the second piece), each decode
    (greedy) the tokens and logits of the prompt alone (in a batch of its own copies: one
    compilation of each shape serves both), and those are the parallel forward's."""
    model, params = lm(kind)
    prompts = [[BOS, 104, 105, 32, 116], [BOS, 97], [BOS]]
    generator = Generator(model, params, chunk=4, prefill_chunk=3)
    batch = generator.generate(prompts, 5, pad_id=258)
    for row, prompt in enumerate(prompts):
        alone = generator.generate([prompt] * len(prompts), 5)
        np.testing.assert_array_equal(batch.tokens[row], alone.tokens[0])
        np.testing.assert_allclose(batch.logits[row], alone.logits[0], rtol=2e-5, atol=2e-5)
        grown = np.concatenate([prompt, alone.tokens[0, :-1]])[None]
        logits, _ = forward(kind, grown)
        np.testing.assert_allclose(alone.logits[:1], logits[:, len(prompt) - 1:], rtol=2e-5,
                                   atol=2e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_a_saved_state_continues_at_its_position(kind, tmp_path):
    """Decode 5 tokens, save the state to a file, load it into a fresh carry and decode 6 more:
    the tokens and logits of 11 tokens decoded without a break, and the loaded counter at the
    number of tokens read."""
    model, params = lm(kind)
    prompt = [[BOS, 97, 98, 99]]
    generator = Generator(model, params, chunk=4)
    whole = generator.generate(prompt, 11)
    first = generator.generate(prompt, 5)
    path = save_state(tmp_path / "s.npz", first.carry, first.next_logits,
                      [*prompt[0], *first.tokens[0].tolist()], identity="tiny")
    carry, logits, seen = load_state(path, "tiny", zero_carry(model, params, 1))
    if kind != "none":
        assert carry.position.tolist() == [len(seen)] == [9]
    second = generator.decode(jnp.asarray(logits), jax.tree.map(jnp.asarray, carry), 6)
    np.testing.assert_array_equal(np.concatenate([first.tokens, second.tokens], 1),
                                  whole.tokens)
    np.testing.assert_allclose(np.concatenate([first.logits, second.logits], 1), whole.logits,
                               rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("kind", ENCODED)
def test_turns_continue_at_their_position(kind):
    """Two turns of a session decode what one generation over the whole text so far decodes."""
    model, params = lm(kind)
    tok = ByteTokenizer()
    session = Session(Generator(model, params, chunk=4), tok)
    state = session.read(SessionState(), "ab")
    first, state = session.decode(state, 5)
    state = session.read(state, "cde")
    second, state = session.decode(state, 5)
    so_far = [tok.bos_id, *tok.encode("ab"), *first.tokens[0].tolist(), *tok.encode("cde")]
    alone = Generator(model, params, chunk=4).generate([so_far], 5, stop_id=tok.eos_id)
    np.testing.assert_array_equal(second.tokens, alone.tokens)
    np.testing.assert_allclose(second.logits, alone.logits, rtol=1e-4, atol=1e-5)
    assert state.carry.position.tolist() == [len(state.tokens)]


def test_a_learned_table_too_short_is_one_line_before_any_work():
    data = DataConfig(seq_len=64)
    with pytest.raises(ConfigError) as e:
        Config(model=config("learned", max_positions=32), data=data)
    assert str(e.value) == ("model.max_positions=32: expected >= data.seq_len (64): the learned "
                            "position table needs a row for every position of a training window")
    assert Config(model=config("learned", max_positions=0), data=data).model.max_positions == 64
    with pytest.raises(ConfigError, match=re.escape(
            "model.max_positions=8: expected an integer >= 1 with model.positions='learned'")):
        config("sinusoidal", max_positions=8)
    with pytest.raises(ConfigError, match=r"model.positions='rotary': expected one of"):
        config("rotary")
    with pytest.raises(ConfigError, match="'none' for the classification task 'listops'"):
        Config(model=config("sinusoidal"), task=TaskConfig(name="listops"))
    with pytest.raises(ConfigError, match="'none' for a classifier"):
        Classifier(config("sinusoidal"), TaskInfo("t", 2, 8, vocab_size=5)).init(
            jax.random.key(0), jnp.zeros((1, 8), jnp.int32))
    # generation: no parameters at all, so the refusal comes before any work
    model, params = lm("learned")
    message = (f"model.max_positions={TABLE}: expected >= 45 for a prompt of 5 tokens + 40 new "
               "ones (the learned position table has one row per position in a document)")
    with pytest.raises(ConfigError) as e:
        Generator(model, None).generate([[BOS, 1, 2, 3, 4]], 40)
    assert str(e.value) == message
    late = PositionCarry(zero_carry(model, params, 1).blocks, jnp.array([38], jnp.int32))
    with pytest.raises(ConfigError, match="expected >= 41 for 38 tokens so far \\+ 3 new"):
        Generator(model, None).decode(jnp.zeros((1, 259)), late, 3)
    with pytest.raises(ConfigError, match="expected >= 42 for 38 tokens so far \\+ a prompt of 4"):
        Generator(model, None).prefill(np.ones((1, 4), np.int32), np.ones((1, 4), np.int32),
                                       late)
    state = SessionState((1,) * 38, None, late)
    with pytest.raises(ConfigError, match=">= 45 for 38 tokens so far \\+ a prompt of 2 \\+ 5"):
        Session(Generator(model, None), ByteTokenizer()).check_turn(state, "ab", 5)
    # the parallel forward from position 0 (training, evaluation at another length)
    with pytest.raises(ConfigError, match="expected >= 41 for a sequence of 41 tokens"):
        forward("learned", text(41, rows=1))


def test_online_rules_count_positions_as_the_parallel_pass_does():
    """The language-model task by online_full (step by step, resets clearing the carry at each
    BOS) against BPTT (one parallel pass, segment ids): the same loss, the same head gradient,
    and the learned table's gradient on exactly the rows the documents reach."""
    model, params = lm("learned")
    batch = jnp.asarray(text(13, seed=4)).at[0, 5].set(BOS).at[1, 9].set(BOS)
    key = jax.random.key(0)
    (loss, _), online = jax.jit(lm_gradient("online_full", model, BOS))(params, {}, batch, key)
    (exact_loss, _), exact = jax.jit(jax.value_and_grad(lm_loss(model, BOS), has_aux=True))(
        params, {}, batch, key)
    assert abs(float(loss - exact_loss)) < 1e-5
    np.testing.assert_allclose(online["norm"]["scale"], exact["norm"]["scale"], rtol=2e-4,
                               atol=1e-6)
    used = np.abs(np.asarray(exact["positions"]["table"]["embedding"])).sum(-1) > 0
    np.testing.assert_array_equal(np.flatnonzero(used), np.arange(9))  # row 1: 0..8


def test_identity_of_a_model_without_positions_is_the_one_state_files_were_saved_with():
    """A state file saved before model.positions existed still names its model: this hash was
    printed by the code before it (main at f57ca8a) for the same configuration."""
    cfg = Config(model=ModelConfig(d_model=16, n_layers=2, d_state=16, mixer="gateloop"))
    assert model_identity(cfg, ByteTokenizer(), 7) == (
        "c2e52edccf704cff4b4e2064104454ce5b82b65d28cb1c83f0b27aff7a36bb91")
    encoded = replace(cfg, model=replace(cfg.model, positions="sinusoidal"))
    assert model_identity(encoded, ByteTokenizer(), 7) != model_identity(cfg, ByteTokenizer(), 7)


@pytest.fixture(scope="module")
def learned_run(tmp_path_factory):
    """A run directory of a tiny language model with a learned table of 24 rows."""
    base = tiny_config(tmp_path_factory.mktemp("positions"), name="learned")
    cfg = replace(base, model=replace(base.model, positions="learned", max_positions=24))
    model = LanguageModel(cfg.model)
    params, roles = init_params(model, jax.random.key(1), jnp.zeros((1, 4), jnp.int32))
    run_dir = run_dir_of(cfg)
    write_config(run_dir, cfg, ByteTokenizer())
    checkpoints = Checkpoints(run_dir)
    checkpoints.save(1, params, make_optimizer(cfg.optim, 10, roles).init(params), {"step": 1})
    checkpoints.close()
    return run_dir


def test_cli_saved_state_and_the_table_limit(learned_run, tmp_path, capsys, monkeypatch):
    """generate.py on a 24-row table: a saved state continues exactly; a request past the table
    is one line (exit 2) before anything is generated; an interactive line that would pass it
    is reported and skipped, the session going on. glrnn.evaluate refuses a longer window."""
    argv = ["--run", str(learned_run), "--temperature", "0"]
    assert generate_cli.main([*argv, "--prompt", "ab", "--max-new-tokens", "20"]) == 0
    whole = capsys.readouterr().out
    state = tmp_path / "s.npz"
    assert generate_cli.main([*argv, "--prompt", "ab", "--max-new-tokens", "7",
                              "--save-state", str(state)]) == 0
    first = capsys.readouterr().out
    assert generate_cli.main([*argv, "--max-new-tokens", "13", "--load-state", str(state)]) == 0
    second = capsys.readouterr().out
    assert first.rstrip("\n") + second.rstrip("\n") == whole.rstrip("\n")
    assert generate_cli.main([*argv, "--max-new-tokens", "15", "--load-state", str(state)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == (
        "error: model.max_positions=24: expected >= 25 for 10 tokens so far + a prompt of 0 + "
        "15 new ones (the learned position table has one row per position in a document)\n")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(
        b"ab\n" + b"x" * 12 + b"\ncd\n")))
    assert generate_cli.main([*argv, "--max-new-tokens", "5", "--interactive"]) == 0
    out, err = capsys.readouterr()
    assert err == ("error: input line 2: model.max_positions=24: expected >= 25 for 8 tokens so "
                   "far + a prompt of 12 + 5 new ones (the learned position table has one row "
                   "per position in a document): skipped, the state is kept\n")
    turns = out.split("\n")
    assert len(turns) == 3 and turns[0].startswith("ab") and turns[1].startswith("cd")
    # evaluation at a length past the table: refused before the text is read
    assert evaluate_main(["--run", str(learned_run), "--seq-len", "32"]) == 2
    assert capsys.readouterr().err == (
        "error: model.max_positions=24: expected >= 32 for --seq-len (the learned position table "
        "has one row per position in a document)\n")


def test_a_learned_table_is_a_lookup_not_a_matmul():
    """Model FLOPs (the MFU's numerator) count no position table: it is read, not multiplied."""
    assert matmul_params(config("learned")) == matmul_params(config("none")) > 0
