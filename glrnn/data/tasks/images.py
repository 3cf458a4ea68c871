"""Sequential images, one pixel per step: sCIFAR (LRA Image, grey; the LRU paper's colour) and
sMNIST / psMNIST. Inputs float32 ``[N, H*W, C]`` in row-major pixel order, 10 classes.

Sources and formats:

* CIFAR-10 (Krizhevsky 2009), the python release ``cifar-10-batches-py``: pickles
  ``data_batch_1`` .. ``data_batch_5`` and ``test_batch``, each a dict with ``b"data"`` uint8
  ``[n, 3072]`` (1024 red, 1024 green, 1024 blue values, rows of 32) and ``b"labels"``. They
  are pickles: only point ``task.source`` at files you trust.
* MNIST (LeCun et al. 1998), IDX files ``{train,t10k}-images-idx3-ubyte`` and
  ``{train,t10k}-labels-idx1-ubyte``, optionally ``.gz``: big-endian header (two zero bytes,
  type 0x08 = unsigned byte, the number of dimensions, then each dimension as uint32), then the
  values. A folder with only one of train/t10k is split into train and test
  (``task.val_fraction``) with a warning.
* ``.npz`` (Keras' ``mnist.npz`` layout): ``x_train``, ``y_train``, ``x_test``, ``y_test``,
  optionally ``x_val``, ``y_val``; images ``[n, H, W]`` or ``[n, H, W, 3]`` uint8.
* The hub: ``hf:cifar10`` (column img), ``hf:mnist`` (column image), splits train and test.

Pixels, as the LRU code (``online_lru/dataloaders/basic.py`` of
github.com/NicolasZucchet/Online-learning-LR-dependencies, after S4/S5) prepares them:

* grey CIFAR (LRA, Tay et al. 2021, ``lra_benchmarks/image/input_pipeline.py``): luma
  0.299 R + 0.587 G + 0.114 B, then (v - 122.6) / 61.0 (S4's normalisation; the LRU code rounds
  to integer grey first through PIL, we keep the fraction);
* colour CIFAR (the LRU paper, ``task.image.colour``): v / 255 per channel, minus the mean
  (0.4914, 0.4822, 0.4465), over the std (0.247, 0.243, 0.261);
* MNIST: v / 255, unnormalised.

psMNIST (``task.image.permute``): one fixed permutation of the 784 steps drawn from ``task.seed``
(the LRU code uses a bit reversal), the same for every split. Validation: a ``task.val_fraction``
of train (LRA and the LRU code hold out 10 %).
"""

from __future__ import annotations

import gzip
import math
import pickle
import struct
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from glrnn.config import ConfigError
from glrnn.data.tasks.arrays import (
    CARVE,
    PERMUTE,
    assemble,
    class_labels,
    full_lengths,
    holdout,
    stream,
)
from glrnn.data.tasks.base import Split, TaskData, TaskInfo
from glrnn.data.tasks.sources import existing, hub_column, hub_split, is_hub, layout_error
from glrnn.task_config import TaskConfig

Raw = dict[str, tuple[np.ndarray, np.ndarray]]  # split -> (uint8 images, integer labels)

CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                 "ship", "truck")
DIGITS = tuple(str(d) for d in range(10))
GREY_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)
GREY_MEAN, GREY_STD = 122.6, 61.0
COLOUR_MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32)
COLOUR_STD = np.array([0.247, 0.243, 0.261], np.float32)
IDX_PREFIX = {"train": "train", "test": "t10k"}
MNIST_LAYOUT = ("MNIST IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each optionally .gz)")
CIFAR_LAYOUT = "the CIFAR-10 python batches data_batch_1 .. data_batch_5 and test_batch"
NPZ_KEYS = {"train": ("x_train", "y_train"), "val": ("x_val", "y_val"),
            "test": ("x_test", "y_test")}


