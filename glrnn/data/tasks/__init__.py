"""Classification tasks: a registry of loaders, each returning a validated :class:`TaskData`.

Every task is a function ``TaskConfig -> TaskData`` (see base.py for the arrays): generated
tasks (copy, selective_copy, mqar, listops without a source) draw from seeded streams, loaders
read a local file or folder (or the hub for imdb, cifar, mnist). ``load_task`` checks the result
with ``base.validate`` before it reaches the model, so a bad file stops the run at start-up.
"""

from __future__ import annotations

from collections.abc import Callable

from glrnn.config import ConfigError
from glrnn.data.tasks.base import Split, TaskData, TaskInfo, validate
from glrnn.task_config import TaskConfig


def _registry() -> dict[str, Callable[[TaskConfig], TaskData]]:
    from glrnn.data.tasks.aan import load_aan
    from glrnn.data.tasks.copy import load_copy
    from glrnn.data.tasks.images import load_cifar, load_mnist
    from glrnn.data.tasks.imdb import load_imdb
    from glrnn.data.tasks.listops import load_listops
    from glrnn.data.tasks.mqar import load_mqar
    from glrnn.data.tasks.pathfinder import load_pathfinder
    from glrnn.data.tasks.selective_copy import load_selective_copy

    return {"copy": load_copy, "selective_copy": load_selective_copy, "mqar": load_mqar,
            "listops": load_listops, "imdb": load_imdb, "aan": load_aan, "cifar": load_cifar,
            "mnist": load_mnist, "pathfinder": load_pathfinder}


TASKS = _registry()


def load_task(cfg: TaskConfig) -> TaskData:
    """The task ``cfg.name`` as validated arrays; ``ConfigError`` for an unknown name (listing
    the known ones) or for anything wrong with the data."""
    if cfg.name not in TASKS:
        raise ConfigError(f"task.name={cfg.name!r}: expected one of {', '.join(sorted(TASKS))}")
    data = TASKS[cfg.name](cfg)
    validate(data)
    return data


__all__ = ["TASKS", "Split", "TaskConfig", "TaskData", "TaskInfo", "load_task", "validate"]
