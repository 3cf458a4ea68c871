"""Training: optimizer (optim.py), checkpoints (checkpoint.py), run directories (run.py, their
lock: lock.py), metrics (metrics.py), recipes (recipes.py) and the loop (loop.py)."""

from glrnn.train.loop import TrainingDiverged, TrainingInterrupted, TrainResult, train

__all__ = ["TrainResult", "TrainingDiverged", "TrainingInterrupted", "train"]
