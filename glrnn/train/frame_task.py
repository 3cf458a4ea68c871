"""Next-frame prediction on packed real-valued frames: the continuous-input language-model
:class:`~glrnn.train.task.Task`.

A batch is ``[B, L + 1, F + 1]`` float32 (glrnn/data/frames.py: normalised frames, the last
column the start flag); inputs are its first L positions, targets the last L. The start flags
give the segment ids, so no document sees another through the recurrent state, and a target
that is a start row is not scored. The loss is the frame head's (glrnn/density.py): the
mixture's negative log-likelihood in nats per frame (``gmm``) or the mean squared error per
value (``mse``).

Evaluation (``val_loss`` ranks checkpoints): ``gmm`` reports val_loss (nats per frame of the
normalised frames), val_nats_per_value (the same per value), val_data_nats (nats per frame of
the frames as stored: + Σ log std) and val_mse (squared error of the mixture's mean per value);
``mse`` reports val_loss = val_mse. At the end of a run the same figures of two predictors
with nothing to learn (a per-value Gaussian, the previous frame plus Gaussian noise) give them
a scale (``finish``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from glrnn.config import Config
from glrnn.data.frames import FrameData, in_batches
from glrnn.density import FrameDensity
from glrnn.models import LanguageModel, example_inputs
from glrnn.online.grad import gradient_function
from glrnn.train.flops import model_flops_per_token
from glrnn.train.task import ModelState, Params, TaskGrad, prefixed, whole_split_cost
from glrnn.train.variables import apply_model, init_variables

EvalStep = Callable[[Params, ModelState, jax.Array], tuple[jax.Array, jax.Array, jax.Array]]


def is_start(inputs: jax.Array) -> jax.Array:
    """bool [...]: the positions of inputs [..., F + 1] that open a document (start flag)."""
    return inputs[..., -1] > 0.5


def batch_frames(model: LanguageModel, density: FrameDensity, params: Params,
                 batch: jax.Array, *, model_state: ModelState | None = None,
                 train: bool = False, key: jax.Array | None = None
                 ) -> tuple[jax.Array, jax.Array, jax.Array, ModelState]:
    """(loss per target [B, L], squared error per value of the predicted mean [B, L], scored
    bool [B, L], model_state) of a packed batch [B, L + 1, F + 1]; documents do not see each
    other: the start flags reset the recurrent state."""
    inputs, targets = batch[:, :-1], batch[:, 1:]
    segments = jnp.cumsum(is_start(inputs), axis=1, dtype=jnp.int32)
    (raw, _), model_state = apply_model(model, params, model_state or {}, inputs,
                                        segment_ids=segments, train=train, key=key)
    frames = targets[..., :-1]
    return (density.loss(raw, frames), density.squared_error(raw, frames), ~is_start(targets),
            model_state)


def frame_loss(model: LanguageModel,
               density: FrameDensity) -> Callable[..., tuple[jax.Array, ModelState]]:
    """The training loss ``(params, model_state, batch, dropout key) -> (mean loss per scored
    frame, model_state)``."""

    def loss(params: Params, model_state: ModelState, batch: jax.Array,
             key: jax.Array) -> tuple[jax.Array, ModelState]:
        per_frame, _, scored, model_state = batch_frames(
            model, density, params, batch, model_state=model_state, train=True, key=key)
        return masked_mean(per_frame, scored), model_state

    return loss


def masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
    """The mean of ``values`` where ``mask`` (0 when nothing is)."""
    return jnp.sum(jnp.where(mask, values, 0.0)) / jnp.maximum(mask.sum(), 1)


def make_eval_step(model: LanguageModel, density: FrameDensity) -> EvalStep:
    """Jitted ``(params, model_state, batch) -> (Σ loss, Σ squared error per value, scored
    frames)`` over a batch's scored targets."""

    @jax.jit
    def eval_step(params, model_state, batch):
        per_frame, error, scored, _ = batch_frames(model, density, params, batch,
                                                   model_state=model_state)
        return (jnp.where(scored, per_frame, 0.0).sum(), jnp.where(scored, error, 0.0).sum(),
                scored.sum())

    return eval_step


def evaluate(eval_step: EvalStep, params: Params, model_state: ModelState,
             batches: list[np.ndarray], density: FrameDensity,
             log_scale: float) -> dict[str, float]:
    """The validation figures of the module's docstring; ``log_scale`` = Σ log std of the
    normalisation."""
    total, error, count = 0.0, 0.0, 0
    for batch in batches:
        t, e, c = eval_step(params, model_state, batch)
        total, error, count = total + float(t), error + float(e), count + int(c)
    count = max(count, 1)
    figures = {"val_loss": total / count, "val_mse": error / count}
    if density.head == "gmm":
        figures |= {"val_nats_per_value": figures["val_loss"] / density.width,
                    "val_data_nats": figures["val_loss"] + log_scale}
    return figures


