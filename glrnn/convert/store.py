"""The converters' files: recurrentgemma's orbax checkpoints, run directories made from imported
parameters, and safetensors weight files.

* recurrentgemma checkpoints are orbax ``PyTreeCheckpointer`` trees, written by its
  ``utils.save_parameters`` as ``{"params": params}`` (the released Kaggle checkpoints hold the
  parameters at the top). :func:`tree_metadata` reads the shapes alone (the structure is checked
  before any array is read); :func:`read_tree` restores the arrays as recurrentgemma's
  ``utils.load_parameters`` does (``PyTreeCheckpointer.restore`` with one ``RestoreArgs`` per leaf
  of the metadata; here into host numpy arrays, not onto an accelerator, since they are
  rearranged there). Its own ``load_parameters`` passes ``metadata()`` to ``tree_map`` directly,
  which orbax >= 0.12 no longer returns as a tree (it is ``StepMetadata.item_metadata.tree``).
* An imported run is an ordinary run directory: ``config.json`` (the config and the tokenizer by
  path and SHA-256) and ``checkpoints/0`` holding the parameters without an optimizer state
  (:meth:`Checkpoints.save_params`); its ``meta`` also names where the parameters came from.
* safetensors (huggingface/safetensors): one ``model.safetensors`` of every array of a run's
  newest checkpoint, named ``COLLECTION/path/to/leaf`` (``params/embed/embedding``, BatchNorm's
  ``batch_stats/...``), with ``config.json`` beside it (the run's, unchanged) and the step and
  format in the file's metadata. Written with ``safetensors.numpy``.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import traverse_util

from glrnn.config import Config, ConfigError
from glrnn.files import check_folder, write_atomic
from glrnn.models import LanguageModel, example_inputs
from glrnn.params import abstract_params
from glrnn.runs.checkpoint import Checkpoints, checkpoint_dir, key_to_json
from glrnn.runs.run import CONFIG, read_config, write_config
from glrnn.tokenizer import Tokenizer

WEIGHTS = "model.safetensors"
FORMAT = "glrnn-weights-1"


# --- recurrentgemma's checkpoints ---


def tree_metadata(path: Path, flag: str) -> Mapping[str, Any]:
    """The checkpoint's tree with a metadata leaf (``.shape``, ``.dtype``) per array, no array
    read; ConfigError naming ``flag`` if ``path`` is not an orbax checkpoint."""
    if not path.is_dir():
        raise FileNotFoundError(f"{flag} {path}: no such directory")
    try:
        with quiet_absl():
            meta = ocp.PyTreeCheckpointer().metadata(path)
    except (ValueError, OSError, KeyError, TypeError) as e:
        raise ConfigError(f"{flag} {path}: not an orbax checkpoint ({type(e).__name__}: "
                          f"{(str(e).splitlines() or [''])[0][:200]})") from e
    item = getattr(meta, "item_metadata", meta)  # orbax >= 0.12: StepMetadata
    tree = getattr(item, "tree", item)
    if not isinstance(tree, Mapping):
        raise ConfigError(f"{flag} {path}: not an orbax checkpoint of parameters (no tree "
                          "metadata)")
    return tree


@contextlib.contextmanager
def quiet_absl() -> Iterator[None]:
    """orbax's absl warnings held back (a folder that is not a checkpoint is reported in one
    line, not three)."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def read_tree(path: Path) -> dict[str, Any]:
    """The checkpoint's arrays as a nested dict of numpy arrays (the whole saved tree)."""
    checkpointer = ocp.PyTreeCheckpointer()
    meta = tree_metadata(path, "checkpoint")
    args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), meta)
    with quiet_absl():
        return checkpointer.restore(path, restore_args=args)


def write_tree(path: Path, params: Mapping[str, Any]) -> None:
    """recurrentgemma's ``save_parameters``: ``{"params": params}`` as an orbax PyTree at
    ``path`` (absent, or an empty folder, which orbax makes again)."""
    if path.is_dir():
        path.rmdir()
    ocp.PyTreeCheckpointer().save(path.absolute(), {"params": params})


# --- run directories ---


def check_new_run(run_dir: Path, flag: str) -> None:
    """ConfigError unless ``run_dir`` is free for a new run (absent, or an empty folder, with
    no file standing where a folder above it must be)."""
    check_folder(run_dir.parent, flag)
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise ConfigError(f"{flag} {run_dir}: already exists and is not empty (pick a new "
                          "directory)")


