"""The hostile cases of bench/reliability.py, by issue 14's classes:

1. non-finite state and float options float32 cannot hold;  2. a run directory's owner;
3. corrupt or partial checkpoints, config.json and metadata;  4. a user's mistake (data and
tokenizer files, init-from, run kinds, output paths, plot formats, metrics.jsonl, Ctrl-C, bad
values);  5. nothing generated lost (save-state, interactive, audio, failed starts);
6. degenerate inputs (text that is not UTF-8, empty alphabets and sources).
"""

from __future__ import annotations

from reliability_files import (
    also,
    append,
    edit_config,
    empty_step,
    file_is_wav,
    files,
    live_run,
    metrics_rewritten,
    missing,
    no_stray_files,
    nonfinite_checkpoint,
    nothing_generated,
    partial_step,
    remove,
    run_with,
    saved_state,
    torn_line_kept,
    truncate,
    write,
)
from reliability_runner import TRAIN, Case

NEW = (*TRAIN, "--train.steps", "10", "--train.name", "new")  # a fresh run in the case's folder
RESUME = (*TRAIN, "--train.steps", "10", "--train.name", "tiny")  # the copied run, resumed
GEN = ("--run", "runs/tiny", "--prompt", "the ", "--max-new-tokens", "4")
EVAL = ("--run", "runs/tiny", "--max-windows", "4")
TOOL_ARGS = {"train": RESUME, "generate": GEN, "evaluate": EVAL}
SKIPPED_10 = r"step 10\b.*(skip|cannot|unreadable|damaged)"
TEXT = "the quick brown fox jumps over the lazy dog. " * 40
NOT_UTF8 = b"caf\xe9 au lait " * 50
TOK = ("--kind", "char", "--out", "tok.json")


def train(name: str, cls: int, *args: str, **kw: object) -> Case:
    """A fresh tiny run given ``args`` on top."""
    return Case(name, cls, "train", (*NEW, *args), **kw)


def data(name: str, cls: int, source: str, *args: str, **contents: bytes | str) -> Case:
    """A fresh tiny run of ``--data.source source`` after writing ``contents`` (files())."""
    return train(name, cls, "--data.source", source, *args, setup=files(**contents))


def damaged_checkpoints() -> list[Case]:
    """Class 3: each damage of the newest step (10) and of every step, for resume, generate and
    evaluate: the newest intact step is used with a line naming the one skipped."""
    damages = {"truncated-arrays": (truncate(10),), "empty-step": (empty_step(10),),
               "no-params": (remove("checkpoints/10/params"),),
               "garbled-meta": (write("checkpoints/10/meta/metadata", "{garbage"),),
               "no-opt-state": (remove("checkpoints/10/opt_state"),)}
    cases = [Case(f"{damage}-{tool}", 3, tool, TOOL_ARGS[tool], "recover", run_with(*change),
                  says=SKIPPED_10)
             for damage, change in damages.items() for tool in ("train", "generate", "evaluate")
             if not (damage in ("no-opt-state", "garbled-meta") and tool != "train")]
    # generate and evaluate read only the parameters: a step with a damaged meta still serves
    cases += [Case(f"garbled-meta-{tool}", 3, tool, TOOL_ARGS[tool], "recover",
                   run_with(*damages["garbled-meta"])) for tool in ("generate", "evaluate")]
    cases += [Case(f"every-step-damaged-{tool}", 3, tool, TOOL_ARGS[tool],
                   setup=run_with(truncate(5), truncate(10)))
              for tool in ("train", "generate", "evaluate")]
    cases += [Case(f"{name}-{tool}", 3, tool, TOOL_ARGS[tool], "recover", run_with(change))
              for name, change in (("unfinished-save", partial_step),
                                   ("garbled-orbax-metadata", write(
                                       "checkpoints/10/_CHECKPOINT_METADATA", "{garbage")))
              for tool in ("train", "generate", "evaluate")]
    cases += [Case(f"no-checkpoints-{tool}", 3, tool, TOOL_ARGS[tool],
                   setup=run_with(remove("checkpoints"))) for tool in ("generate", "evaluate")]
    configs = {"config-not-json": write("config.json", "{not json"),
               "config-empty": write("config.json", ""),
               "config-a-list": write("config.json", "[1, 2]"),
               "config-no-config": write("config.json", '{"tokenizer": {}}'),
               "config-unknown-mixer": edit_config("config.model.mixer", "nope"),
               "config-width-not-the-checkpoints": edit_config("config.model.d_model", 24),
               "config-missing": remove("config.json")}
    cases += [Case(f"{name}-{tool}", 3, tool, TOOL_ARGS[tool], setup=run_with(change))
              for name, change in configs.items() for tool in ("generate", "evaluate")]
    cases += [Case(f"{name}-train", 3, "train", RESUME, setup=run_with(change))
              for name, change in configs.items() if name != "config-missing"]
    return cases


