"""Classification tasks (see base.py for the arrays every task returns)."""
