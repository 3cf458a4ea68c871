"""Generation: the sampler, prefill + chunked decode against the parallel forward, the CLI."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tiny_lm import load_script, tiny_config

from glrnn.generate import Generator, TextStream, sample
from glrnn.models import LanguageModel
from glrnn.params import abstract_params, init_params
from glrnn.tokenizer import ByteTokenizer
from glrnn.train.checkpoint import Checkpoints
from glrnn.train.optim import make_optimizer
from glrnn.train.run import run_dir_of, write_config

generate_cli = load_script("generate")


def test_sample_greedy_and_top_k():
    logits = jnp.array([[0.0, 3.0, 1.0, 2.0], [5.0, 0.0, 0.0, 4.9]])
    key = jax.random.key(0)
    np.testing.assert_array_equal(sample(logits, key, 0.0, 0), [1, 0])
    np.testing.assert_array_equal(sample(logits, key, 1.0, 1), [1, 0])
    draws = jax.vmap(lambda k: sample(logits, k, 2.0, 2))(jax.random.split(key, 200))
    assert set(np.unique(draws[:, 0])) == {1, 3} and set(np.unique(draws[:, 1])) == {0, 3}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    cfg = tiny_config(tmp_path_factory.mktemp("generate"))
    model = LanguageModel(cfg.model)
    params, _ = init_params(model, jax.random.key(1), jnp.zeros((1, 4), jnp.int32))
    return cfg, model, params


def test_decoding_from_the_carry_matches_the_parallel_forward(tiny_model):
    _, model, params = tiny_model
    prompt = np.array([[256, 104, 105]], np.int32)
    out = Generator(model, params, chunk=8).generate(prompt, 20, temperature=0.0)
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
    out = Generator(model, params, chunk=4).generate(prompt, 10, temperature=0.0)
    stop = int(out.tokens[0, 5])
    stopped = Generator(model, params, chunk=4).generate(prompt, 10, temperature=0.0,
                                                         stop_id=stop)
    first = int(np.flatnonzero(out.tokens[0] == stop)[0])
    np.testing.assert_array_equal(stopped.tokens, out.tokens[:, :first + 1])
    assert Generator(model, params).generate(prompt, 0).tokens.shape == (1, 0)


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
    assert capsys.readouterr().err == "error: --temperature=-1.0: expected >= 0\n"


def test_cli_on_a_run_without_checkpoints(tiny_model, capsys):
    cfg, _, _ = tiny_model
    write_config(run_dir_of(cfg), cfg, ByteTokenizer())
    assert generate_cli.main(["--run", str(run_dir_of(cfg))]) == 1
    assert "has no checkpoints yet" in capsys.readouterr().err


def test_cli_generates_from_an_empty_prompt(tiny_model, capsys):
    cfg, _, params = tiny_model
    run_dir = run_dir_of(cfg)
    write_config(run_dir, cfg, ByteTokenizer())
    checkpoints = Checkpoints(run_dir)
    _, roles = abstract_params(LanguageModel(cfg.model), jnp.zeros((1, 4), jnp.int32))
    checkpoints.save(1, params, make_optimizer(cfg.optim, 10, roles).init(params), {"step": 1})
    checkpoints.close()
    argv = ["--run", str(run_dir), "--max-new-tokens", "12", "--seed", "3"]
    assert generate_cli.main([*argv, "--prompt", ""]) == 0
    first = capsys.readouterr().out
    assert generate_cli.main([*argv, "--prompt", "", "--top-k", "5"]) == 0
    assert first and capsys.readouterr().out
