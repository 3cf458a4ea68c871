"""The training loop: next-token cross entropy, AdamW, periodic evaluation, checkpoints, resume.

Step ``n`` (counted from 1) trains on ``data.train_batch(n)`` with dropout key
``fold_in(key, n)``: both are functions of the step alone, so a run resumed from the checkpoint
of step ``k`` computes the same steps ``k+1, ...`` as one that never stopped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from glrnn.config import Config
from glrnn.data import AudioData, StreamingTextData, TextData, make_data
from glrnn.data.text import segment_ids
from glrnn.models import LanguageModel
from glrnn.params import init_params, overlay_params
from glrnn.tokenizer import from_name
from glrnn.train.checkpoint import Checkpoints, key_from_json, key_to_json
from glrnn.train.flops import measure_peak_flops, mfu, model_flops_per_token
from glrnn.train.metrics import MetricsLog, bits_per_byte
from glrnn.train.optim import lr_schedule, make_optimizer
from glrnn.train.run import default_run_name, point_latest, run_dir_of, write_config
from glrnn.train.sharding import (
    batch_sharding,
    check_batch,
    make_mesh,
    place,
    shard_batch,
    state_shardings,
)

Params = Any
Data = TextData | StreamingTextData | AudioData
TrainStep = Callable[[Params, optax.OptState, jax.Array, jax.Array],
                     tuple[Params, optax.OptState, jax.Array, jax.Array]]


class TrainingDiverged(RuntimeError):
    """The loss or the gradient norm became NaN or infinite."""


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    step: int
    val_loss: float
    val_bpb: float


def cross_entropy(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Nats per position: logits [..., V], targets [...] int -> [...] float32."""
    return optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), targets)


def batch_nats(model: LanguageModel, params: Params, batch: jax.Array, bos_id: int, *,
               deterministic: bool = True, key: jax.Array | None = None) -> jax.Array:
    """Nats per target [B, L] of a packed batch [B, L+1] int32; documents (each opened by
    ``bos_id``) do not see each other: the segment ids reset the recurrent state."""
    inputs = batch[:, :-1]
    logits, _ = model.apply({"params": params}, inputs, segment_ids=segment_ids(inputs, bos_id),
                            deterministic=deterministic,
                            rngs=None if key is None else {"dropout": key})
    return cross_entropy(logits, batch[:, 1:])


