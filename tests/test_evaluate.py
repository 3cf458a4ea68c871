"""Scoring a whole validation split: every token once, the tail included, equal to a
token-by-token loop of the model's step mode; padding and batching change nothing."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tiny_lm import tiny_config

from glrnn.data import TextData
from glrnn.data.text import split_windows
from glrnn.models import LanguageModel
from glrnn.tokenizer import ByteTokenizer
from glrnn.train.lm_task import LMTask, make_eval_step, padded_batches, score
from glrnn.train.variables import init_variables

SEQ_LEN = 16


@pytest.mark.parametrize("n_tokens", [2, 16, 17, 18, 40, 49])
@pytest.mark.parametrize("cuts", [(), (5,), (1, 2, 30)])
def test_split_windows_score_every_token_but_the_first_once(n_tokens, cuts):
    tokens = np.arange(n_tokens) * 3
    pieces = np.split(tokens, [c for c in cuts if c < n_tokens])  # a stream in parts
    windows = list(split_windows(pieces, SEQ_LEN))
    assert all(2 <= len(w) <= SEQ_LEN + 1 for w in windows)
    assert all(len(w) == SEQ_LEN + 1 for w in windows[:-1])  # only the tail is shorter
    targets = np.concatenate([w[1:] for w in windows])
    np.testing.assert_array_equal(targets, tokens[1:])
    starts = np.concatenate([w[:1] for w in windows])
    np.testing.assert_array_equal(starts, tokens[:-1:SEQ_LEN])  # stride seq_len from the start


def test_a_stream_of_one_token_has_no_window():
    assert list(split_windows([np.array([7])], SEQ_LEN)) == []


def test_padded_batches_mask_exactly_the_real_targets():
    windows = [np.arange(SEQ_LEN + 1)] * 4 + [np.arange(5)]
    batches = list(padded_batches(windows, 3, SEQ_LEN))
    assert [b.shape for b, _ in batches] == [(3, SEQ_LEN + 1)] * 2
    assert [m.shape for _, m in batches] == [(3, SEQ_LEN)] * 2
    mask = np.concatenate([m for _, m in batches])
    assert mask.sum(axis=1).tolist() == [SEQ_LEN] * 4 + [4, 0]
    np.testing.assert_array_equal(batches[1][0][1, :5], np.arange(5))


def step_by_step_nats(model: LanguageModel, params, tokens: np.ndarray, seq_len: int,
                      bos_id: int) -> np.ndarray:
    """[T - 1] nats of every target of ``tokens`` by the model's step mode, one token at a
    time, the state cleared at each window start (every ``seq_len`` tokens) and at each BOS."""
    variables = {"params": params}
    zero = model.apply(variables, 1, method="init_carry")

    def one(carry, xs):
        t, token, target = xs
        reset = (t % seq_len == 0) | (token == bos_id)
        carry = jax.tree.map(lambda z, c: jnp.where(reset, z, c), zero, carry)
        logits, carry = model.apply(variables, token[None], carry, method="step")
        return carry, jax.nn.logsumexp(logits[0]) - logits[0, target]

    tokens = jnp.asarray(tokens, jnp.int32)
    xs = (jnp.arange(len(tokens) - 1), tokens[:-1], tokens[1:])
    return np.asarray(jax.jit(lambda xs: jax.lax.scan(one, zero, xs)[1])(xs))


def test_the_whole_split_equals_a_token_by_token_loop(tmp_path):
    """The final evaluation of a (tiny, untrained) model: its mean loss is the step-by-step
    loop's over every target of the split, its token count the split's, with a tail window
    and a last batch that are padded."""
    cfg = tiny_config(tmp_path)
    data = TextData(cfg.data, ByteTokenizer())
    tokens = data.val_tokens
    assert (len(tokens) - 1) % cfg.data.seq_len != 0  # there is a tail
    assert (data.tokenizer.bos_id == tokens).sum() > 1  # several documents: resets inside
    task = LMTask(cfg, data)
    params, _, model_state = task.init_variables(jax.random.key(3))
    figures = task.final_evaluation(params, model_state)
    windows = -(-(len(tokens) - 1) // cfg.data.seq_len)
    assert windows % cfg.data.batch_size != 0  # the last batch is filled with padding rows
    assert figures["full_val_tokens"] == len(tokens) - 1 == data.n_val_targets
    assert figures["full_val_windows"] == windows
    nats = step_by_step_nats(task.model, params, tokens, cfg.data.seq_len,
                             data.tokenizer.bos_id)
    assert figures["full_val_loss"] == pytest.approx(nats.mean(), rel=1e-5)
    byte_count = data.tokenizer.byte_lengths()[tokens[1:]].sum()
    assert figures["full_val_bpb"] == pytest.approx(nats.sum() / np.log(2) / byte_count,
                                                    rel=1e-5)
    # the estimate: the same model on the val windows alone
    estimate = task.evaluate(params, model_state)
    assert estimate["val_windows"] == len(data.val)
    assert estimate["val_tokens"] == len(data.val) * cfg.data.seq_len


def test_batch_size_changes_nothing(tmp_path):
    cfg = tiny_config(tmp_path)
    data = TextData(cfg.data, ByteTokenizer())
    model = LanguageModel(cfg.model)
    params, _, _ = init_variables(model, jax.random.key(0), jnp.zeros((1, 4), jnp.int32))
    step = make_eval_step(model, data.tokenizer.bos_id)
    lengths = data.tokenizer.byte_lengths()
    one, five = (score(step, params, {}, padded_batches(data.val_split(), size, cfg.data.seq_len),
                       lengths) for size in (1, 5))
    assert one["tokens"] == five["tokens"] and one["windows"] == five["windows"]
    assert one["loss"] == pytest.approx(five["loss"], rel=1e-6)
