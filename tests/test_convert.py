"""glrnn.convert: recurrentgemma's Griffin and Hawk, imported into glrnn runs, compute
recurrentgemma's logits (float32, to 1e-5) and its sampler's greedy continuations token for
token; the export gives back recurrentgemma's parameters exactly (and a fine-tuned run exports
to the same function); an imported run fine-tunes and resumes; safetensors files round-trip
exactly; bad inputs end in one line before any work.

No download: the models are tiny random-weight Griffin (recurrent, recurrent, local attention)
and Hawk (two recurrent blocks) built by recurrentgemma itself (width 32, RG-LRU width 48, two
heads, window 4 so that the prompts outrun it), saved in its checkpoint format, with a
SentencePiece vocabulary trained here. The test skips where recurrentgemma is not installed
(CI installs it before the tests).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.traverse_util import flatten_dict
from recurrentgemma_peer import import_recurrentgemma
from safetensors.numpy import save as save_safetensors
from test_train import Rigged
from tiny_lm import load_script, tiny_config, write_corpus

import glrnn
from glrnn.config import ConfigError
from glrnn.convert import store
from glrnn.convert.__main__ import main
from glrnn.convert.recurrentgemma import PRESETS, RG_PRESET_NAMES, unwrap
from glrnn.data import TextData
from glrnn.generate import Generator, Session, SessionState
from glrnn.models import LanguageModel
from glrnn.params import init_params
from glrnn.runs.load import load_run
from glrnn.runs.run import read_config
from glrnn.runs.start import start_checks
from glrnn.tokenizer import ByteTokenizer, file_sha256
from glrnn.tokenizer_train import train_sentencepiece
from glrnn.train import TrainingInterrupted, train
from glrnn.train.lm_task import lm_loss
from glrnn.train.metrics import read_metrics

rg = import_recurrentgemma()
R, A = rg.TemporalBlockType.RECURRENT, rg.TemporalBlockType.ATTENTION
WIDTH, LRU_WIDTH, MLP_WIDTH, HEADS, WINDOW, VOCAB = 32, 48, 96, 2, 4, 300
LAYOUTS = {"griffin": {"block_types": (R, R, A), "embeddings_scale_by_sqrt_dim": True,
                       "logits_soft_cap": 30.0},
           "hawk": {"block_types": (R, R), "embeddings_scale_by_sqrt_dim": False,
                    "logits_soft_cap": 0.0}}
PROMPT = "the quick brown fox"  # BOS and these: 16 tokens (one prefill piece), > window


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def vocabulary(corpus) -> Path:
    """A SentencePiece model of VOCAB pieces (UNK, BOS, EOS, PAD = 0-3, byte fallback)."""
    texts = [p.read_text() for p in sorted(corpus.iterdir())]
    return train_sentencepiece(texts, corpus.parent / "tiny.model", "bpe", VOCAB)


@dataclass(frozen=True)
class Peer:
    """A recurrentgemma model, its parameters, its checkpoint, and the run imported from it."""

    layout: str
    model: Any
    params: dict
    checkpoint: Path
    run: Path
    forward: Any  # jitted (params, tokens, segment_pos) -> logits
    glrnn_forward: Any  # the imported model's, jitted (params, tokens, segment_ids) -> logits


def import_args(checkpoint: Path, vocabulary: Path, out: Path, layout: str = "griffin",
                **overrides: str) -> list[str]:
    """The command line importing ``checkpoint`` with --preset auto and the layout's hypers."""
    hypers = LAYOUTS[layout]
    options = {"--checkpoint": str(checkpoint), "--tokenizer": str(vocabulary),
               "--preset": "auto", "--out": str(out),
               "--scale-embeddings": str(hypers["embeddings_scale_by_sqrt_dim"]),
               "--softcap": str(hypers["logits_soft_cap"]), "--window": str(WINDOW),
               **overrides}
    return ["recurrentgemma", *[x for k, v in options.items() if v is not None for x in (k, v)]]


