"""Task loaders on tiny files written here in each real format (IDX, npz, CIFAR pickles, LRA and
NYU ListOps TSVs, an aclImdb folder, AAN TSVs, a Pathfinder folder), and bad input: wrong
layouts, labels out of range, empty splits and sequences, too-long sequences."""

from __future__ import annotations

import gzip
import pickle
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from glrnn.config import ConfigError
from glrnn.data.tasks import TaskConfig, load_task
from glrnn.data.tasks.listops import TOKENS
from glrnn.task_config import ImageConfig, ListOpsConfig, PathfinderConfig

# ---------------------------------------------------------------- images


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def mnist_arrays(rng, n):
    return rng.integers(0, 256, (n, 28, 28)).astype(np.uint8), rng.integers(0, 10, n)


def write_mnist(folder: Path, rng, prefixes=("train", "t10k"), gz=True, labels=None):
    folder.mkdir(exist_ok=True)
    out = {}
    for prefix, n in zip(prefixes, (20, 8), strict=False):
        x, y = mnist_arrays(rng, n)
        if labels is not None:
            y[0] = labels
        ext = ".gz" if gz else ""
        write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", x)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", y)
        out[prefix] = (x, y)
    return out


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_folder(tmp_path, gz):
    raw = write_mnist(tmp_path / "mnist", np.random.default_rng(0), gz=gz)
    data = load_task(TaskConfig(name="mnist", source=str(tmp_path / "mnist"), val_fraction=0.25))
    x, y = raw["t10k"]
    test = data.splits["test"]  # the test split keeps the file's order
    assert test.inputs.shape == (8, 784, 1) and data.info.seq_len == 784
    np.testing.assert_allclose(test.inputs[:, :, 0], x.reshape(8, -1) / 255.0, rtol=1e-6)
    assert np.array_equal(test.labels, y)
    train, val = data.splits["train"], data.splits["val"]
    assert (len(train), len(val)) == (15, 5)
    # train + val are the file's 20 images, each once
    xt = raw["train"][0]
    flat = {tuple(r) for r in np.round(np.concatenate([train.inputs, val.inputs])[..., 0] * 255)}
    assert flat == {tuple(r) for r in xt.reshape(20, -1).astype(float)}


def test_psmnist_is_one_fixed_permutation_from_the_seed(tmp_path):
    write_mnist(tmp_path / "m", np.random.default_rng(1))
    plain = load_task(TaskConfig(name="mnist", source=str(tmp_path / "m")))
    perm = load_task(TaskConfig(name="mnist", source=str(tmp_path / "m"),
                                image=ImageConfig(permute=True)))
    other = load_task(TaskConfig(name="mnist", source=str(tmp_path / "m"), seed=1,
                                 image=ImageConfig(permute=True)))
    a, b = plain.splits["test"].inputs[..., 0], perm.splits["test"].inputs[..., 0]
    column = {tuple(a[:, i]): i for i in range(784)}  # random pixels: every column distinct
    order = [column[tuple(b[:, j])] for j in range(784)]
    assert sorted(order) == list(range(784)) and order != list(range(784))
    # the same permutation in every split
    assert np.array_equal(perm.splits["train"].inputs[..., 0],
                          plain.splits["train"].inputs[..., 0][:, order])
    assert not np.array_equal(b, other.splits["test"].inputs[..., 0])


def test_mnist_with_only_a_test_file_is_split_with_a_warning(tmp_path):
    write_mnist(tmp_path / "m", np.random.default_rng(2), prefixes=("t10k",))
    with pytest.warns(UserWarning, match=r"has only test data: 25% of it held out as the test"):
        data = load_task(TaskConfig(name="mnist", source=str(tmp_path / "m"), val_fraction=0.25))
    assert sum(len(s) for s in data.splits.values()) == 20