def nonfinite() -> list[Case]:
    """Class 1: values float32 cannot hold refused at start-up; overflowing updates never saved."""
    refused = {"lr-1e39": ("--optim.lr", "1e39"), "lr-inf": ("--optim.lr", "inf"),
               "lr-nan": ("--optim.lr", "nan"), "clip-norm-1e39": ("--optim.clip-norm", "1e39"),
               "eps-1e-50": ("--optim.eps", "1e-50"),
               "weight-decay-nan": ("--optim.weight-decay", "nan"),
               "mlp-ratio-inf": ("--model.mlp-ratio", "inf"),
               "max-phase-1e-50": ("--model.lru.max-phase", "1e-50"),
               "r-min-nan": ("--model.lru.r-min", "nan"),
               "dropout-nan": ("--model.dropout", "nan"),
               "val-fraction-nan": ("--data.val-fraction", "nan")}
    cases = [train(name, 1, *flag) for name, flag in refused.items()]
    cases += [Case(f"generate-{name}", 1, "generate", (*GEN, flag, value), setup=run_with())
              for name, flag, value in (("temperature-1e39", "--temperature", "1e39"),
                                        ("temperature-nan", "--temperature", "nan"),
                                        ("top-p-nan", "--top-p", "nan"),
                                        ("repetition-penalty-inf", "--repetition-penalty", "inf"))]
    for rule in ("stop", "skip"):
        for lr in ("1e30", "3e38"):
            cases.append(train(f"overflowing-update-{rule}-lr-{lr}", 1, "--optim.lr", lr,
                               "--train.on-nan", rule, "--train.checkpoint-every", "1",
                               "--optim.warmup-steps", "1", expect="recover",
                               harm=nonfinite_checkpoint))
    return cases


def ownership() -> list[Case]:
    """Class 2: one owner per run directory, a lock that dies with its process."""
    live = (*TRAIN, "--train.steps", "100000", "--train.name", "live")
    return [
        Case("second-run-while-first-lives", 2, "train", live, setup=live_run(),
             harm=metrics_rewritten("live"), timeout=60),
        Case("resume-after-kill-9", 2, "train", RESUME, "recover",
             live_run("tiny", kill_at="runs/tiny/checkpoints/5/commit_success.txt")),
        Case("stale-lock-file-garbage", 2, "train", RESUME, "recover",
             run_with(write(".lock", "not a pid"))),
        Case("stale-lock-file-dead-pid", 2, "train", RESUME, "recover",
             run_with(write(".lock", "999999"))),
        Case("generate-while-training", 2, "generate",
             ("--run", "runs/live", "--max-new-tokens", "4"), "recover", live_run()),
        Case("plot-while-training", 2, "plot", ("runs/live", "--out", "c.png"), "recover",
             live_run()),
    ]