def make_train_step(model: LanguageModel, optimizer: optax.GradientTransformation, bos_id: int,
                    grad_accum: int = 1, skip_nonfinite: bool = False) -> TrainStep:
    """Jitted ``(params, opt_state, batch [B, L+1] int32, dropout key)
    -> (params, opt_state, mean loss, gradient global norm)``. With ``grad_accum`` = k the batch
    is cut into k micro-batches of B/k rows whose gradients are averaged in a ``lax.scan``:
    the same update as the whole batch, with a k-th of the activation memory. With
    ``skip_nonfinite``, a step whose loss or gradient norm is NaN or infinite returns the
    parameters and optimizer state it was given."""

    def loss_fn(params: Params, batch: jax.Array, key: jax.Array) -> jax.Array:
        return batch_nats(model, params, batch, bos_id, deterministic=False, key=key).mean()

    def accumulate(params: Params, batch: jax.Array, key: jax.Array) -> tuple[jax.Array, Params]:
        micro = batch.reshape(grad_accum, batch.shape[0] // grad_accum, batch.shape[1])
        keys = jax.random.split(key, grad_accum)

        def add(total, xs):
            loss, grads = jax.value_and_grad(loss_fn)(params, *xs)
            return jax.tree.map(jnp.add, total, (loss, grads)), None

        zero = (jnp.zeros((), jnp.float32), jax.tree.map(jnp.zeros_like, params))
        total, _ = jax.lax.scan(add, zero, (micro, keys))
        return jax.tree.map(lambda x: x / grad_accum, total)

    grad_fn = jax.value_and_grad(loss_fn) if grad_accum == 1 else accumulate

    @jax.jit
    def train_step(params, opt_state, batch, key):
        loss, grads = grad_fn(params, batch, key)
        grad_norm = optax.global_norm(grads)
        updates, new_opt_state = optimizer.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        if skip_nonfinite:
            finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
            keep = lambda new, old: jnp.where(finite, new, old)  # noqa: E731
            new_params = jax.tree.map(keep, new_params, params)
            new_opt_state = jax.tree.map(keep, new_opt_state, opt_state)
        return new_params, new_opt_state, loss, grad_norm

    return train_step


def make_eval_step(model: LanguageModel, bos_id: int) -> Callable[[Params, jax.Array], jax.Array]:
    """Jitted ``(params, batch [B, L+1] int32) -> total nats over the B*L targets``."""

    @jax.jit
    def eval_step(params, batch):
        return batch_nats(model, params, batch, bos_id).sum()

    return eval_step


def evaluate(eval_step: Callable[[Params, jax.Array], jax.Array], params: Params,
             batches: list[np.ndarray], byte_lengths: np.ndarray) -> dict[str, float]:
    """val_loss (nats per token) and val_bpb (bits per byte of the targets' text)."""
    nats = sum(float(eval_step(params, batch)) for batch in batches)
    tokens = sum(batch[:, 1:].size for batch in batches)
    n_bytes = int(sum(byte_lengths[batch[:, 1:]].sum() for batch in batches))
    loss = nats / tokens
    return {"val_loss": loss, "val_bpb": bits_per_byte(nats, n_bytes),
            "val_bits_per_token": loss / math.log(2), "val_ppl": math.exp(min(loss, 700.0))}


def train(cfg: Config, data: Data | None = None) -> TrainResult:
    """Train ``cfg`` in ``OUT/NAME`` (resuming from its latest checkpoint if it has one)."""
    if not cfg.train.name:
        cfg = _with_name(cfg, default_run_name("run"))
    tokenizer = data.tokenizer if data is not None else from_name(cfg.data.tokenizer)
    run_dir = run_dir_of(cfg).absolute()
    write_config(run_dir, cfg, tokenizer)
    point_latest(run_dir)
    data = data if data is not None else make_data(cfg.data, tokenizer)
    model = LanguageModel(cfg.model)
    state = _initial_state(cfg, model)
    checkpoints = Checkpoints(run_dir, keep=cfg.train.keep_checkpoints,
                              keep_best=cfg.train.keep_best)
    metrics = MetricsLog(run_dir, cfg.train.tensorboard, cfg.train.wandb)
    try:
        if (latest := checkpoints.latest_step()) is not None:
            state = _resume(state, checkpoints, latest, data)
            metrics.drop_after(state.step)
            tqdm.write(f"resuming {run_dir} from step {state.step}")
        val = _run(cfg, model, state, data, checkpoints, metrics, run_dir)
    finally:
        checkpoints.close()
        metrics.close()
    print(f"run directory: {run_dir}  (step {cfg.train.steps}, "
          f"val loss {val['val_loss']:.4f}, val bpb {val['val_bpb']:.4f}); "
          f"curves: python -m glrnn.plot {run_dir}", flush=True)
    return TrainResult(run_dir, cfg.train.steps, val["val_loss"], val["val_bpb"])


@dataclass
class State:
    """What a checkpoint holds: parameters, optimizer state, step, dropout key, elapsed time,
    the optimizer that goes with them and the mesh they are placed on."""

    params: Params
    opt_state: optax.OptState
    step: int
    dropout_key: jax.Array
    elapsed: float
    optimizer: optax.GradientTransformation
    mesh: Any


def _initial_state(cfg: Config, model: LanguageModel) -> State:
    """Fresh parameters and optimizer state, placed on the mesh."""
    init_key, dropout_key = jax.random.split(jax.random.key(cfg.train.seed))
    params, roles = init_params(model, init_key, jnp.zeros((1, cfg.data.seq_len), jnp.int32))
    if cfg.train.init_from:
        from glrnn.generate import load_run  # glrnn.generate imports this package

        params = overlay_params(params, load_run(cfg.train.init_from)[3])
    optimizer = make_optimizer(cfg.optim, cfg.train.steps, roles)
    opt_state = optimizer.init(params)
    mesh = make_mesh(cfg.train.fsdp)
    check_batch(cfg.data.batch_size, mesh)
    return State(place(params, state_shardings(params, mesh)),
                 place(opt_state, state_shardings(opt_state, mesh)), 0, dropout_key, 0.0,
                 optimizer, mesh)


def _resume(state: State, checkpoints: Checkpoints, step: int, data: Data) -> State:
    """``state`` with what checkpoint ``step`` holds (restored into the same shardings); the
    data continues from the position saved with it."""
    params, opt_state, meta = checkpoints.restore(step, state.params, state.opt_state)
    data.restore(meta.get("data", {}))
    return replace(state, params=params, opt_state=opt_state, step=meta["step"],
                   dropout_key=key_from_json(meta["rng"]), elapsed=meta["elapsed"])


def _run(cfg: Config, model: LanguageModel, state: State, data: Data,
         checkpoints: Checkpoints, metrics: MetricsLog, run_dir: Path) -> dict[str, float]:
    """Steps ``state.step + 1 .. cfg.train.steps``; returns the last validation figures."""
    tokenizer = data.tokenizer
    skip = cfg.train.on_nan == "skip"
    train_step = make_train_step(model, state.optimizer, tokenizer.bos_id, cfg.optim.grad_accum,
                                 skip_nonfinite=skip)
    eval_step = make_eval_step(model, tokenizer.bos_id)
    schedule = lr_schedule(cfg.optim, cfg.train.steps)
    batches = batch_sharding(state.mesh)
    flops_per_token = model_flops_per_token(cfg.model, cfg.data.seq_len)
    peak = measure_peak_flops()
    tokens_per_step = cfg.data.batch_size * cfg.data.seq_len
    params, opt_state = state.params, state.opt_state
    clock = time.perf_counter()
    window_start, window_steps, window_losses, skipped, in_a_row = clock, 0, [], 0, 0
    val: dict[str, float] = {}
    bar = tqdm(total=cfg.train.steps, initial=state.step, unit="step", dynamic_ncols=True)
    try:
        for step in range(state.step + 1, cfg.train.steps + 1):
            batch = shard_batch(data.train_batch(step), batches)
            params, opt_state, loss, grad_norm = train_step(
                params, opt_state, batch, jax.random.fold_in(state.dropout_key, step))
            loss, grad_norm = float(loss), float(grad_norm)
            if math.isfinite(loss) and math.isfinite(grad_norm):
                window_losses.append(loss)
                in_a_row = 0
            else:
                skipped, in_a_row = skipped + 1, in_a_row + 1
                if not skip or in_a_row > cfg.train.max_skips:
                    raise TrainingDiverged(
                        f"step {step}: loss={loss}, grad_norm={grad_norm} (not finite"
                        f"{f', {in_a_row} steps in a row' if skip else ''}); the last good "
                        f"checkpoint is step {checkpoints.latest_step()} in {run_dir}")
                tqdm.write(f"step {step}: loss={loss}, grad_norm={grad_norm}: batch skipped")
            window_steps += 1
            tokens_per_s = window_steps * tokens_per_step / (time.perf_counter() - window_start)
            bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{tokens_per_s:,.0f}", refresh=False)
            bar.update(1)
            last = step == cfg.train.steps
            evaluated = step % cfg.train.eval_every == 0 or last
            if evaluated:
                val = evaluate(eval_step, params, data.val_batches(), tokenizer.byte_lengths())
                tqdm.write(f"step {step}: val loss {val['val_loss']:.4f}, "
                           f"val bpb {val['val_bpb']:.4f}")
            elapsed = state.elapsed + time.perf_counter() - clock
            if step % cfg.train.log_every == 0 or evaluated:
                # a window of skipped steps only has no loss to report
                losses = {"loss": float(np.mean(window_losses))} if window_losses else {}
                metrics.write({"step": step, **losses,
                               "lr": float(schedule(step - 1)), "grad_norm": grad_norm,
                               "tokens_per_s": tokens_per_s, "elapsed": elapsed,
                               "mfu": mfu(tokens_per_s, flops_per_token, peak),
                               "skipped": skipped, **(val if evaluated else {})})
                window_losses, window_steps, window_start = [], 0, time.perf_counter()
            if step % cfg.train.checkpoint_every == 0 or last:
                checkpoints.save(step, params, opt_state,
                                 {"step": step, "rng": key_to_json(state.dropout_key),
                                  "elapsed": elapsed, "data": data.state()},
                                 val_loss=val["val_loss"] if evaluated else None)
    finally:
        bar.close()
    if not val:  # the run was already complete: evaluate what it ended with
        val = evaluate(eval_step, params, data.val_batches(), tokenizer.byte_lengths())
    return val


def _with_name(cfg: Config, name: str) -> Config:
    return replace(cfg, train=replace(cfg.train, name=name))