@pytest.fixture(scope="module", params=list(LAYOUTS))
def peer(request, tmp_path_factory, vocabulary) -> Peer:
    """A tiny random-weight model built with recurrentgemma (parameters that start at zero get
    random values, so every one is tested), saved and imported with ``--preset auto``."""
    tmp = tmp_path_factory.mktemp(request.param)
    config = rg.GriffinConfig(vocab_size=VOCAB, width=WIDTH, mlp_expanded_width=MLP_WIDTH,
                              num_heads=HEADS, lru_width=LRU_WIDTH,
                              attention_window_size=WINDOW, scan_type=rg.ScanType.LINEAR_NATIVE,
                              **LAYOUTS[request.param])
    model = rg.Griffin(config, gradient_checkpointing=False)
    tokens = jnp.zeros((1, 4), jnp.int32)
    params = jax.jit(model.init)(jax.random.key(0), tokens, jnp.arange(4)[None])["params"]
    rng = np.random.default_rng(1)
    params = jax.tree.map(lambda x: np.asarray(x) if np.any(x) else
                          0.2 * rng.standard_normal(x.shape).astype(np.float32), params)
    from recurrentgemma.jax import utils

    utils.save_parameters(str(tmp / "checkpoint"), params)  # recurrentgemma's own format
    assert main(import_args(tmp / "checkpoint", vocabulary, tmp / "runs" / "imported",
                            request.param)) == 0

    @jax.jit
    def forward(params, tokens, segment_pos):
        return model.apply({"params": params}, tokens, segment_pos, return_cache=False)[0]

    imported = load_run(tmp / "runs" / "imported")[2]

    @jax.jit
    def glrnn_forward(params, tokens, segment_ids):
        return imported.apply({"params": params}, tokens, segment_ids=segment_ids)[0]

    return Peer(request.param, model, params, tmp / "checkpoint", tmp / "runs" / "imported",
                forward, glrnn_forward)


# two rows: two documents packed (recurrentgemma: positions restart at 0; glrnn: the segment id
# changes), and one document
TOKENS = jax.random.randint(jax.random.key(2), (2, 12), 0, VOCAB)
SEGMENTS = jnp.array([[1] * 5 + [2] * 7, [1] * 12])
POSITIONS = jnp.array([[*range(5), *range(7)], [*range(12)]])


def test_imported_logits_are_recurrentgemmas(peer, vocabulary):
    """Random tokens, one document and two packed in a row: the same logits to 1e-5. The run
    records the tokenizer by its absolute path and hash."""
    cfg, tokenizer, _, params, step = load_run(peer.run)
    assert step == 0 and cfg.model.block == peer.layout
    assert tokenizer.describe() == {"name": "sentencepiece", "path": str(vocabulary.absolute()),
                                    "sha256": file_sha256(vocabulary), "vocab_size": VOCAB}
    expected = peer.forward(peer.params, TOKENS, POSITIONS)
    assert float(jnp.abs(expected).max()) > 1  # logits of some size (soft-capped for griffin)
    np.testing.assert_allclose(peer.glrnn_forward(params, TOKENS, SEGMENTS), expected, rtol=0,
                               atol=1e-5)


@pytest.mark.filterwarnings("ignore:Some donated buffers were not usable")  # recurrentgemma's
def test_greedy_continuation_is_recurrentgemmas_samplers(peer, vocabulary, capsys):
    """recurrentgemma's Sampler (BOS + prompt, argmax) and glrnn's generation session (the
    prompt prefilled from the zero state, then compiled decode steps) choose the same 8
    tokens; the prompt outruns the attention window. generate.py prints the same text."""
    import sentencepiece as spm

    sampler = rg.Sampler(peer.model, spm.SentencePieceProcessor(model_file=str(vocabulary)),
                         peer.params)
    expected = sampler([PROMPT], total_generation_steps=8)
    _, tokenizer, model, params, _ = load_run(peer.run)
    assert len(tokenizer.encode(PROMPT)) + 1 == 16
    session = Session(Generator(model, params), tokenizer)  # generate.py's
    out, _ = session.decode(session.read(SessionState(), PROMPT), 8)
    got, tokens = out.tokens[0], np.asarray(expected.tokens[0])
    # both stop after EOS (recurrentgemma pads the rest)
    np.testing.assert_array_equal(got, tokens[:len(got)])
    assert len(got) == 8 or (got[-1] == tokenizer.eos_id
                             and (tokens[len(got):] == tokenizer.pad_id).all())
    capsys.readouterr()
    assert load_script("generate").main(["--run", str(peer.run), "--prompt", PROMPT,
                                         "--temperature", "0", "--max-new-tokens", "8"]) == 0
    assert capsys.readouterr().out == PROMPT + expected.text[0] + "\n"