def mistakes() -> list[Case]:
    """Class 4: malformed files, mismatches, wrong run kinds, bad paths and values, Ctrl-C."""
    cases = [
        data("jsonl-malformed-line", 4, "d.jsonl", **{"d.jsonl": '{"text": "a b c"}\n{"text": '}),
        data("jsonl-no-text-field", 4, "d.jsonl", **{"d.jsonl": '{"body": "x"}\n' * 30}),
        data("jsonl-text-not-a-string", 4, "d.jsonl", **{"d.jsonl": '{"text": 5}\n' * 30}),
        data("jsonl-row-not-an-object", 4, "d.jsonl", **{"d.jsonl": '[1, 2]\n' * 30}),
        data("json-not-rows", 4, "d.json", **{"d.json": '"just a string"'}),
        data("parquet-garbage", 4, "d.parquet", **{"d.parquet": b"PAR1 not really" * 10}),
        data("parquet-empty-file", 4, "d.parquet", **{"d.parquet": b""}),
        # a file with a NUL byte in its first KiB is not text: passed over, as documented
        Case("binary-file-in-memory", 4, "train", (*NEW, "--data.source", "data"), "recover",
             files(data__blob=bytes(range(256)) * 20)),
        Case("binary-file-streaming", 4, "train", (*NEW, "--data.source", "data",
                                                   "--data.streaming"), "recover",
             files(data__blob=bytes(range(256)) * 20)),
        data("source-missing", 4, "nowhere"),
        data("glob-matching-nothing", 4, "data/*.nothing"),
        data("tokenizer-file-missing", 4, "data", "--data.tokenizer", "none.model"),
        data("tokenizer-model-garbage", 4, "data", "--data.tokenizer", "t.model",
             **{"t.model": b"\x00garbage" * 10}),
        data("tokenizer-json-garbage", 4, "data", "--data.tokenizer", "t.json",
             **{"t.json": "{nope"}),
        data("tokenizer-json-a-list", 4, "data", "--data.tokenizer", "t.json",
             **{"t.json": "[1, 2]"}),
        data("tokenizer-json-chars-a-number", 4, "data", "--data.tokenizer", "t.json",
             **{"t.json": '{"chars": 5}'}),
        data("tokenizer-mulaw-bad-rate", 4, "data", "--data.tokenizer", "mulaw:fast"),
        data("tokenizer-unknown-suffix", 4, "data", "--data.tokenizer", "t.txt",
             **{"t.txt": "abc"}),
        train("init-from-missing", 4, "--train.init-from", "nowhere"),
        train("init-from-other-width", 4, "--train.init-from", "{runs/wide}"),
        train("init-from-not-a-run", 4, "--train.init-from", "{corpus}"),
        train("init-from-classifier", 4, "--train.init-from", "{runs/cls}"),
        train("init-from-damaged", 4, "--train.init-from", "runs/tiny",
              setup=run_with(truncate(5), truncate(10))),
        Case("generate-classifier-run", 4, "generate", ("--run", "{runs/cls}")),
        Case("evaluate-classifier-run", 4, "evaluate", ("--run", "{runs/cls}")),
        Case("generate-not-a-run", 4, "generate", ("--run", "{corpus}")),
        Case("generate-run-missing", 4, "generate", ("--run", "nowhere")),
        Case("evaluate-run-missing", 4, "evaluate", ("--run", "nowhere")),
        Case("evaluate-source-missing", 4, "evaluate", (*EVAL, "--source", "nowhere"),
             setup=run_with()),
        train("out-dir-is-a-file", 4, "--train.out-dir", "f", setup=files(f="x")),
        train("latest-is-a-folder", 4, setup=files(runs__latest__keep="x")),
        train("run-name-is-a-file", 4, setup=files(runs__new="x")),
        Case("plot-format-unsupported", 4, "plot", ("runs/tiny", "--out", "c.xyz"),
             setup=run_with()),
        Case("plot-out-parent-a-file", 4, "plot", ("runs/tiny", "--out", "f/c.png"),
             setup=also(run_with(), files(f="x"))),
        Case("plot-plots-is-a-file", 4, "plot", ("runs/tiny",),
             setup=run_with(write("plots", "x"))),
        Case("plot-no-metrics", 4, "plot", ("{corpus}", "--out", "c.png")),
        Case("plot-torn-last-line", 4, "plot", ("runs/tiny", "--out", "c.png"), "recover",
             run_with(append("metrics.jsonl", '{"step": 11, "lo')), says="cut short|torn|partial"),
        Case("plot-garbage-middle-line", 4, "plot", ("runs/tiny", "--out", "c.png"),
             setup=run_with(write("metrics.jsonl", '{"step": 1, "loss": 5}\n@@\n'
                                                   '{"step": 2, "loss": 4}\n'))),
        Case("plot-metrics-empty", 4, "plot", ("runs/tiny", "--out", "c.png"),
             setup=run_with(write("metrics.jsonl", ""))),
        Case("plot-metrics-row-a-list", 4, "plot", ("runs/tiny", "--out", "c.png"),
             setup=run_with(write("metrics.jsonl", "[1, 2]\n"))),
        Case("plot-loss-a-string", 4, "plot", ("runs/tiny", "--out", "c.png"),
             setup=run_with(write("metrics.jsonl", '{"step": 1, "loss": "x"}\n'))),
        Case("resume-torn-metrics", 4, "train", RESUME, "recover",
             run_with(truncate(10), append("metrics.jsonl", '{"step": 11, "lo')),
             harm=torn_line_kept, says="cut short|torn|partial"),
        train("ctrl-c-during-training", 4, "--train.steps", "100000",
              signal_after="runs/new/checkpoints/5/commit_success.txt"),
        Case("unknown-recipe", 4, "train", ("no-such-recipe", *NEW)),
        train("unknown-mixer", 4, "--model.mixer", "nope"),
        train("seq-len-0", 4, "--data.seq-len", "0"),
        train("batch-size-negative", 4, "--data.batch-size", "-1"),
        train("steps-0", 4, "--train.steps", "0"),
        train("r-min-above-r-max", 4, "--model.lru.r-min", "0.99", "--model.lru.r-max", "0.9"),
        train("lr-negative", 4, "--optim.lr", "-1"),
        train("val-fraction-1.5", 4, "--data.val-fraction", "1.5"),
        train("split-unknown", 4, "--data.split", "nope"),
        train("on-nan-unknown", 4, "--train.on-nan", "nope"),
        Case("generate-top-k-negative", 4, "generate", (*GEN, "--top-k", "-1"),
             setup=run_with()),
        Case("generate-max-new-tokens-negative", 4, "generate",
             (*GEN[:-1], "-5"), setup=run_with()),
        Case("generate-num-samples-0", 4, "generate", (*GEN, "--num-samples", "0"),
             setup=run_with()),
        Case("evaluate-batch-size-0", 4, "evaluate", (*EVAL, "--batch-size", "0"),
             setup=run_with()),
        Case("evaluate-seq-len-negative", 4, "evaluate", (*EVAL, "--seq-len", "-1"),
             setup=run_with()),
        Case("tokenizer-kind-unknown", 4, "tokenizer", ("--source", "{corpus}", "--kind", "nope",
                                                        "--out", "t.model")),
        Case("tokenizer-vocab-too-small", 4, "tokenizer",
             ("--source", "{corpus}", "--vocab-size", "10", "--out", "t.model")),
        Case("tokenizer-vocab-too-large", 4, "tokenizer",
             ("--source", "{corpus}", "--vocab-size", "100000", "--out", "t.model")),
        Case("tokenizer-out-parent-a-file", 4, "tokenizer", ("--source", "{corpus}", *TOK[:2],
                                                             "--out", "f/t.json"),
             setup=files(f="x")),
        Case("tokenizer-out-wrong-suffix", 4, "tokenizer",
             ("--source", "{corpus}", "--out", "t.json")),
    ]
    return cases


