"""Convert weights between glrnn runs and other formats.

    python -m glrnn.convert recurrentgemma --checkpoint DIR --tokenizer FILE.model \\
        --preset recurrentgemma-2b --out runs/NAME
    python -m glrnn.convert to-recurrentgemma --run runs/NAME --out DIR
    python -m glrnn.convert safetensors --run runs/NAME [--out DIR]
    python -m glrnn.convert from-safetensors --folder DIR --out runs/NAME

``recurrentgemma`` imports a recurrentgemma (Griffin, Hawk) checkpoint into an ordinary run
directory (config.json with the tokenizer by path and SHA-256, the parameters as step 0) that
generate.py, ``python -m glrnn.evaluate`` and ``train_lm.py RUN --train.init-from RUN`` read
like any run. Presets: recurrentgemma's (``recurrentgemma-2b`` = ``griffin-2b``,
``recurrentgemma-9b`` = ``griffin-9b``, ``griffin-7b``, ``hawk-7b``), or ``auto`` (shapes read
from the checkpoint; then give --scale-embeddings, --softcap and, with attention blocks,
--window). ``to-recurrentgemma`` writes a glrnn Hawk/Griffin (one in recurrentgemma's settings,
such as an imported one) back in recurrentgemma's layout. ``safetensors`` writes any run's newest
parameters as model.safetensors beside its config.json; ``from-safetensors`` makes a run of them.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tyro

from glrnn.cli import USER_ERRORS, report
from glrnn.config import Config, ConfigError, DataConfig, TrainConfig, check, check_choice
from glrnn.convert import store
from glrnn.convert.recurrentgemma import (
    AUTO,
    PRESETS,
    GriffinSpec,
    check_tree,
    from_glrnn,
    infer_spec,
    model_config,
    preset_spec,
    spec_of,
    spec_summary,
    to_glrnn,
    unwrap,
)
from glrnn.runs.load import load_run
from glrnn.runs.run import point_latest, read_config
from glrnn.tokenizer import from_name


@dataclass(frozen=True)
class Import:
    """A recurrentgemma checkpoint -> a glrnn run directory."""

    checkpoint: str  # recurrentgemma's orbax checkpoint directory
    tokenizer: str  # its SentencePiece model (.model), recorded in the run by path and SHA-256
    # recurrentgemma-2b (also griffin-2b), recurrentgemma-9b (griffin-9b), griffin-7b, hawk-7b,
    # or auto (the shapes read from the checkpoint, the three values below given)
    preset: str
    out: str  # the new run directory (absent, or an empty folder)
    # what a checkpoint cannot show (needed with auto; given with a preset, they override it):
    # whether embeddings are multiplied by sqrt(width) (RecurrentGemma: True)
    scale_embeddings: bool | None = None
    window: int | None = None  # the local attention window (RecurrentGemma: 2048)
    softcap: float | None = None  # the logits' soft cap, 0 for none (RecurrentGemma: 30)


@dataclass(frozen=True)
class Export:
    """A glrnn Hawk/Griffin run -> a recurrentgemma checkpoint."""

    run: str  # a run whose model is in recurrentgemma's settings (an imported one, say)
    out: str  # the checkpoint directory to write (absent, or an empty folder)


@dataclass(frozen=True)
class Safetensors:
    """Any glrnn run -> model.safetensors with the run's config.json beside it."""

    run: str  # the run directory (its newest readable checkpoint is written)
    out: str = ""  # the folder to write; empty: the run directory itself


@dataclass(frozen=True)
class FromSafetensors:
    """A folder written by ``safetensors`` -> a glrnn run directory."""

    folder: str  # holds model.safetensors and config.json
    out: str  # the new run directory (absent, or an empty folder)


def import_spec(args: Import, tree: Any, what: str) -> GriffinSpec:
    """The spec of the checkpoint: the preset's (vocabulary from the embedding) or the shapes
    read from it (``auto``), with the hypers given on the command line."""
    check_choice("--preset", args.preset, (*PRESETS, AUTO))
    given = {"scale_embeddings": args.scale_embeddings, "window": args.window,
             "softcap": args.softcap}
    if args.preset == AUTO:
        for name, value in given.items():
            if value is None and (name != "window" or _has_attention(tree)):
                raise ConfigError(f"--{name.replace('_', '-')}: needed with --preset auto (a "
                                  "checkpoint does not show it)")
        spec = infer_spec(tree, args.scale_embeddings, args.window or 0, args.softcap, what)
    else:
        embedding = (tree.get("embedder") or {}).get("input_embedding")
        if embedding is None:
            raise ConfigError(f"{what}: parameter embedder/input_embedding is missing")
        spec = preset_spec(args.preset, embedding.shape[0])
    overrides = {k: v for k, v in given.items() if v is not None}
    return dataclasses.replace(spec, **overrides)


