"""Every mixer as a language model of about the same size, trained for the same wall-clock time.

    python bench/compare_mixers.py --seconds 900                      # the comparison (~5M each)
    python bench/compare_mixers.py --seconds 20 --width 32 --params 0  # a quick check

Each contender (every mixer in ``glrnn.mixers.MIXERS``, so mixers added later are picked up,
plus the ``hawk`` and ``griffin`` layouts of the RG-LRU and GateLoop's true recurrence) is a
byte-level LM on the default corpus (the standard library's source, loaded once) with the same
width, channel mixer, batch, window length and optimizer; the number of blocks is chosen per
mixer to bring its parameter count nearest ``--params`` (0: ``--layers`` for all). Its step time
is measured first (compiled, a few steps), its step count set so that training takes
``--seconds``, and it then trains through the normal path (``glrnn.train.train``: warmup and
cosine over those steps, ``--evals`` evaluations) into ``OUT/NAME``. Prints a markdown table
(parameters, steps, tokens/s, final and best validation bits per byte, wall time) and writes
``OUT/compare.png``: loss and validation bits per byte against training seconds
(``glrnn.plot``), and ``OUT/compare.md`` with the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from glrnn.config import (
    AttentionConfig,
    Config,
    DataConfig,
    GateLoopConfig,
    GateLoopQKVConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
)
from glrnn.data import make_data
from glrnn.mixers import MIXERS
from glrnn.models import LanguageModel
from glrnn.params import abstract_params
from glrnn.plot import plot_runs
from glrnn.tokenizer import from_name
from glrnn.train import train
from glrnn.train.lm_task import LMTask
from glrnn.train.loop import make_train_step
from glrnn.train.metrics import read_metrics
from glrnn.train.optim import make_optimizer

CALIBRATION_STEPS = 3


def contenders(base: ModelConfig, window: int) -> dict[str, ModelConfig]:
    """Name -> model config: every registered mixer in pre-norm blocks (attention with the
    sliding window), then the Hawk and Griffin layouts, GateLoop's true recurrence, and the
    query/key/value GateLoop with the mqar recipe's choices (real decays, elu + 1 features)."""
    local = dataclasses.replace(base.attention, window=window)
    models = {name: dataclasses.replace(base, mixer=name) for name in MIXERS}
    models["attention"] = dataclasses.replace(models["attention"], attention=local)
    models["hawk"] = dataclasses.replace(base, mixer="rglru", block="hawk")
    models["griffin"] = dataclasses.replace(base, mixer="rglru", block="griffin", attention=local)
    models["gateloop-recurrent"] = dataclasses.replace(
        base, mixer="gateloop", gateloop=GateLoopConfig(recurrent=True))
    models["gateloop_qkv-real-elu"] = dataclasses.replace(
        base, mixer="gateloop_qkv", gateloop_qkv=GateLoopQKVConfig(phase=False, feature_map="elu"))
    return models


def n_params(model: ModelConfig) -> int:
    tree, _ = abstract_params(LanguageModel(model), jnp.zeros((1, 1), jnp.int32))
    return sum(leaf.size for leaf in jax.tree.leaves(tree))


def sized(model: ModelConfig, target: int) -> ModelConfig:
    """``model`` with the number of blocks (1 .. 64) whose parameter count is nearest
    ``target``."""
    best = min(range(1, 65),
               key=lambda n: abs(n_params(dataclasses.replace(model, n_layers=n)) - target))
    return dataclasses.replace(model, n_layers=best)


def step_seconds(cfg: Config, data: Any) -> float:
    """Median seconds of a compiled training step (after one warm-up step), through the
    training loop's own step and the language-model task's loss."""
    task = LMTask(cfg, data)
    params, roles, model_state = task.init_variables(jax.random.key(0))
    optimizer = make_optimizer(cfg.optim, cfg.train.steps, roles)
    step = make_train_step(task.loss, optimizer)
    state = (params, optimizer.init(params), model_state)
    batch = jnp.asarray(data.train_batch(1))
    times = []
    for i in range(CALIBRATION_STEPS + 1):
        start = time.perf_counter()
        *state, loss, _, _ = step(*state, batch, jax.random.key(i))
        float(loss)
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[len(times[1:]) // 2]


def table(rows: list[dict[str, Any]]) -> str:
    header = ("mixer", "blocks", "params", "steps", "train tok/s", "val bpb (last)",
              "val bpb (best)", "wall s")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        lines.append(f"| {r['name']} | {r['blocks']} | {r['params'] / 1e6:.2f}M | {r['steps']} | "
                     f"{r['tokens_per_s']:,.0f} | {r['last_bpb']:.4f} | {r['best_bpb']:.4f} | "
                     f"{r['wall']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=900.0, help="training time per mixer")
    parser.add_argument("--params", type=float, default=5e6, help="target size (0: --layers)")
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--window", type=int, default=128, help="local attention window")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--evals", type=int, default=8, help="evaluations per run")
    parser.add_argument("--source", default="stdlib", help="data.source")
    parser.add_argument("--only", nargs="*", default=None, help="names of contenders to run")
    parser.add_argument("--out", default="runs/compare-mixers")
    args = parser.parse_args()

    base = ModelConfig(vocab_size=259, d_model=args.width, d_state=args.width,
                       n_layers=args.layers, attention=AttentionConfig(max_len=args.seq_len))
    data_cfg = DataConfig(source=args.source, seq_len=args.seq_len, batch_size=args.batch)
    data = make_data(data_cfg, from_name(data_cfg.tokenizer))
    out = Path(args.out)
    rows = []
    for name, model in contenders(base, args.window).items():
        if args.only and name not in args.only:
            continue
        if args.params:
            model = sized(model, int(args.params))
        probe = Config(model=model, data=data_cfg, optim=OptimConfig(lr=args.lr, warmup_steps=1),
                       train=TrainConfig(steps=100))
        steps = max(args.evals, int(args.seconds / step_seconds(probe, data)))
        every = max(1, steps // args.evals)
        cfg = dataclasses.replace(probe, optim=dataclasses.replace(
            probe.optim, warmup_steps=max(1, steps // 20)), train=TrainConfig(
            steps=steps, eval_every=every, log_every=every, checkpoint_every=steps,
            keep_checkpoints=1, keep_best=False, out_dir=str(out), name=name))
        start = time.perf_counter()
        train(cfg, data)
        wall = time.perf_counter() - start
        metrics = read_metrics(out / name)
        bpb = [r["val_bpb"] for r in metrics if "val_bpb" in r]
        rows.append({"name": name, "blocks": model.n_layers, "params": n_params(model),
                     "steps": steps, "tokens_per_s": metrics[-1]["tokens_per_s"],
                     "last_bpb": bpb[-1], "best_bpb": min(bpb), "wall": wall})
        print(table(rows), flush=True)
    plot = plot_runs([out / r["name"] for r in rows], out / "compare.png", x="elapsed")
    (out / "compare.md").write_text(table(rows) + "\n")
    print(f"table: {out / 'compare.md'}; curves: {plot}")


if __name__ == "__main__":
    main()