def read_idx(path: Path) -> np.ndarray:
    """The uint8 array of an IDX file (gzip-compressed when its name ends in .gz)."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    if len(data) < 4 or data[0] or data[1] or data[2] != 0x08:
        raise ConfigError(f"{path}: magic {data[:4].hex()}: expected an IDX file of unsigned "
                          "bytes (00 00 08 then the number of dimensions)")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != math.prod(dims):
        raise ConfigError(f"{path}: {body.size} values: expected {math.prod(dims)} "
                          f"(dimensions {list(dims)})")
    return body.reshape(dims)


def _idx_file(folder: Path, prefix: str, kind: str) -> Path | None:
    for name in (f"{prefix}-{kind}-ubyte", f"{prefix}-{kind}-ubyte.gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def read_mnist_folder(folder: Path) -> Raw:
    """Train and/or test (t10k) images and labels of an MNIST IDX folder."""
    raw = {}
    for split, prefix in IDX_PREFIX.items():
        images = _idx_file(folder, prefix, "images-idx3")
        labels = _idx_file(folder, prefix, "labels-idx1")
        if images and labels:
            raw[split] = (read_idx(images), read_idx(labels))
    if not raw:
        raise layout_error(folder, MNIST_LAYOUT)
    return raw


def _unpickle(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with path.open("rb") as f:
        batch = pickle.load(f, encoding="bytes")
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ConfigError(f"{path}: expected a CIFAR-10 batch (a pickled dict with b'data' "
                          "and b'labels')")
    data = np.asarray(batch[b"data"], np.uint8)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ConfigError(f"{path}: data of shape {list(data.shape)}: expected [n, 3072]")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, np.asarray(batch[b"labels"])


def read_cifar_folder(folder: Path) -> Raw:
    """Train (every data_batch_k, in order of k) and test of a cifar-10-batches-py folder."""
    train = sorted(folder.glob("data_batch_*"), key=lambda p: p.name.split("_")[-1].zfill(4))
    test = folder / "test_batch"
    if not train or not test.is_file():
        raise layout_error(folder, CIFAR_LAYOUT)
    parts = [_unpickle(p) for p in train]
    return {"train": (np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])),
            "test": _unpickle(test)}


def read_npz(path: Path) -> Raw:
    """The splits of an .npz file with x_train, y_train, x_test, y_test (x_val, y_val)."""
    with np.load(path) as z:
        missing = [k for s in ("train", "test") for k in NPZ_KEYS[s] if k not in z.files]
        if missing:
            raise ConfigError(f"task.source={str(path)!r}: no {', '.join(missing)}: expected "
                              f"arrays x_train, y_train, x_test, y_test (found "
                              f"{', '.join(z.files) or 'none'})")
        return {s: (z[x], z[y]) for s, (x, y) in NPZ_KEYS.items() if x in z.files}


def read_hub(source: str) -> Raw:
    raw = {}
    for split in ("train", "test"):
        table = hub_split(source, split)
        image = hub_column(table, source, ("img", "image"))
        label = hub_column(table, source, ("label",))
        raw[split] = (np.stack([np.asarray(im) for im in table[image]]),
                      np.asarray(table[label]))
    return raw


def read_source(source: str, read_folder: Callable[[Path], Raw]) -> Raw:
    """Images from ``hf:NAME``, an .npz file or a folder (read by ``read_folder``)."""
    if is_hub(source):
        return read_hub(source)
    path = existing(source, "task.source")
    if path.suffix == ".npz":
        return read_npz(path)
    if not path.is_dir():
        raise ConfigError(f"task.source={source!r}: expected a folder, an .npz file or hf:NAME")
    return read_folder(path)


def to_sequences(images: np.ndarray, pixels: str) -> np.ndarray:
    """uint8 [n, H, W] or [n, H, W, 3] -> float32 [n, H*W, C], rows first; ``pixels`` is
    "grey" (LRA's sCIFAR), "colour" (the LRU paper's) or "unit" (v / 255, MNIST)."""
    n, h, w = images.shape[:3]
    x = images.reshape(n, h * w, 1 if images.ndim == 3 else images.shape[3]).astype(np.float32)
    if pixels == "grey":
        return ((x @ GREY_WEIGHTS[:, None]) - GREY_MEAN) / GREY_STD
    if pixels == "colour":
        return (x / 255.0 - COLOUR_MEAN) / COLOUR_STD
    return x / 255.0


def image_task(info: TaskInfo, raw: Raw, shape: tuple[int, ...], pixels: str,
               cfg: TaskConfig) -> TaskData:
    """``raw`` uint8 images of ``shape`` (one image) as the task's splits."""
    if "test" not in raw or "train" not in raw:
        have = next(iter(raw))
        warnings.warn(f"task {info.name!r}: {cfg.source} has only {have} data: "
                      f"{cfg.val_fraction:.0%} of it held out as the test split, the rest is "
                      "train", stacklevel=2)
        x, y = raw[have]
        rest, held = holdout(len(x), cfg.val_fraction, stream(cfg.seed, CARVE, 1),
                             f"task {info.name!r}")
        raw = {"train": (x[rest], y[rest]), "test": (x[held], y[held])}
    order = stream(cfg.seed, PERMUTE).permutation(info.seq_len) if cfg.image.permute else None
    splits = {}
    for name, (images, labels) in raw.items():
        if images.shape[1:] != shape or len(images) != len(labels):
            raise ConfigError(f"task.source={cfg.source!r}, split {name!r}: "
                              f"{len(images)} images of shape {list(images.shape[1:])} and "
                              f"{len(labels)} labels: expected images of shape {list(shape)}, "
                              "one label each")
        x = to_sequences(np.asarray(images, np.uint8), pixels)
        if order is not None:
            x = x[:, order]
        y = class_labels(labels, info.n_classes, f"task {info.name!r}, split {name!r}")
        splits[name] = Split(x, full_lengths(len(x), info.seq_len), y)
    return assemble(info, splits, cfg)


def load_cifar(cfg: TaskConfig) -> TaskData:
    colour = cfg.image.colour
    info = TaskInfo("cifar", n_classes=10, seq_len=cfg.length(), input_dim=3 if colour else 1,
                    class_names=CIFAR_CLASSES)
    raw = read_source(cfg.source, read_cifar_folder)
    return image_task(info, raw, (32, 32, 3), "colour" if colour else "grey", cfg)


def load_mnist(cfg: TaskConfig) -> TaskData:
    info = TaskInfo("mnist", n_classes=10, seq_len=cfg.length(), input_dim=1,
                    class_names=DIGITS)
    raw = read_source(cfg.source, read_mnist_folder)
    return image_task(info, raw, (28, 28), "unit", cfg)
