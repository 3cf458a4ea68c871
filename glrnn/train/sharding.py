"""One device mesh for training: batches split over every device, parameters replicated or split.

The mesh has two axes, ``("data", "fsdp")``, over all devices (of all hosts):

* the batch axis of every batch is split over both axes (each device gets B / n_devices rows);
* with ``fsdp = 1`` parameters and optimizer state are replicated (plain data parallelism);
* with ``fsdp = k > 1`` each array's largest dimension divisible by k is split over the ``fsdp``
  axis (ZeRO-3 / FSDP style: XLA gathers a parameter where a matmul needs it and reduce-scatters
  its gradient), so parameter and optimizer memory per device fall by k. Arrays with no such
  dimension (scalars, small vectors) stay replicated.

``jax.jit`` follows the shardings of its inputs, so the training step itself is unchanged: the
loop places the state and each batch, and XLA inserts the collectives. Several hosts: see
docs/sharding.md and :func:`initialize_distributed`.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from glrnn.config import ConfigError, check

AXES = ("data", "fsdp")
# set by the launcher on every host of a multi-host job (see docs/sharding.md)
COORDINATOR_ENV = "JAX_COORDINATOR_ADDRESS"


def initialize_distributed() -> bool:
    """``jax.distributed.initialize()`` when the environment describes a multi-host job
    (``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``, or a cluster JAX
    detects itself such as SLURM or a Cloud TPU pod, by ``GLRNN_DISTRIBUTED=1``); a no-op on one
    host. Call it before anything touches a device. Returns whether it initialised."""
    if COORDINATOR_ENV in os.environ:
        jax.distributed.initialize(
            coordinator_address=os.environ[COORDINATOR_ENV],
            num_processes=int(os.environ["JAX_NUM_PROCESSES"]),
            process_id=int(os.environ["JAX_PROCESS_ID"]))
        return True
    if os.environ.get("GLRNN_DISTRIBUTED") == "1":
        jax.distributed.initialize()  # cluster auto-detection
        return True
    return False


def make_mesh(fsdp: int = 1, devices: list[jax.Device] | None = None) -> Mesh:
    """A ``(data, fsdp)`` mesh over ``devices`` (default: all), ``fsdp`` devices per group."""
    devices = jax.devices() if devices is None else devices
    check(len(devices) % fsdp == 0, "train.fsdp", fsdp,
          f"a divisor of the device count ({len(devices)})")
    return Mesh(np.asarray(devices).reshape(len(devices) // fsdp, fsdp), AXES)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Batch axis (the first) split over every device of the mesh."""
    return NamedSharding(mesh, PartitionSpec(AXES))


def check_batch(batch_size: int, mesh: Mesh) -> None:
    """ConfigError unless the batch splits evenly over the mesh."""
    if batch_size % mesh.size:
        raise ConfigError(f"data.batch_size={batch_size}: expected a multiple of the device "
                          f"count ({mesh.size})")


def param_spec(shape: tuple[int, ...], fsdp: int) -> PartitionSpec:
    """Split the largest dimension divisible by ``fsdp`` over the ``fsdp`` axis (the first such
    dimension on ties); replicate when ``fsdp`` is 1 or no dimension divides."""
    candidates = [d for d, n in enumerate(shape) if fsdp > 1 and n % fsdp == 0]
    if not candidates:
        return PartitionSpec()
    dim = max(candidates, key=lambda d: (shape[d], -d))
    return PartitionSpec(*(("fsdp" if d == dim else None) for d in range(len(shape))))


def state_shardings(tree: Any, mesh: Mesh) -> Any:
    """Same structure as ``tree`` (arrays or ``jax.ShapeDtypeStruct``): a NamedSharding each."""
    fsdp = mesh.shape["fsdp"]
    return jax.tree.map(lambda x: NamedSharding(mesh, param_spec(np.shape(x), fsdp)), tree)


def place(tree: Any, shardings: Any) -> Any:
    """``tree`` on the devices its shardings name."""
    return jax.device_put(tree, shardings)


def shard_batch(batch: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """The global batch [B, ...] (the same on every host: batches are a function of the step)
    as one array split by ``sharding``; each host hands over only its own rows."""
    if jax.process_count() == 1:
        return jax.device_put(batch, sharding)
    rows = batch.shape[0] // jax.process_count()
    local = batch[jax.process_index() * rows:(jax.process_index() + 1) * rows]
    return jax.make_array_from_process_local_data(sharding, local, batch.shape)
