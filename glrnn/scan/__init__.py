"""The recurrence engine: the two primitives every mixer's parallel mode runs on.

* :func:`linear_scan` (``linear.py``): vector states, h_t = a_t ⊙ h_{t-1} + b_t.
* :func:`gated_linear_attention` (``matrix.py``): a matrix state per head written by outer
  products of keys and values, H_t = diag(a_t) H_{t-1} + k_t v_tᵀ, read by queries.

Both take the same ``method`` names and the same ``reset`` convention (the state is cleared
before a step where a packed document starts: :func:`segment_resets`).
"""

from glrnn.scan.linear import (
    METHODS,
    channel_resets,
    linear_scan,
    resolve_method,
    segment_resets,
    segment_starts,
)
from glrnn.scan.matrix import gated_linear_attention, gla_step, transition

__all__ = ["METHODS", "channel_resets", "gated_linear_attention", "gla_step", "linear_scan",
           "resolve_method", "segment_resets", "segment_starts", "transition"]
