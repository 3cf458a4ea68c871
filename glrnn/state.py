"""Saved generation states: the recurrent carry, so a generation can be continued later.

A state file (``.npz``, written atomically) holds the carry's arrays, the next-token logits, the
tokens seen so far and a JSON header with the model's identity (a hash of the run's model
configuration, tokenizer and checkpoint step) and the position (tokens consumed). Loading
checks the file is whole, comes from the same model and has the carry's structure, before any
decoding.

Compatibility: the carry is stored leaf by leaf, so a model with ``model.positions`` saves its
position counter as one more leaf (glrnn/positions.py) in the same format. Model fields added
after the format (:data:`LATER_FIELDS`) are left out of the identity while at their defaults, so
a file saved before they existed still names its model and loads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

from glrnn.config import Config, ConfigError, ModelConfig
from glrnn.files import write_atomic
from glrnn.tokenizer import Tokenizer

FORMAT = "glrnn-state-1"
# ModelConfig fields newer than FORMAT (dotted: in a section): in the identity only when not at
# their defaults
LATER_FIELDS = ("positions", "max_positions", "input", "frame_width", "frame_head",
                "mixture_components", "min_sigma", "embed_scale", "logit_softcap",
                "rglru.unscaled_start", "attention.rope_fraction", "attention.out_bias")


def model_identity(cfg: Config, tokenizer: Tokenizer, step: int) -> str:
    """A hash naming the parameters a carry belongs to."""
    model = dataclasses.asdict(cfg.model)
    for name in LATER_FIELDS:
        *sections, field = name.split(".")
        fields, default = model, ModelConfig()
        for section in sections:
            fields, default = fields[section], getattr(default, section)
        if fields[field] == getattr(default, field):
            del fields[field]
    record = {"model": model, "tokenizer": tokenizer.describe(), "step": step}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def save_state(path: str | Path, carry: Any, logits: Any, tokens: list[int], *,
               identity: str) -> Path:
    """Write the state of one sequence (batch row 0)."""
    leaves = [np.asarray(x) for x in jax.tree.leaves(carry)]
    header = {"format": FORMAT, "identity": identity, "position": len(tokens)}
    arrays = {f"leaf_{i}": leaf for i, leaf in enumerate(leaves)}
    return write_atomic(path, lambda f: np.savez(
        f, header=np.frombuffer(json.dumps(header).encode(), np.uint8),
        logits=np.asarray(logits), tokens=np.asarray(tokens, np.int64), **arrays))


def load_state(path: str | Path, identity: str,
               template: Any) -> tuple[Any, np.ndarray, list[int]]:
    """(carry shaped like ``template``, logits, tokens) from ``path``; ConfigError if the file is
    missing, truncated, from another model or of another shape."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--load-state {path}: no such file")
    try:
        with np.load(path) as data:
            arrays = {name: data[name] for name in data.files}
        header = json.loads(arrays.pop("header").tobytes())
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError) as e:
        raise ConfigError(f"--load-state {path}: truncated or not a glrnn state ({e})") from e
    if header.get("format") != FORMAT:
        raise ConfigError(f"--load-state {path}: format {header.get('format')!r}, expected "
                          f"{FORMAT!r}")
    if header["identity"] != identity:
        raise ConfigError(f"--load-state {path}: saved by another model (identity "
                          f"{header['identity'][:12]}…, this run's is {identity[:12]}…)")
    leaves, treedef = jax.tree.flatten(template)
    saved = [arrays.get(f"leaf_{i}") for i in range(len(leaves))]
    for i, (got, want) in enumerate(zip(saved, leaves, strict=True)):
        if got is None or got.shape != want.shape or got.dtype != want.dtype:
            raise ConfigError(f"--load-state {path}: carry array {i} is "
                              f"{None if got is None else (got.shape, str(got.dtype))}, "
                              f"expected {(want.shape, str(want.dtype))}")
    return jax.tree.unflatten(treedef, saved), arrays["logits"], arrays["tokens"].tolist()