def test_export_gives_back_recurrentgemmas_parameters_exactly(peer, tmp_path):
    assert main(["to-recurrentgemma", "--run", str(peer.run), "--out", str(tmp_path / "rg")]) == 0
    exported = flatten_dict(unwrap(store.read_tree(tmp_path / "rg")), sep="/")
    original = flatten_dict(peer.params, sep="/")
    assert list(exported) == list(original)
    for name, value in original.items():
        assert exported[name].dtype == value.dtype and np.array_equal(exported[name], value), name


def test_imported_run_fine_tunes_resumes_and_exports(peer, corpus, vocabulary, tmp_path,
                                                     capsys):
    """``train_lm.py RUN --train.init-from RUN`` on an imported Griffin: the first step's loss is
    the imported model's loss on that batch; a run interrupted after its step-2 checkpoint
    resumes to the end; the evaluation command reads the run; the fine-tuned run exports to
    recurrentgemma, whose forward then gives glrnn's logits of the fine-tuned parameters."""
    if peer.layout != "griffin":
        pytest.skip("once, for the layout with attention")
    cfg = load_script("train_lm").parse([  # the imported run as the recipe
        str(peer.run), "--train.init-from", str(peer.run), "--train.out-dir",
        str(tmp_path / "runs"), "--train.name", "fine-tuned", "--train.steps", "4",
        "--train.checkpoint-every", "2", "--train.eval-every", "4", "--train.log-every", "1",
        "--optim.lr", "1e-3", "--optim.warmup-steps", "1", "--data.source", str(corpus),
        "--data.seq-len", "8", "--data.batch-size", "2", "--data.val-fraction", "0.25",
        "--data.val-windows", "4"])
    assert cfg.model == read_config(peer.run)[0].model
    with pytest.raises(TrainingInterrupted, match="the last good checkpoint is step 2"):
        train(cfg, Rigged(TextData(cfg.data, start_checks(cfg)), at=3, action="interrupt"))
    result = train(cfg)
    rows = read_metrics(result.run_dir)
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and result.step == 4
    _, tokenizer, model, params, _ = load_run(peer.run)
    first = jax.jit(lm_loss(model, tokenizer.bos_id))(
        params, {}, TextData(cfg.data, tokenizer).train_batch(1), jax.random.key(0))[0]
    assert rows[0]["loss"] == pytest.approx(float(first), abs=1e-5)

    from glrnn.evaluate import main as evaluate

    capsys.readouterr()
    assert evaluate(["--run", str(result.run_dir), "--max-windows", "2"]) == 0
    assert "(step 4)" in capsys.readouterr().out
    assert main(["to-recurrentgemma", "--run", str(result.run_dir),
                 "--out", str(tmp_path / "rg")]) == 0
    _, _, _, tuned, _ = load_run(result.run_dir)
    exported = unwrap(store.read_tree(tmp_path / "rg"))
    np.testing.assert_allclose(peer.glrnn_forward(tuned, TOKENS, SEGMENTS),
                               peer.forward(exported, TOKENS, POSITIONS), rtol=0, atol=1e-5)


def one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


def test_bad_inputs_end_in_one_line_before_any_work(peer, vocabulary, tmp_path, capsys):
    if peer.layout != "griffin":
        pytest.skip("once")
    out = tmp_path / "runs" / "x"
    # a preset whose shapes the checkpoint does not have: the first misshapen parameter
    err = one_line_error(capsys, import_args(peer.checkpoint, vocabulary, out,
                                             **{"--preset": "recurrentgemma-2b"}))
    assert (f"parameter embedder/input_embedding has shape ({VOCAB}, {WIDTH}), expected "
            f"({VOCAB}, 2560)") in err
    # a parameter missing, and one of another shape
    broken = jax.tree.map(np.asarray, peer.params)
    del broken["blocks.1"]["recurrent_block"]["rg_lru"]["a_param"]
    broken["blocks.0"]["recurrent_block"]["conv_1d"]["w"] = np.zeros((3, LRU_WIDTH), np.float32)
    store.write_tree(tmp_path / "broken", broken)
    err = one_line_error(capsys, import_args(tmp_path / "broken", vocabulary, out))
    assert f"parameter blocks.0/recurrent_block/conv_1d/w has shape (3, {LRU_WIDTH}), " \
           f"expected (4, {LRU_WIDTH})" in err
    broken["blocks.0"]["recurrent_block"]["conv_1d"]["w"] = np.zeros((4, LRU_WIDTH), np.float32)
    store.write_tree(tmp_path / "missing", broken)
    err = one_line_error(capsys, import_args(tmp_path / "missing", vocabulary, out))
    assert "parameter blocks.1/recurrent_block/rg_lru/a_param is missing" in err
    # a tokenizer of another vocabulary
    other = Path(__file__).resolve().parents[1] / "tokenizers" / "stdlib-bpe-4k.model"
    err = one_line_error(capsys, import_args(peer.checkpoint, other, out))
    assert f"expected a vocabulary of {VOCAB} (the checkpoint's embedding rows), it has 4096" \
        in err
    # auto needs the hypers a checkpoint cannot show; presets are recurrentgemma's
    err = one_line_error(capsys, import_args(peer.checkpoint, vocabulary, out,
                                             **{"--softcap": None}))
    assert "--softcap: needed with --preset auto" in err
    err = one_line_error(capsys, import_args(peer.checkpoint, vocabulary, out,
                                             **{"--preset": "gemma"}))
    assert "--preset='gemma': expected one of auto, griffin-2b" in err
    assert not out.exists()
    # a run directory that is already there; not a checkpoint
    err = one_line_error(capsys, import_args(peer.checkpoint, vocabulary, peer.run))
    assert "already exists and is not empty" in err
    err = one_line_error(capsys, import_args(vocabulary.parent, vocabulary, out))
    assert "not an orbax checkpoint of parameters" in err