def write_run(run_dir: Path, cfg: Config, tokenizer: Tokenizer, params: Any,
              source: dict[str, Any], model_state: dict[str, Any] | None = None) -> None:
    """A run directory holding ``params`` as step 0: ``config.json`` and the checkpoint."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_config(run_dir, cfg, tokenizer)
    meta = {"step": 0, "rng": key_to_json(jax.random.key(cfg.train.seed)), "elapsed": 0.0,
            "data": {}, "source": source}
    checkpoints = Checkpoints(run_dir, keep=1)
    try:
        checkpoints.save_params(0, params, meta, model_state)
    finally:
        checkpoints.close()


def newest_variables(run_dir: Path) -> tuple[int, dict[str, Any]]:
    """(step, {"params": ..., other collections}) of the run's newest readable checkpoint,
    numpy arrays, for any model (language model or classifier)."""
    if not checkpoint_dir(run_dir).is_dir():
        raise FileNotFoundError(f"run directory {run_dir} has no checkpoints yet")
    checkpoints = Checkpoints(run_dir, writable=False)
    try:
        step, (params, model_state) = checkpoints.newest_readable(checkpoints.restore_saved)
    finally:
        checkpoints.close()
    return step, {"params": params, **model_state}


def check_lm_params(cfg: Config, params: Mapping[str, Any], what: str) -> None:
    """ConfigError naming the first parameter of the run's language model that ``params``
    lacks or holds in another shape, or the first one it has no place for."""
    model = LanguageModel(cfg.model)
    want = traverse_util.flatten_dict(abstract_params(model, example_inputs(cfg.model))[0],
                                      sep="/")
    have = traverse_util.flatten_dict(dict(params), sep="/")
    for name, leaf in want.items():
        if name not in have or tuple(have[name].shape) != leaf.shape:
            got = "is missing" if name not in have else f"has shape {have[name].shape}"
            raise ConfigError(f"{what}: parameter {name} {got}, expected {leaf.shape}")
    if extra := sorted(set(have) - set(want)):
        raise ConfigError(f"{what}: parameter {extra[0]} has no place in the model")


# --- safetensors ---


def flatten(variables: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """{"params": tree, ...} -> {"params/a/b": array, ...}, C-contiguous numpy arrays."""
    flat = traverse_util.flatten_dict(dict(variables), sep="/")
    return {name: np.ascontiguousarray(value) for name, value in flat.items()}


def unflatten(arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    return traverse_util.unflatten_dict(dict(arrays), sep="/")


def write_safetensors(out: Path, run_dir: Path, step: int, variables: Mapping[str, Any]) -> Path:
    """``out/model.safetensors`` and ``out/config.json`` (the run's); returns the weights path."""
    from safetensors.numpy import save

    out.mkdir(parents=True, exist_ok=True)
    data = save(flatten(variables), metadata={"format": FORMAT, "step": str(step)})
    weights = write_atomic(out / WEIGHTS, lambda f: f.write(data))
    if (run_dir / CONFIG).resolve() != (out / CONFIG).resolve():
        shutil.copyfile(run_dir / CONFIG, out / CONFIG)
    return weights


def read_safetensors(folder: Path) -> tuple[Config, Tokenizer, int, dict[str, Any]]:
    """(config, tokenizer, step, variables) of a folder written by :func:`write_safetensors`;
    a language model's parameters are checked against its config (names and shapes)."""
    from safetensors import SafetensorError, safe_open

    weights = folder / WEIGHTS
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: no such file")
    cfg, tokenizer = read_config(folder)
    try:
        with safe_open(str(weights), framework="numpy") as f:
            metadata = f.metadata() or {}
            arrays = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as e:
        raise ConfigError(f"{weights}: not a safetensors file ({e})") from e
    if metadata.get("format") != FORMAT:
        raise ConfigError(f"{weights}: format {metadata.get('format')!r}, expected {FORMAT!r}")
    variables = unflatten(arrays)
    if not cfg.task.name:
        check_lm_params(cfg, variables.get("params", {}), str(weights))
    return cfg, tokenizer, int(metadata["step"]), variables
