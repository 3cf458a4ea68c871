"""Helpers for the training and generation tests: a tiny corpus, a tiny config, the CLIs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from glrnn.config import Config, DataConfig, ModelConfig, OptimConfig, TrainConfig

ROOT = Path(__file__).resolve().parents[1]


def write_corpus(directory: Path, n_docs: int = 12) -> Path:
    """``n_docs`` small, repetitive text files (a corpus a tiny model learns in a few steps)."""
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(n_docs):
        line = f"the quick brown fox {i % 3} jumps over the lazy dog. "
        (directory / f"doc{i:02d}.txt").write_text(line * 30)
    return directory


def tiny_config(tmp_path: Path, name: str = "tiny", **train: object) -> Config:
    """d_model 16, 2 layers, seq_len 16 on ``write_corpus(tmp_path / 'corpus')``, writing runs to
    ``tmp_path / 'runs'``; ``train`` overrides TrainConfig fields."""
    corpus = tmp_path / "corpus"
    if not corpus.exists():
        write_corpus(corpus)
    fields = {"steps": 30, "eval_every": 10, "log_every": 1, "checkpoint_every": 10,
              "out_dir": str(tmp_path / "runs"), "name": name, **train}
    return Config(
        model=ModelConfig(d_model=16, n_layers=2, d_state=16, mlp_ratio=2.0),
        data=DataConfig(source=str(corpus), seq_len=16, batch_size=4, val_fraction=0.25,
                        val_windows=8),
        optim=OptimConfig(lr=1e-2, warmup_steps=3),
        train=TrainConfig(**fields),
    )


def load_script(name: str) -> ModuleType:
    """A top-level CLI script (``train_lm.py``, ``generate.py``) as a module."""
    spec = importlib.util.spec_from_file_location(f"_script_{name}", ROOT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