def nothing_lost() -> list[Case]:
    """Class 5: output paths checked before generating; interactive sessions and audio kept."""
    return [
        Case("save-state-folder-missing", 5, "generate", (*GEN, "--save-state", "no/s.npz"),
             "recover", run_with(), harm=missing("no/s.npz"), says="saved to"),  # made
        Case("save-state-is-a-folder", 5, "generate", (*GEN, "--save-state", "d"),
             setup=also(run_with(), files(d__keep="x")), harm=nothing_generated),
        Case("save-state-parent-a-file", 5, "generate", (*GEN, "--save-state", "f/s.npz"),
             setup=also(run_with(), files(f="x")), harm=nothing_generated),
        Case("load-state-missing", 5, "generate", (*GEN, "--load-state", "none.npz"),
             setup=run_with()),
        Case("load-state-garbage", 5, "generate", (*GEN, "--load-state", "s.npz"),
             setup=also(run_with(), files(**{"s.npz": b"garbage"}))),
        Case("load-state-of-another-run", 5, "generate", (*GEN, "--load-state", "s.npz"),
             setup=also(run_with(), saved_state("wide", "s.npz"))),
        Case("interactive-line-not-utf8", 5, "generate",
             ("--run", "runs/tiny", "--interactive", "--max-new-tokens", "2", "--save-state",
              "s.npz"), "recover", run_with(), stdin=b"the \n\xff\xfe bad\nfox \n",
             says="not UTF-8"),
        Case("interactive-empty-input", 5, "generate",
             ("--run", "runs/tiny", "--interactive", "--save-state", "s.npz"), "recover",
             run_with(), says="nothing"),
        Case("audio-out-is-png", 5, "generate", ("--run", "runs/tiny", "--audio", "a.png"),
             setup=run_with(name="audio"), harm=file_is_wav("a.png")),
        Case("audio-wav-in-capitals", 5, "generate",
             ("--run", "runs/tiny", "--audio", "a.WAV", "--max-new-tokens", "8"), "recover",
             run_with(name="audio"), harm=file_is_wav("a.WAV"), says="samples written"),
        Case("audio-on-a-text-run", 5, "generate", ("--run", "runs/tiny", "--audio", "a.wav"),
             setup=run_with()),
        Case("audio-folder-missing", 5, "generate",
             ("--run", "runs/tiny", "--audio", "no/a.wav", "--max-new-tokens", "8"), "recover",
             run_with(name="audio"), harm=missing("no/a.wav"), says="samples written"),
        Case("ctrl-c-in-an-interactive-session", 5, "generate",
             ("--run", "runs/tiny", "--interactive", "--max-new-tokens", "4", "--save-state",
              "s.npz"), setup=run_with(), stdin=b"the \n", signal_after="stdout",
             harm=missing("s.npz")),
        Case("plot-failure-leaves-nothing", 5, "plot", ("runs/tiny", "--out", "c.xyz"),
             setup=run_with(), harm=no_stray_files),
    ]


