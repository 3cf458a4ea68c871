"""Layers every floor above builds from: a Dense layer, the norms, with parameter roles, and
the logits' soft cap.

``dense`` computes in the config's dtype with float32 parameters; kernels have role ``weight``,
biases ``bias``. Norms (LayerNorm, RMSNorm, BatchNorm, RMSNorm times (1 + scale)) compute their
statistics in float32 and return ``dtype``; scales and offsets have role ``norm``. BatchNorm is
called through :func:`normalize`, which passes its mask and its training/evaluation switch.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from glrnn.params import with_role


def dense(features: int, dtype: str, use_bias: bool = True) -> nn.Dense:
    """A Dense layer computing in ``dtype`` with float32 parameters tagged with their roles."""
    return nn.Dense(features, use_bias=use_bias, dtype=jnp.dtype(dtype), param_dtype=jnp.float32,
                    kernel_init=with_role(nn.initializers.lecun_normal(), "weight"),
                    bias_init=with_role(nn.initializers.zeros_init(), "bias"))


BATCHNORM_MOMENTUM = 0.9
RMS_EPSILON = 1e-6  # flax's RMSNorm default, and recurrentgemma's


class RMSNormPlusOne(nn.Module):
    """RMSNorm that multiplies by (1 + scale), scale starting at 0 (Gemma's and recurrentgemma's
    form: a checkpoint's scales load as they are stored). [..., D] -> [..., D] in ``dtype``:

        y = x / sqrt(mean(x²) + ε) · (1 + scale)        statistics in float32
    """

    dtype: str = "float32"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        scale = self.param("scale", with_role(nn.initializers.zeros_init(), "norm"),
                           (x.shape[-1],))
        x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
        y = x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + RMS_EPSILON)
        return (y * (scale + 1)).astype(jnp.dtype(self.dtype))


def make_norm(name: str, dtype: str) -> nn.Module:
    """LayerNorm, RMSNorm, BatchNorm or RMSNorm times (1 + scale) (glrnn.config.NORMS)
    returning ``dtype``; scales and offsets role ``norm``. Call it through :func:`normalize`."""
    scale = with_role(nn.initializers.ones_init(), "norm")
    offset = with_role(nn.initializers.zeros_init(), "norm")
    if name == "layernorm":
        return nn.LayerNorm(dtype=jnp.dtype(dtype), scale_init=scale, bias_init=offset)
    if name == "batchnorm":
        return nn.BatchNorm(momentum=BATCHNORM_MOMENTUM, dtype=jnp.dtype(dtype),
                            scale_init=scale, bias_init=offset)
    if name == "rmsnorm_plus_one":
        return RMSNormPlusOne(dtype)
    return nn.RMSNorm(dtype=jnp.dtype(dtype), scale_init=scale)


def normalize(norm: nn.Module, x: jax.Array, mask: jax.Array | None = None,
              deterministic: bool = True) -> jax.Array:
    """x [..., D] through ``norm``; BatchNorm counts only the positions where ``mask`` (bool,
    x's leading dims + (1,)) is True and uses its running averages when ``deterministic``."""
    if isinstance(norm, nn.BatchNorm):
        return norm(x, use_running_average=deterministic, mask=mask)
    return norm(x)


def soft_cap(x: jax.Array, cap: float) -> jax.Array:
    """cap · tanh(x / cap), elementwise (Gemma's logit soft-capping); ``cap`` 0 returns x."""
    return jnp.tanh(x / cap) * cap if cap else x