def frame_gradient(rule: str, model: LanguageModel, density: FrameDensity) -> TaskGrad:
    """The task's gradient by an online ``rule``: one position at a time, the state cleared at
    each start row, a start-row target not scored."""

    def step_loss(raw: jax.Array, target: jax.Array) -> tuple[jax.Array, jax.Array]:
        scored = ~is_start(target)
        per_frame = density.loss(raw, target[..., :-1])
        return jnp.where(scored, per_frame, 0.0).sum(), scored.sum().astype(jnp.float32)

    grad = gradient_function(rule, model, step_loss)

    def fn(params, model_state, batch, key):
        inputs = batch[:, :-1]
        loss, grads = grad(params, inputs, batch[:, 1:], is_start(inputs), key)
        return (loss, model_state), grads

    return fn


class FrameTask:
    """A language model of ``cfg.model`` (``input="continuous"``) over ``data`` (FrameData)."""

    unit = "frame"
    rate_name = "frames_per_s"
    steps_per_epoch = None  # no epochs: a language model's length is train.steps
    best_metric = "val_loss"
    best_higher = False

    def __init__(self, cfg: Config, data: FrameData) -> None:
        self.cfg, self.data = cfg, data
        self.tokenizer = data.codec  # config.json records the normalisation in its place
        self.model = LanguageModel(cfg.model)
        self.density = FrameDensity.of(cfg.model)
        self.items_per_step = cfg.data.batch_size * cfg.data.seq_len
        self.flops_per_item = model_flops_per_token(cfg.model, cfg.data.seq_len)
        self._eval_step = make_eval_step(self.model, self.density)
        self.loss = frame_loss(self.model, self.density)

    def init_variables(self, key: jax.Array) -> tuple[Params, Any, ModelState]:
        return init_variables(self.model, key,
                              example_inputs(self.cfg.model, length=self.cfg.data.seq_len))

    def train_batch(self, step: int, rows: slice = slice(None)) -> np.ndarray:
        return self.data.train_batch(step, rows)

    def _score(self, params: Params, model_state: ModelState,
               windows: np.ndarray) -> dict[str, float]:
        return evaluate(self._eval_step, params, model_state,
                        in_batches(windows, self.cfg.data.batch_size), self.density,
                        self.data.codec.log_scale)

    def evaluate(self, params: Params, model_state: ModelState) -> dict[str, float]:
        """The estimate on the data's ``val`` windows (``data.val_windows`` of them)."""
        return self._score(params, model_state, self.data.val)

    def final_evaluation(self, params: Params, model_state: ModelState) -> dict[str, float]:
        """The whole validation split: ``full_val_loss``, ``full_val_mse``, ..."""
        return prefixed("full_", self._score(params, model_state, self.data.val_split()))

    @property
    def final_eval_size(self) -> float:
        """The whole split's batches over the estimate's."""
        return whole_split_cost(len(self.data.val_frames) - 1, len(self.data.val),
                                self.cfg.data.seq_len, self.cfg.data.batch_size)

    def step_figures(self, step: int) -> dict[str, float]:
        return {}

    def online_gradient(self, rule: str) -> TaskGrad:
        return frame_gradient(rule, self.model, self.density)

    def state(self) -> dict[str, Any]:
        return self.data.state()

    def restore(self, state: dict[str, Any]) -> None:
        self.data.restore(state)

    def finish(self, run_dir: Path, params: Params, model_state: ModelState) -> dict[str, float]:
        return self.data.baselines()

    def describe(self, figures: dict[str, float]) -> str:
        """The estimate's figures (``val_*``), the whole split's (``full_val_*``) and the
        baselines, those present."""
        parts = [self._figures(figures, prefix, what)
                 for prefix, what in (("val_", "val"), ("full_val_", "full validation split:"))
                 if f"{prefix}mse" in figures]
        head = self.density.head
        base = (("baseline_mean_mse", "baseline_repeat_mse") if head == "mse"
                else ("baseline_gaussian_nats", "baseline_repeat_nats"))
        if base[0] in figures:
            first = "the mean" if head == "mse" else "per-value gaussian"
            parts.append(f"baselines: {first} {figures[base[0]]:.4f}, previous frame "
                         f"{figures[base[1]]:.4f}")
        return "; ".join(parts)

    def _figures(self, figures: dict[str, float], prefix: str, what: str) -> str:
        mse = f"{what} mse {figures[prefix + 'mse']:.4f}"
        if self.density.head == "mse":
            return mse
        return (f"{what} nll {figures[prefix + 'loss']:.4f} nats/frame "
                f"({figures[prefix + 'nats_per_value']:.4f}/value), {mse}")