def degenerate() -> list[Case]:
    """Class 6: text that is not UTF-8, empty alphabets and sources, in both reading modes."""
    return [
        data("not-utf8-in-memory", 6, "data", **{"data__bad.txt": NOT_UTF8}),
        data("not-utf8-streaming", 6, "data", "--data.streaming", **{"data__bad.txt": NOT_UTF8}),
        # UTF-16 has NUL bytes: passed over as binary, as documented
        Case("utf16-file", 6, "train", (*NEW, "--data.source", "data"), "recover",
             files(data__u16=TEXT.encode("utf-16"))),
        data("not-utf8-jsonl", 6, "d.jsonl", **{"d.jsonl": b'{"text": "caf\xe9"}\n' * 40}),
        data("all-empty-files", 6, "e", **{f"e__{i}.txt": "" for i in range(4)}),
        data("all-empty-streaming", 6, "e", "--data.streaming",
             **{f"e__{i}.txt": "" for i in range(4)}),
        data("all-empty-jsonl-rows", 6, "d.jsonl", **{"d.jsonl": '{"text": ""}\n' * 20}),
        data("corpus-too-small", 6, "s.txt", **{"s.txt": "abc"}),
        data("char-tokenizer-empty-alphabet", 6, "data", "--data.tokenizer", "t.json",
             **{"t.json": '{"kind": "char", "chars": ""}'}),
        data("char-tokenizer-duplicates", 6, "data", "--data.tokenizer", "t.json",
             **{"t.json": '{"kind": "char", "chars": "aab"}'}),
        Case("tokenizer-train-not-utf8", 6, "tokenizer", ("--source", "data", *TOK),
             setup=files(data__bad=NOT_UTF8)),
        Case("tokenizer-train-empty-source-char", 6, "tokenizer", ("--source", "e", *TOK),
             setup=files(e__a="", e__b="")),
        Case("tokenizer-train-empty-source-bpe", 6, "tokenizer",
             ("--source", "e", "--vocab-size", "300", "--out", "t.model"),
             setup=files(e__a="", e__b="")),
        Case("tokenizer-train-source-missing", 6, "tokenizer", ("--source", "nowhere", *TOK)),
        Case("evaluate-source-not-utf8", 6, "evaluate", (*EVAL, "--source", "bad.txt"),
             setup=also(run_with(), files(**{"bad.txt": NOT_UTF8}))),
        Case("evaluate-source-empty", 6, "evaluate", (*EVAL, "--source", "e.txt"),
             setup=also(run_with(), files(**{"e.txt": ""}))),
    ]


CASES: list[Case] = [*nonfinite(), *ownership(), *damaged_checkpoints(), *mistakes(),
                     *nothing_lost(), *degenerate()]
