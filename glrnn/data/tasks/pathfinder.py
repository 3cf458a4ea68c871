"""LRA Pathfinder and Path-X: are the two dots joined by a dashed path? 2 classes, real-valued
pixels flattened row by row into float32 ``[N, R*R, 1]``.

Sources: Linsley et al., "Learning long-range spatial dependencies with horizontal gated
recurrent units" (NeurIPS 2018) and Kim et al. (ICLR 2020) for the images; Tay et al., "Long
Range Arena" (ICLR 2021): ``lra_release/lra_release/pathfinder{32,64,128,256}/`` with one
folder per difficulty, ``curv_baseline`` (easy), ``curv_contour_length_9`` (intermediate),
``curv_contour_length_14`` (hard), each holding ``imgs/<k>/sample_<i>.png`` and
``metadata/<k>.npy``. Despite the suffix the metadata files are text, one image per line,
space-separated: the image's folder (``imgs/0``), its file name, an index, the label (0/1), then
more fields (``lra_benchmarks/data/pathfinder.py`` of github.com/google-research/
long-range-arena reads fields 0, 1 and 3; so does the S4 loader, ``PathFinderDataset`` in
``src/dataloaders/lra.py`` of github.com/state-spaces/s4, which sorts the metadata files by their
number and skips the one empty image of pathfinder32). Path-X is resolution 128.

``task.source`` is the ``pathfinder<R>`` folder (the difficulty folder is picked by
``task.pathfinder.difficulty``; LRA and S4 use hard) or a difficulty folder itself. Pixels are
v / 255 * 2 - 1 (S4's ``Normalize(0.5, 0.5)``). Splits, as S4: a seeded random 80 / 10 / 10
(``task.val_fraction`` for each of validation and test). The split and the caps
``task.n_train``/``n_val``/``n_test`` are chosen from the metadata before any image is read,
so a Path-X subset costs only its own images. Empty image files are skipped with a warning.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from glrnn.config import ConfigError
from glrnn.data.tasks.arrays import CARVE, SPLITS, full_lengths, stream
from glrnn.data.tasks.base import Split, TaskData, TaskInfo
from glrnn.data.tasks.sources import existing, layout_error
from glrnn.task_config import TaskConfig

DIFFICULTY_DIR = {"easy": "curv_baseline", "intermediate": "curv_contour_length_9",
                  "hard": "curv_contour_length_14"}
LAYOUT = ("a Pathfinder folder (LRA's pathfinder<R>) with {dir}/metadata/*.npy listing the "
          "images (folder, file name, index, label per line) and {dir}/imgs/")


def difficulty_folder(source: Path, difficulty: str) -> Path:
    """The folder holding ``metadata/``: ``source`` itself or its difficulty subfolder."""
    if (source / "metadata").is_dir():
        return source
    folder = source / DIFFICULTY_DIR[difficulty]
    if not (folder / "metadata").is_dir():
        raise layout_error(source, LAYOUT.format(dir=DIFFICULTY_DIR[difficulty]))
    return folder


def read_metadata(folder: Path) -> tuple[list[Path], list[int]]:
    """(image paths, labels) listed by ``folder/metadata/*.npy``, files in numeric order."""
    meta = sorted(folder.glob("metadata/*.npy"),
                  key=lambda p: (not p.stem.isdigit(), int(p.stem) if p.stem.isdigit() else 0,
                                 p.name))
    paths, labels = [], []
    for m in meta:
        for number, line in enumerate(m.read_text(encoding="utf-8").splitlines(), 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 4 or fields[3] not in ("0", "1"):
                raise ConfigError(f"{m}:{number}: {line!r}: expected 'folder file index label "
                                  "...', space-separated, the label 0 or 1")
            paths.append(folder / fields[0] / fields[1])
            labels.append(int(fields[3]))
    if not paths:
        raise layout_error(folder, LAYOUT.format(dir="metadata") + " (no image is listed)")
    return paths, labels


def split_indices(n: int, cfg: TaskConfig) -> dict[str, np.ndarray]:
    """Seeded train / val / test indices into n examples, capped; train shuffled."""
    order = stream(cfg.seed, CARVE).permutation(n)
    k = max(1, round(n * cfg.val_fraction))
    if n < 3 * k:
        raise ConfigError(f"task 'pathfinder': {n} images: too few for a validation and a test "
                          f"split of {k} each (task.val_fraction={cfg.val_fraction})")
    parts = {"val": np.sort(order[:k]), "test": np.sort(order[k:2 * k]), "train": order[2 * k:]}
    sizes = {"train": cfg.n_train, "val": cfg.n_val, "test": cfg.n_test}
    return {name: parts[name][:sizes[name] or None] for name in SPLITS}


def read_image(path: Path, resolution: int) -> np.ndarray | None:
    """uint8 [R, R] grey pixels of ``path``; None for an empty file."""
    from PIL import Image

    if not path.is_file():
        raise ConfigError(f"{path}: listed in the metadata but missing")
    if path.stat().st_size == 0:
        return None
    with Image.open(path) as im:
        pixels = np.asarray(im.convert("L"))
    if pixels.shape != (resolution, resolution):
        raise ConfigError(f"{path}: {pixels.shape[1]}x{pixels.shape[0]} pixels: expected "
                          f"{resolution}x{resolution} (task.pathfinder.resolution)")
    return pixels


def read_split(paths: list[Path], labels: list[int], index: np.ndarray, resolution: int,
               where: str) -> Split:
    images, kept, empty = [], [], 0
    for i in index:
        pixels = read_image(paths[i], resolution)
        if pixels is None:
            empty += 1
            continue
        images.append(pixels)
        kept.append(labels[i])
    if empty:
        warnings.warn(f"{where}: skipped {empty} empty image file(s)", stacklevel=2)
    x = np.stack(images).reshape(len(images), -1, 1).astype(np.float32) if images else \
        np.zeros((0, resolution * resolution, 1), np.float32)
    return Split(x / 255.0 * 2.0 - 1.0, full_lengths(len(x), resolution ** 2),
                 np.asarray(kept, np.int32))


def load_pathfinder(cfg: TaskConfig) -> TaskData:
    p = cfg.pathfinder
    info = TaskInfo("pathfinder", n_classes=2, seq_len=cfg.length(), input_dim=1)
    folder = difficulty_folder(existing(cfg.source, "task.source"), p.difficulty)
    paths, labels = read_metadata(folder)
    splits = {name: read_split(paths, labels, index, p.resolution,
                               f"task 'pathfinder', split {name!r}")
              for name, index in split_indices(len(paths), cfg).items()}
    return TaskData(info, splits)
