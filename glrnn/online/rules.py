"""The learning rules and which mixers each applies to.

* ``bptt``: backpropagation through time over the whole sequence (parallel mode), any mixer.
* ``online_full``: exact real-time recurrent learning (RTRL) inside each layer, for mixers whose
  channels are independent (a diagonal Jacobian ∂h_t/∂h_{t−1}): the sensitivity of every
  state channel to the parameters that shape it is carried forward in time and met by the
  error that spatial backpropagation through the layers brings at each step (Zucchet et al.
  2023). Exact for a single layer; above it the upper layers' recurrences are ignored.
* ``online_snap1``: SnAp-1 (Menick et al. 2021), the same forward sensitivities restricted to
  the entries one step can fill, propagated by the diagonal of the Jacobian: for dense RNNs and
  GRUs, where ``online_full`` would need the whole influence matrix.
* ``online_1truncated``: the sensitivity of one step only (the state before it held fixed).
* ``online_spatial``: no credit through the recurrence at all (the recurrent term is cut).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from glrnn.config import ConfigError, check, check_choice
from glrnn.online.cells import CELLS

if TYPE_CHECKING:
    from glrnn.config import Config

RULES = ("bptt", "online_full", "online_snap1", "online_1truncated", "online_spatial")


def valid_rules(mixer: str) -> tuple[str, ...]:
    """The rules that apply to ``mixer`` (a name in glrnn.mixers.MIXERS)."""
    if mixer not in CELLS:
        return ("bptt",)
    exact = "online_full" if CELLS[mixer][1].independent else "online_snap1"
    return ("bptt", exact, "online_1truncated", "online_spatial")


def combinations() -> str:
    """The valid (rule, mixers) pairs, as one line."""
    by_rule = {rule: [m for m in sorted(CELLS) if rule in valid_rules(m)] for rule in RULES[1:]}
    return "; ".join(["bptt with every mixer"]
                     + [f"{rule} with {', '.join(mixers)}" for rule, mixers in by_rule.items()])


def check_rule(rule: str, mixer: str, field: str = "train.rule") -> None:
    """``ConfigError`` naming the valid combinations unless ``rule`` applies to ``mixer``."""
    check_choice(field, rule, RULES)
    if rule not in valid_rules(mixer):
        raise ConfigError(f"{field}={rule!r}: does not apply to model.mixer={mixer!r}; valid "
                          f"combinations: {combinations()}")


def check_online_config(cfg: Config) -> None:
    """``ConfigError`` at start-up for a rule that cannot train ``cfg``'s model: the rule
    against the mixer, then what the online rules need of the model (one position at a time).
    What they need of a classifier's task (no mean pooling, one tower) is checked once its
    arrays are known (glrnn.train.classify_task.check_task_fits)."""
    rule, model = cfg.train.rule, cfg.model
    check(rule == "bptt" or model.mixer != "gateloop_qkv", "train.rule", rule,
          "'bptt' with model.mixer='gateloop_qkv' (its state is a matrix per head; the online "
          "rules carry sensitivities of vector states)")
    check_rule(rule, model.mixer)
    if rule == "bptt":
        return
    why = f"with train.rule={rule!r} (the model runs one position at a time"
    cells = f"{why} through the cells of glrnn/online/cells.py)"
    check(model.block == "prenorm", "model.block", model.block, f"'prenorm' {cells}")
    check(not model.conv, "model.conv", model.conv, f"false {cells}")
    check(model.attention_every == 0, "model.attention_every", model.attention_every,
          f"0 {cells}")
    check(model.mixer != "gateloop" or not model.gateloop.recurrent, "model.gateloop.recurrent",
          model.gateloop.recurrent, f"false {why}; the recurrent gate projections couple the "
                                    "channels, so the Jacobian is not diagonal)")
    check(model.norm != "batchnorm", "model.norm", model.norm,
          f"layernorm or rmsnorm {why}; batch statistics need the whole sequence)")
    check(not model.bidirectional, "model.bidirectional", model.bidirectional,
          f"false {why}; a reversed pass needs the whole sequence)")
