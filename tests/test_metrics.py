"""Metrics: FLOP counts against XLA's, MFU, optional sinks that import nothing when off, and the
plot command."""

from __future__ import annotations

import importlib
import json
import sys

import jax
import jax.numpy as jnp
import pytest

from glrnn.config import AttentionConfig, ConfigError, GateLoopConfig, ModelConfig, RGLRUConfig
from glrnn.models import LanguageModel
from glrnn.params import init_params
from glrnn.plot import main as plot_main
from glrnn.train.flops import forward_flops_per_token, measure_peak_flops, mfu
from glrnn.train.metrics import MetricsLog, read_metrics


@pytest.mark.parametrize("kwargs", [
    {"mixer": "lru"}, {"mixer": "gateloop", "channel_mixer": "mlp"},
    {"mixer": "gateloop", "gateloop": GateLoopConfig(tied_gates=False, output_gate=False)},
    {"mixer": "lru", "tie_embeddings": False, "channel_mixer": "none"},
    {"mixer": "rglru", "block": "hawk", "rglru": RGLRUConfig(gate_blocks=4)},
    {"mixer": "attention", "conv": True, "attention": AttentionConfig(heads=2, max_len=32)}])
def test_forward_flops_match_xla_count(kwargs):
    """XLA counts every operation (norms, activations, gates too): the model FLOPs must be
    below its count and within 10 % of it at widths where matmuls dominate."""
    cfg = ModelConfig(vocab_size=64, d_model=64, d_state=32, n_layers=2,
                      scan_method="associative", **kwargs)  # no while loop: XLA counts all
    model, tokens = LanguageModel(cfg), jnp.zeros((2, 32), jnp.int32)
    params, _ = init_params(model, jax.random.key(0), tokens)
    cost = jax.jit(lambda p, t: model.apply({"params": p}, t)[0]).lower(
        params, tokens).compile().cost_analysis()
    xla = (cost[0] if isinstance(cost, list) else cost)["flops"] / tokens.size
    ours = forward_flops_per_token(cfg, tokens.shape[1])
    assert ours <= xla <= 1.1 * ours


def test_mfu_is_model_flops_over_peak():
    peak = measure_peak_flops(size=256, repeats=2)
    assert peak > 1e8  # any machine that runs the tests does 0.1 GFLOP/s
    assert mfu(1000.0, 2e6, 4e9) == pytest.approx(0.5)


def test_metrics_rows_round_trip_and_drop_after(tmp_path):
    log = MetricsLog(tmp_path)
    for step in (1, 2, 3):
        log.write({"step": step, "loss": 1.0 / step})
    log.drop_after(2)
    log.write({"step": 3, "loss": 0.25, "val_loss": 0.5})
    log.close()
    assert read_metrics(tmp_path) == [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 0.5},
                                      {"step": 3, "loss": 0.25, "val_loss": 0.5}]
    with pytest.raises(FileNotFoundError, match="no metrics"):
        read_metrics(tmp_path / "nope")


def test_optional_sinks_are_not_imported_when_off_and_named_when_missing(tmp_path, monkeypatch):
    for name in ("tensorboardX", "wandb"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    MetricsLog(tmp_path).close()
    assert "tensorboardX" not in sys.modules and "wandb" not in sys.modules

    real_import = importlib.import_module

    def no_optional(name, *args):
        if name in ("tensorboardX", "wandb"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args)

    monkeypatch.setattr(importlib, "import_module", no_optional)
    with pytest.raises(ConfigError, match=r"train\.tensorboard needs.*pip install tensorboardX"):
        MetricsLog(tmp_path, tensorboard=True)
    with pytest.raises(ConfigError, match=r"train\.wandb needs.*pip install wandb"):
        MetricsLog(tmp_path, wandb="glrnn")


def test_plot_command_draws_several_runs(tmp_path, capsys):
    runs = []
    for name, scale in (("a", 1.0), ("b", 0.8)):
        run = tmp_path / name
        run.mkdir()
        rows = [{"step": s, "loss": scale * 3 / s} for s in range(1, 21)]
        rows[9].update(val_loss=scale * 0.4, val_bpb=scale * 0.6)
        rows[19].update(val_loss=scale * 0.3, val_bpb=scale * 0.5)
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        runs.append(str(run))
    out = tmp_path / "both.png"
    assert plot_main([*runs, "--out", str(out), "--x", "elapsed"]) == 2  # no "elapsed" field
    assert plot_main([*runs, "--out", str(out)]) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert str(out) in capsys.readouterr().out
    assert plot_main([str(tmp_path / "missing")]) == 1
    assert "no metrics" in capsys.readouterr().err
