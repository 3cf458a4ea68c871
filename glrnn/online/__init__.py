"""Learning rules beside backpropagation through time: real-time recurrent learning for diagonal
recurrences, SnAp-1 for dense ones, and the truncated / spatial baselines (see rules.py)."""

from glrnn.online.grad import StepLoss, gradient_function
from glrnn.online.rules import RULES, check_rule, valid_rules

__all__ = ["RULES", "StepLoss", "check_rule", "gradient_function", "valid_rules"]
