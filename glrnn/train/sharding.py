"""One device mesh for training: batches split over every device, parameters replicated or split.

The mesh has two axes, ``("data", "fsdp")``, over all devices (of all hosts):

* the batch axis of every batch is split over both axes (each device gets B / n_devices rows);
* with ``fsdp = 1`` parameters and optimizer state are replicated (plain data parallelism);
* with ``fsdp = k > 1`` each array's largest dimension divisible by k is split over the ``fsdp``
  axis (ZeRO-3 / FSDP style: XLA gathers a parameter where a matmul needs it and reduce-scatters
  its gradient), so parameter and optimizer memory per device fall by k. Arrays with no such
  dimension (scalars, small vectors) stay replicated.

``jax.jit`` follows the shardings of its inputs, so the training step itself is unchanged: the
loop places the state and each batch, and XLA inserts the collectives. Several processes (one
per host, or several on one machine): the mesh spans the devices of all of them, and each
process hands over only its own rows of every batch (:func:`local_rows`, :func:`shard_batch`);
see docs/sharding.md and glrnn/runs/distributed.py.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from glrnn.config import ConfigError, check

AXES = ("data", "fsdp")


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
    """ConfigError unless the batch splits evenly over the mesh (of all processes)."""
    if batch_size % mesh.size:
        processes = jax.process_count()
        split = f" = {processes} processes x {mesh.size // processes}" if processes > 1 else ""
        raise ConfigError(f"data.batch_size={batch_size}: expected a multiple of the device "
                          f"count ({mesh.size}{split})")


def local_rows(sharding: NamedSharding, batch_size: int) -> slice:
    """The rows of a global batch of ``batch_size`` that this process's devices hold (all of
    them for a single process): one contiguous block, as the mesh lists the devices process by
    process."""
    spans = [index[0].indices(batch_size)[:2]
             for index in sharding.addressable_devices_indices_map((batch_size,)).values()]
    return slice(min(start for start, _ in spans), max(stop for _, stop in spans))


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
    """``tree`` (the same on every process) on the devices its shardings name; each process
    puts only its own devices' pieces (``jax.device_put`` would first compare every array
    across the processes, one collective each)."""

    def put(x: Any, sharding: NamedSharding) -> jax.Array:
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(put, tree, shardings)


def shard_batch(rows: np.ndarray, sharding: NamedSharding, batch_size: int) -> jax.Array:
    """One array [batch_size, ...] split by ``sharding``, from this process's ``rows`` of it
    (:func:`local_rows`; the whole batch for a single process)."""
    return jax.make_array_from_process_local_data(sharding, rows, (batch_size, *rows.shape[1:]))
