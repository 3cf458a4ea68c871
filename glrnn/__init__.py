"""glrnn: sequence models built from linear recurrences, in JAX/Flax.

Importing glrnn switches off one XLA:CPU fusion before JAX starts its backend: in jaxlib 0.10.2
the YNNPACK fusion of reductions miscompiles a reduction and a dot fused together (under
``jit``, ``jnp.sum(k, -1, keepdims=True) + k @ jnp.zeros((64, 64))`` returns garbage for
k [64, 64]; the matrix-state primitive's chunked form produced it and then crashed).
tests/test_xla_flags.py checks both that the flag is set and that the case computes right. A
``--xla_cpu_experimental_ynn_fusion_type`` the user sets in ``XLA_FLAGS`` is left alone.
"""

import os

_YNN_FLAG = "--xla_cpu_experimental_ynn_fusion_type"
if _YNN_FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_YNN_FLAG}=-reduce".strip()