def test_presets_are_recurrentgemmas():
    for name, member in RG_PRESET_NAMES.items():
        given = rg.Preset[member].config_dict
        kinds = tuple("attention" if b == A else "recurrent" for b in given["block_types"])
        assert PRESETS[name] == {
            "width": given["width"], "mlp_width": given["mlp_expanded_width"],
            "heads": given["num_heads"], "lru_width": given["lru_width"], "block_types": kinds,
            "scale_embeddings": given["embeddings_scale_by_sqrt_dim"],
            "window": given["attention_window_size"], "softcap": given["logits_soft_cap"]}, name


def test_safetensors_round_trip_is_exact(tmp_path, capsys):
    """An LRU language model's run -> model.safetensors (beside its config.json) -> a new run:
    the same arrays, bit for bit; the export to recurrentgemma refuses it in one line."""
    cfg = tiny_config(tmp_path, "lru")
    model = LanguageModel(cfg.model)
    params, _ = init_params(model, jax.random.key(4), jnp.zeros((1, 4), jnp.int32))
    params = jax.tree.map(np.asarray, params)
    state = {"batch_stats": {"mean": np.arange(3, dtype=np.float32)}}  # a collection beside
    run = tmp_path / "runs" / "lru"
    store.write_run(run, cfg, ByteTokenizer(), params, {"format": "test"}, state)
    assert main(["safetensors", "--run", str(run)]) == 0
    assert (run / store.WEIGHTS).is_file()
    assert main(["from-safetensors", "--folder", str(run), "--out", str(tmp_path / "back")]) == 0
    _, _, _, back, _ = load_run(tmp_path / "back")
    _, _, step, variables = store.read_safetensors(run)
    assert step == 0
    original = flatten_dict({"params": params, **state}, sep="/")
    for tree in ({"params": jax.tree.map(np.asarray, back), **state}, variables,
                 store.newest_variables(tmp_path / "back")[1]):
        flat = flatten_dict(tree, sep="/")
        assert sorted(flat) == sorted(original)
        assert all(np.array_equal(flat[k], v) and flat[k].dtype == v.dtype
                   for k, v in original.items())
    capsys.readouterr()
    err = one_line_error(capsys, ["to-recurrentgemma", "--run", str(run),
                                  "--out", str(tmp_path / "rg")])
    assert "model.block='prenorm': recurrentgemma holds 'hawk' or 'griffin' models" in err
    # a weights file whose arrays are not the model's
    (run / store.WEIGHTS).write_bytes(save_safetensors(
        {"params/embed/embedding": np.zeros((3, 3), np.float32)},
        metadata={"format": store.FORMAT, "step": "0"}))
    with pytest.raises(ConfigError, match=r"parameter \S+ (is missing|has shape)"):
        store.read_safetensors(run)


def test_recurrentgemma_is_no_runtime_dependency():
    """No module of glrnn imports recurrentgemma (a test and benchmark peer only)."""
    package = Path(glrnn.__file__).parent
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] == "recurrentgemma" for n in names), path