def test_npz_images_with_a_validation_split(tmp_path):
    rng = np.random.default_rng(3)
    x, y = mnist_arrays(rng, 30)
    np.savez(tmp_path / "mnist.npz", x_train=x[:20], y_train=y[:20], x_val=x[20:25],
             y_val=y[20:25], x_test=x[25:], y_test=y[25:])
    data = load_task(TaskConfig(name="mnist", source=str(tmp_path / "mnist.npz")))
    assert [len(data.splits[s]) for s in ("train", "val", "test")] == [20, 5, 5]
    np.testing.assert_allclose(data.splits["val"].inputs[..., 0], x[20:25].reshape(5, -1) / 255,
                               rtol=1e-6)
    np.savez(tmp_path / "bad.npz", x_train=x, y_train=y)
    with pytest.raises(ConfigError, match="no x_test, y_test: expected arrays x_train"):
        load_task(TaskConfig(name="mnist", source=str(tmp_path / "bad.npz")))
    np.savez(tmp_path / "empty.npz", x_train=x, y_train=y, x_test=x[:0], y_test=y[:0])
    with pytest.raises(ConfigError, match="split 'test': the split is empty"):
        load_task(TaskConfig(name="mnist", source=str(tmp_path / "empty.npz")))


def write_cifar(folder: Path, rng, batches=2, n=6):
    folder.mkdir()
    images = {}
    for name in [f"data_batch_{k}" for k in range(1, batches + 1)] + ["test_batch"]:
        rgb = rng.integers(0, 256, (n, 32, 32, 3)).astype(np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        data = rgb.transpose(0, 3, 1, 2).reshape(n, 3072)  # the release: all red, green, blue
        with (folder / name).open("wb") as f:
            pickle.dump({b"data": data, b"labels": labels}, f)
        images[name] = (rgb, np.array(labels))
    return images


def test_cifar_pickles_grey_and_colour(tmp_path):
    raw = write_cifar(tmp_path / "cifar-10-batches-py", np.random.default_rng(4))
    src = str(tmp_path / "cifar-10-batches-py")
    grey = load_task(TaskConfig(name="cifar", source=src))
    colour = load_task(TaskConfig(name="cifar", source=src, image=ImageConfig(colour=True)))
    rgb, labels = raw["test_batch"]
    assert grey.info.input_dim == 1 and colour.info.input_dim == 3 and grey.info.seq_len == 1024
    step = 5 * 32 + 7  # the pixel at row 5, column 7
    r, g, b = rgb[:, 5, 7].astype(float).T
    np.testing.assert_allclose(grey.splits["test"].inputs[:, step, 0],
                               (0.299 * r + 0.587 * g + 0.114 * b - 122.6) / 61.0, rtol=1e-5)
    np.testing.assert_allclose(colour.splits["test"].inputs[:, step],
                               (rgb[:, 5, 7] / 255 - [0.4914, 0.4822, 0.4465])
                               / [0.247, 0.243, 0.261], rtol=1e-5)
    assert np.array_equal(grey.splits["test"].labels, labels)
    assert len(grey.splits["train"]) + len(grey.splits["val"]) == 12  # both batches
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(ConfigError, match=r"expected the CIFAR-10 python batches data_batch_1 \.\. "
                                          r"data_batch_5 and test_batch; found data_batch_1"):
        load_task(TaskConfig(name="cifar", source=src))


def test_image_labels_and_shapes_are_checked(tmp_path):
    write_mnist(tmp_path / "m", np.random.default_rng(5), labels=10)
    with pytest.raises(ConfigError, match=r"split 'train': example 0 has label 10: expected "
                                          r"0 <= label < 10"):
        load_task(TaskConfig(name="mnist", source=str(tmp_path / "m")))
    x = np.zeros((4, 32, 32), np.uint8)
    np.savez(tmp_path / "wrong.npz", x_train=x, y_train=np.zeros(4), x_test=x,
             y_test=np.zeros(4))
    with pytest.raises(ConfigError, match=r"4 images of shape \[32, 32\].*expected images of "
                                          r"shape \[28, 28\]"):
        load_task(TaskConfig(name="mnist", source=str(tmp_path / "wrong.npz")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="expected MNIST IDX files train-images-idx3-ubyte"):
        load_task(TaskConfig(name="mnist", source=str(tmp_path / "empty")))
    with pytest.raises(ConfigError, match=r"task.source='.*nowhere': no such file or directory"):
        load_task(TaskConfig(name="mnist", source=str(tmp_path / "nowhere")))
    (tmp_path / "bad-images-idx3-ubyte").write_bytes(b"\x00\x00\x0d\x03")
    (tmp_path / "idx").mkdir()
    (tmp_path / "idx" / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x0d\x03")
    (tmp_path / "idx" / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01")
    with pytest.raises(ConfigError, match="magic 00000d03: expected an IDX file"):
        load_task(TaskConfig(name="mnist", source=str(tmp_path / "idx")))


# ---------------------------------------------------------------- ListOps

EXPRESSIONS = [("( ( ( [MAX 2 ) 9 ) ] )", 9), ("( ( ( [SM 6 ) 5 ) ] )", 1),
               ("( ( ( [MIN ( ( [MED 4 ) 7 ) ] ) ) 8 ) ] )", 5), ("( ( [MIN 3 ) 0 ) ] )", 0)]


def write_listops(folder: Path, order: str, splits=("train", "val", "test"), rows=EXPRESSIONS):
    folder.mkdir(exist_ok=True)
    for split in splits:
        if order == "lra":
            text = "Source\tTarget\n" + "".join(f"{e}\t{y}\n" for e, y in rows)
            name = f"basic_{split}.tsv"
        else:
            text = "".join(f"{y}\t{e}\n" for e, y in rows)
            name = f"{split}_d20s.tsv"
        (folder / name).write_text(text)


def test_listops_lra_and_nyu_files_give_the_same_arrays(tmp_path):
    write_listops(tmp_path / "lra", "lra")
    write_listops(tmp_path / "nyu", "nyu", splits=("train", "test"))
    lra = load_task(TaskConfig(name="listops", source=str(tmp_path / "lra"), seq_len=16))
    nyu = load_task(TaskConfig(name="listops", source=str(tmp_path / "nyu"), seq_len=16,
                               val_fraction=0.25))
    for data in (lra, nyu):
        test = data.splits["test"]
        decoded = [" ".join(TOKENS[i] for i in x[:n]) for x, n in zip(test.inputs, test.lengths,
                                                                      strict=True)]
        assert decoded == [e.replace("( ", "").replace(") ", "").replace(" )", "")
                           for e, _ in EXPRESSIONS]
        assert test.labels.tolist() == [y for _, y in EXPRESSIONS]
        assert (test.inputs[0, 4:] == data.info.pad_id).all() and test.lengths[0] == 4
    assert len(lra.splits["val"]) == 4 and len(nyu.splits["val"]) == 1  # carved from train
    assert np.array_equal(lra.splits["test"].inputs, nyu.splits["test"].inputs)


def test_listops_test_file_replaces_the_generated_test_split(tmp_path):
    write_listops(tmp_path / "nyu", "nyu", splits=("test",))
    data = load_task(TaskConfig(name="listops", n_train=10, n_val=3, seq_len=40,
                                listops=ListOpsConfig(max_depth=4, max_args=3, min_length=3,
                                                      max_length=40,
                                                      test_file=str(tmp_path / "nyu" /
                                                                    "test_d20s.tsv"))))
    assert len(data.splits["train"]) == 10 and len(data.splits["val"]) == 3
    assert data.splits["test"].labels.tolist() == [y for _, y in EXPRESSIONS]


def test_listops_bad_files(tmp_path):
    write_listops(tmp_path / "a", "nyu", rows=[*EXPRESSIONS, ("( ( [MAX 1 ) 2 ) ] )", 12)])
    with pytest.raises(ConfigError, match=r"train_d20s.tsv:5: label 12: expected 0 <= label < 10"):
        load_task(TaskConfig(name="listops", source=str(tmp_path / "a")))
    write_listops(tmp_path / "b", "nyu", rows=[("( ( [FIRST 1 ) 2 ) ] )", 1)])
    with pytest.raises(ConfigError, match=r":1: unknown token '\[FIRST'"):
        load_task(TaskConfig(name="listops", source=str(tmp_path / "b")))
    write_listops(tmp_path / "c", "lra", splits=("val", "test"))
    with pytest.raises(ConfigError, match=r"expected ListOps files \*train\*.tsv and \*test\*.tsv"
                                          r".*; found basic_test.tsv, basic_val.tsv"):
        load_task(TaskConfig(name="listops", source=str(tmp_path / "c")))
    write_listops(tmp_path / "d", "lra", rows=[])
    with pytest.raises(ConfigError, match=r"basic_train\.tsv: no ListOps rows"):
        load_task(TaskConfig(name="listops", source=str(tmp_path / "d")))


def test_too_long_sequences_are_truncated_with_a_warning_or_refused(tmp_path):
    write_listops(tmp_path / "l", "lra")  # lengths 4, 4, 7, 4
    with pytest.warns(UserWarning, match=r"split '\w+': 1 of 4 sequences are longer than "
                                         r"task.seq_len=6 \(the longest has 7\): truncated"):
        data = load_task(TaskConfig(name="listops", source=str(tmp_path / "l"), seq_len=6))
    assert data.splits["test"].lengths.tolist() == [4, 4, 6, 4]
    assert data.splits["test"].inputs.shape == (4, 6)
    assert np.array_equal(data.splits["test"].inputs[2],
                          [TOKENS.index(t) for t in ("[MIN", "[MED", "4", "7", "]", "8")])
    with pytest.raises(ConfigError, match=r"longer than task.seq_len=6 \(the longest has 7\): "
                                          r"expected task.seq_len >= 7 or task.too_long="):
        load_task(TaskConfig(name="listops", source=str(tmp_path / "l"), seq_len=6,
                             too_long="refuse"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # long enough: no warning
        load_task(TaskConfig(name="listops", source=str(tmp_path / "l"), seq_len=7,
                             too_long="refuse"))


# ---------------------------------------------------------------- IMDb

REVIEWS = {"pos": ["Loved it.<br /><br />Great", "Ünïcode fine"], "neg": ["Dull", "Bad bad"]}


def write_imdb(root: Path, reviews=REVIEWS, splits=("train", "test")):
    for split in splits:
        for label, texts in reviews.items():
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i, text in enumerate(texts):
                (folder / f"{i}_{7 if label == 'pos' else 2}.txt").write_text(text)


def test_imdb_folder_is_byte_level(tmp_path):
    write_imdb(tmp_path / "aclImdb")
    data = load_task(TaskConfig(name="imdb", source=str(tmp_path / "aclImdb"), seq_len=32))
    test = data.splits["test"]
    assert data.info.vocab_size == 259 and data.info.pad_id == 258
    texts = [bytes(x[:n].tolist()).decode() for x, n in zip(test.inputs, test.lengths,
                                                             strict=True)]
    assert texts == REVIEWS["neg"] + REVIEWS["pos"] and test.labels.tolist() == [0, 0, 1, 1]
    assert (test.inputs[2, test.lengths[2]:] == 258).all()
    assert len(data.splits["train"]) == 3 and len(data.splits["val"]) == 1
    assert data.info.class_names == ("neg", "pos")


def test_imdb_bad_layout_and_empty_review(tmp_path):
    write_imdb(tmp_path / "a", splits=("train",))
    with pytest.raises(ConfigError, match=r"expected an aclImdb folder: train/pos, train/neg, "
                                          r"test/pos, test/neg.*\(no .txt files in test/neg\)"):
        load_task(TaskConfig(name="imdb", source=str(tmp_path / "a")))
    write_imdb(tmp_path / "b", reviews={"pos": ["ok"], "neg": ["", "bad"]})
    with pytest.raises(ConfigError, match=r"task 'imdb', split 'train': example 0 is empty"):
        load_task(TaskConfig(name="imdb", source=str(tmp_path / "b")))
    write_imdb(tmp_path / "c", reviews={"pos": ["x" * 50], "neg": ["y"]})
    with pytest.warns(UserWarning, match="truncated to 40"):
        data = load_task(TaskConfig(name="imdb", source=str(tmp_path / "c"), seq_len=40,
                                    val_fraction=0.5))
    assert data.splits["test"].lengths.tolist() == [1, 40]


# ---------------------------------------------------------------- AAN


def write_aan(folder: Path, rows, splits=("train", "eval", "test")):
    folder.mkdir()
    for split in splits:
        lines = [f"{y}\tid{i}a\tid{i}b\t{t1}\t{t2}" for i, (y, t1, t2) in enumerate(rows)]
        (folder / f"new_aan_pairs.{split}.tsv").write_text("\n".join(lines) + "\n")


def test_aan_two_towers(tmp_path):
    rows = [("1.0", "first paper", "cites \"this\""), ("0.0", "other", "unrelated text")]
    write_aan(tmp_path / "aan", rows)
    data = load_task(TaskConfig(name="aan", source=str(tmp_path / "aan"), seq_len=20))
    assert data.info.two_tower
    for split in data.splits.values():
        one = [bytes(x[:n].tolist()).decode() for x, n in zip(split.inputs, split.lengths,
                                                                strict=True)]
        two = [bytes(x[:n].tolist()).decode() for x, n in zip(split.inputs2, split.lengths2,
                                                                strict=True)]
        assert one == [r[1] for r in rows] and two == [r[2] for r in rows]  # quotes kept
        assert split.labels.tolist() == [1, 0]
    write_aan(tmp_path / "bad", [("2.0", "a", "b")])
    with pytest.raises(ConfigError, match=r"new_aan_pairs\.train\.tsv:1: label 2: expected 0 or 1"):
        load_task(TaskConfig(name="aan", source=str(tmp_path / "bad")))
    (tmp_path / "short").mkdir()
    (tmp_path / "short" / "x.train.tsv").write_text("1\ta\tb\n")
    (tmp_path / "short" / "x.test.tsv").write_text("1\ta\tb\n")
    with pytest.raises(ConfigError, match=r"x\.train\.tsv:1: 3 tab-separated fields: expected 5"):
        load_task(TaskConfig(name="aan", source=str(tmp_path / "short")))


# ---------------------------------------------------------------- Pathfinder


def write_pathfinder(root: Path, rng, n=20, resolution=32, bad_label=False, empty=1):
    folder = root / "curv_contour_length_14"
    (folder / "imgs" / "0").mkdir(parents=True)
    (folder / "metadata").mkdir()
    lines, pixels = [], {}
    for i in range(n):
        img = rng.integers(0, 256, (resolution, resolution)).astype(np.uint8)
        path = folder / "imgs" / "0" / f"sample_{i}.png"
        if i < empty:
            path.write_bytes(b"")  # LRA's release has an empty image
        else:
            Image.fromarray(img, mode="L").save(path)
            pixels[f"sample_{i}.png"] = img
        label = 3 if bad_label and i == 5 else i % 2
        lines.append(f"imgs/0 sample_{i}.png {i} {label} 14 1.0")
    (folder / "metadata" / "0.npy").write_text("\n".join(lines) + "\n")
    return pixels


def test_pathfinder_folder_with_metadata(tmp_path):
    pixels = write_pathfinder(tmp_path / "pathfinder32", np.random.default_rng(6))
    with pytest.warns(UserWarning, match="skipped 1 empty image file"):
        data = load_task(TaskConfig(name="pathfinder", source=str(tmp_path / "pathfinder32")))
    assert data.info.seq_len == 1024 and data.info.input_dim == 1
    assert sum(len(s) for s in data.splits.values()) == 19  # 10 % each: 2 + 2, less the empty
    assert len(data.splits["val"]) + len(data.splits["test"]) in (3, 4)
    images = {tuple(v.ravel()): int(k.split("_")[1].split(".")[0]) for k, v in pixels.items()}
    for split in data.splits.values():
        for x, y in zip(split.inputs, split.labels, strict=True):
            raw = np.round((x[:, 0] + 1) / 2 * 255).astype(np.uint8)
            assert y == images[tuple(raw)] % 2  # the metadata's label for this very image
            assert x.min() >= -1 and x.max() <= 1
    with pytest.warns(UserWarning, match="skipped 1 empty image file"):
        capped = load_task(TaskConfig(name="pathfinder", source=str(tmp_path / "pathfinder32"),
                                      n_train=5, n_test=1))
    assert np.array_equal(capped.splits["val"].inputs, data.splits["val"].inputs)  # n_val 0: all
    assert len(capped.splits["train"]) == 5 and len(capped.splits["test"]) == 1


def test_pathfinder_bad_input(tmp_path):
    write_pathfinder(tmp_path / "p", np.random.default_rng(7), bad_label=True, empty=0)
    with pytest.raises(ConfigError, match=r"0.npy:6: .*the label 0 or 1"):
        load_task(TaskConfig(name="pathfinder", source=str(tmp_path / "p")))
    write_pathfinder(tmp_path / "q", np.random.default_rng(8), resolution=16, empty=0)
    with pytest.raises(ConfigError, match=r"16x16 pixels: expected 32x32"):
        load_task(TaskConfig(name="pathfinder", source=str(tmp_path / "q")))
    write_pathfinder(tmp_path / "r", np.random.default_rng(9), empty=0)
    with pytest.raises(ConfigError, match=r"expected a Pathfinder folder .* with "
                                          r"curv_baseline/metadata/\*.npy"):
        load_task(TaskConfig(name="pathfinder", source=str(tmp_path / "r"),
                             pathfinder=PathfinderConfig(difficulty="easy")))


# ---------------------------------------------------------------- the hub (no network: a stand-in)


def test_hub_sources_through_datasets(monkeypatch):
    import datasets

    rng = np.random.default_rng(10)
    pictures = {s: rng.integers(0, 256, (3, 32, 32, 3)).astype(np.uint8) for s in ("train", "test")}

    def load_dataset(name, split):
        if name == "imdb":
            return datasets.Dataset.from_dict({"text": [f"{split} review", "é"],
                                               "label": [1, 0]})
        if name == "cifar10":
            features = datasets.Features({"img": datasets.Image(),
                                          "label": datasets.Value("int64")})
            return datasets.Dataset.from_dict(
                {"img": [Image.fromarray(p) for p in pictures[split]], "label": [0, 1, 2]},
                features=features)
        raise FileNotFoundError(f"Dataset '{name}' doesn't exist on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    text = load_task(TaskConfig(name="imdb", source="hf:imdb", seq_len=16, val_fraction=0.5))
    test = text.splits["test"]
    assert bytes(test.inputs[0, :test.lengths[0]].tolist()) == b"test review"
    assert bytes(test.inputs[1, :test.lengths[1]].tolist()) == "é".encode()
    cifar = load_task(TaskConfig(name="cifar", source="hf:cifar10",
                                 image=ImageConfig(colour=True)))
    np.testing.assert_allclose(cifar.splits["test"].inputs[:, 0],
                               (pictures["test"][:, 0, 0] / 255 - [0.4914, 0.4822, 0.4465])
                               / [0.247, 0.243, 0.261], rtol=1e-5)
    with pytest.raises(ConfigError, match=r"task.source='hf:mnist' \(split train\) could not be "
                                          r"loaded: Dataset 'mnist' doesn't exist"):
        load_task(TaskConfig(name="mnist", source="hf:mnist"))