def _has_attention(tree: Any) -> bool:
    return any(isinstance(block, Mapping) and "attention_block" in block
               for block in tree.values())


def import_recurrentgemma(args: Import) -> str:
    out, checkpoint = Path(args.out), Path(args.checkpoint)
    store.check_new_run(out, "--out")
    check(Path(args.tokenizer).suffix == ".model", "--tokenizer", args.tokenizer,
          "recurrentgemma's SentencePiece model (a .model file)")
    vocabulary = Path(args.tokenizer).absolute()  # the run finds it from any directory
    if not vocabulary.is_file():
        raise FileNotFoundError(f"--tokenizer {args.tokenizer}: no such file")
    tokenizer = from_name(str(vocabulary))
    what = f"--checkpoint {checkpoint}"
    tree = unwrap(store.tree_metadata(checkpoint, "--checkpoint"))
    spec = import_spec(args, tree, what)
    check_tree(tree, spec, f"{what} (--preset {args.preset})")
    check(tokenizer.vocab_size == spec.vocab_size, "--tokenizer", args.tokenizer,
          f"a vocabulary of {spec.vocab_size} (the checkpoint's embedding rows), it has "
          f"{tokenizer.vocab_size}")
    model = model_config(spec, what)
    span = model.attention.window if model.uses_attention() else 0
    cfg = Config(model=model,
                 data=DataConfig(tokenizer=str(vocabulary),
                                 seq_len=max(DataConfig.seq_len, span)),
                 train=TrainConfig(out_dir=str(out.parent), name=out.name))
    params = to_glrnn(unwrap(store.read_tree(checkpoint)), spec)
    store.write_run(out, cfg, tokenizer, params, {"format": "recurrentgemma",
                                                  "checkpoint": str(checkpoint.absolute()),
                                                  "preset": args.preset})
    point_latest(out)
    return f"{out}: recurrentgemma {args.preset} ({spec_summary(spec)})"


def export_recurrentgemma(args: Export) -> str:
    out = Path(args.out)
    store.check_new_run(out, "--out")
    cfg, _ = read_config(args.run)
    spec = spec_of(cfg.model)  # before any array is read
    _, _, _, params, step = load_run(args.run)
    store.write_tree(out, from_glrnn(params, spec))
    return (f"{out}: recurrentgemma parameters of {args.run} (step {step}); load them with "
            f"GriffinConfig.from_flax_params_or_variables(params, embeddings_scale_by_sqrt_dim="
            f"{spec.scale_embeddings}, attention_window_size={spec.window}, "
            f"logits_soft_cap={spec.softcap})")


def export_safetensors(args: Safetensors) -> str:
    run = Path(args.run)
    read_config(run)  # a run directory, its config readable
    step, variables = store.newest_variables(run)
    weights = store.write_safetensors(Path(args.out or args.run), run, step, variables)
    count = sum(int(np.prod(a.shape)) for a in store.flatten(variables).values())
    return f"{weights}: {count:,} numbers of {run} (step {step}), config.json beside it"


def import_safetensors(args: FromSafetensors) -> str:
    out = Path(args.out)
    store.check_new_run(out, "--out")
    cfg, tokenizer, step, variables = store.read_safetensors(Path(args.folder))
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, out_dir=str(out.parent),
                                                             name=out.name, init_from=""))
    params = variables.pop("params")
    store.write_run(out, cfg, tokenizer, params, {"format": "safetensors",
                                                  "folder": str(Path(args.folder).absolute()),
                                                  "step": step}, variables or None)
    point_latest(out)
    return f"{out}: the parameters of {args.folder} (step {step})"


COMMANDS: dict[str, tuple[type, Callable[[Any], str]]] = {
    "recurrentgemma": (Import, import_recurrentgemma),
    "to-recurrentgemma": (Export, export_recurrentgemma),
    "safetensors": (Safetensors, export_safetensors),
    "from-safetensors": (FromSafetensors, import_safetensors),
}


def main(argv: Sequence[str] | None = None) -> int:
    args = tyro.extras.subcommand_cli_from_dict(
        {name: kind for name, (kind, _) in COMMANDS.items()},
        args=sys.argv[1:] if argv is None else argv, prog="python -m glrnn.convert",
        description=__doc__)
    run = next(fn for kind, fn in COMMANDS.values() if isinstance(args, kind))
    try:
        print(run(args))
    except USER_ERRORS as e:
        return report(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
