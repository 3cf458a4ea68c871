"""The next frame's distribution for a language model over real-valued frames: pure functions of
the frame head's raw outputs (glrnn/models.py), for the loss, the evaluation and the sampler.

* ``gmm`` (the default): a mixture of K Gaussians with diagonal covariance over the F values of
  a frame, Bishop's mixture density network as Graves (2013, "Generating sequences with
  recurrent neural networks") predicts handwriting and speech frames with it. The head emits
  ``[K mixture logits | K·F means | K·F log-scales]``;
  p(x) = Σ_k π_k Π_d N(x_d; μ_kd, σ_kd²), π = softmax(logits). Trained by its exact negative
  log-likelihood in nats per frame: a log-sum-exp over the components of
  log π_k − Σ_d [½((x_d − μ_kd)/σ_kd)² + log σ_kd + ½ log 2π], in float32.
  **The σ floor**: σ = exp(s) + σ_min, taken as log σ = logaddexp(s, log σ_min) (smooth, never
  below the floor): a component that collapses onto repeated values (silence, clipped samples)
  would otherwise drive the likelihood to infinity; with the floor the NLL per value is bounded
  below by log(σ_min √(2π)) (−5.99 nats at the default σ_min = 1e-3 of the data's std).
* ``mse``: a point prediction trained by the mean squared error of a frame's values (the
  regression of the seed package). Not the default: where the next frame has several likely
  continuations (a word's onset, a pause) it predicts their average, and it gives no likelihood
  to compare models by.

Sampling follows sketch-rnn (Ha & Eck 2017): a temperature τ divides the mixture logits and
scales every σ by √τ; τ = 0 is the greedy choice, the mean of the most probable component (the
limit of τ → 0). The ``mse`` head's frame is its prediction at every temperature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from glrnn.config import ModelConfig

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def gaussian_nll(x: jax.Array, mean: jax.Array, log_sigma: jax.Array) -> jax.Array:
    """Nats of x under independent Gaussians, summed over the last axis: x, mean, log_sigma
    [..., F] (broadcasting) -> [...]."""
    z = (x - mean) * jnp.exp(-log_sigma)
    return jnp.sum(0.5 * z * z + log_sigma + HALF_LOG_2PI, axis=-1)


@dataclass(frozen=True)
class FrameDensity:
    """The next frame's distribution of a continuous-input model (``ModelConfig`` fields
    ``frame_head``, ``frame_width``, ``mixture_components``, ``min_sigma``)."""

    head: str  # "gmm" or "mse"
    width: int  # F, the values of a frame
    components: int = 1  # K (gmm)
    min_sigma: float = 1e-3  # the floor of every σ (gmm)

    @classmethod
    def of(cls, cfg: ModelConfig) -> FrameDensity:
        return cls(cfg.frame_head, cfg.frame_width, cfg.mixture_components, cfg.min_sigma)

    @property
    def raw_width(self) -> int:
        """P, the head's outputs per position: K (2F + 1) for gmm, F for mse."""
        return self.components * (2 * self.width + 1) if self.head == "gmm" else self.width

    def mixture(self, raw: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """raw [..., P] -> (log π [..., K] normalised, μ [..., K, F], log σ [..., K, F]) in
        float32, σ floored at ``min_sigma``."""
        raw = raw.astype(jnp.float32)
        k, f = self.components, self.width
        log_weights = jax.nn.log_softmax(raw[..., :k], axis=-1)
        means = raw[..., k:k + k * f].reshape(*raw.shape[:-1], k, f)
        scales = raw[..., k + k * f:].reshape(*raw.shape[:-1], k, f)
        return log_weights, means, jnp.logaddexp(scales, math.log(self.min_sigma))

    def nll(self, raw: jax.Array, x: jax.Array) -> jax.Array:
        """Nats of the frames x [..., F] under the mixture raw [..., P] -> [...] (gmm only)."""
        log_weights, means, log_sigmas = self.mixture(raw)
        per_component = log_weights - gaussian_nll(x.astype(jnp.float32)[..., None, :], means,
                                                   log_sigmas)
        return -jax.nn.logsumexp(per_component, axis=-1)

    def mean(self, raw: jax.Array) -> jax.Array:
        """The expected frame [..., F]: Σ π_k μ_k (gmm), the prediction (mse)."""
        if self.head == "mse":
            return raw.astype(jnp.float32)
        log_weights, means, _ = self.mixture(raw)
        return jnp.einsum("...k,...kf->...f", jnp.exp(log_weights), means)

    def squared_error(self, raw: jax.Array, x: jax.Array) -> jax.Array:
        """Mean over a frame's values of (x − the expected frame)²: raw [..., P], x [..., F]
        -> [...]."""
        return jnp.mean(jnp.square(x.astype(jnp.float32) - self.mean(raw)), axis=-1)

    def loss(self, raw: jax.Array, x: jax.Array) -> jax.Array:
        """The training loss per frame [...]: nats (gmm) or the mean squared error (mse)."""
        return self.nll(raw, x) if self.head == "gmm" else self.squared_error(raw, x)

    def sample(self, raw: jax.Array, key: jax.Array, temperature: float) -> jax.Array:
        """A frame [..., F] drawn from raw [..., P] at ``temperature`` (see the module's
        docstring; 0: the mean of the most probable component)."""
        if self.head == "mse":
            return raw.astype(jnp.float32)
        log_weights, means, log_sigmas = self.mixture(raw)
        if temperature == 0:
            pick = jnp.argmax(log_weights, axis=-1)
        else:
            key, noise_key = jax.random.split(key)
            pick = jax.random.categorical(key, log_weights / temperature, axis=-1)
        take = lambda a: jnp.take_along_axis(a, pick[..., None, None], axis=-2)[..., 0, :]  # noqa: E731
        if temperature == 0:
            return take(means)
        noise = jax.random.normal(noise_key, take(means).shape)
        return take(means) + jnp.exp(take(log_sigmas)) * math.sqrt(temperature) * noise
