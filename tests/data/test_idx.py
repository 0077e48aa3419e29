"""The data code behind b04-06 and b04-10: the IDX reader/writer, Fashion-MNIST and digits preparation."""
import gzip
import struct

import numpy as np
import pytest
import torch

from torchkata.data import digits, fashion_mnist
from torchkata.data.idx import IDXError, read_idx, read_labelled, write_idx
from torchkata.pipeline.checkpoint import CheckpointError

EXERCISES = ("b04-06", "b04-10")  # the exercises that read these datasets


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
def test_round_trip(tmp_path, suffix, dtype):
    sign = 1 if dtype == "uint8" else -1  # negative values where the type has them
    array = (np.arange(30).reshape(2, 3, 5) * sign).astype(dtype)
    path = write_idx(tmp_path / f"a.idx{suffix}", array)
    back = read_idx(path)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_layout_is_big_endian_mnist(tmp_path):
    """The bytes match the published format, so real MNIST files and ours agree."""
    path = write_idx(tmp_path / "labels", np.array([1, 2, 3], dtype=np.uint8))
    assert path.read_bytes() == bytes([0, 0, 0x08, 1]) + struct.pack(">I", 3) + bytes([1, 2, 3])
    path = write_idx(tmp_path / "ints", np.array([258], dtype=np.int32))
    assert path.read_bytes()[-4:] == struct.pack(">i", 258)


def test_gz_detected_by_suffix(tmp_path):
    path = write_idx(tmp_path / "a.gz", np.zeros((4, 2), np.uint8))
    assert gzip.decompress(path.read_bytes())[:4] == bytes([0, 0, 0x08, 2])


def test_bad_magic_names_the_file(tmp_path):
    path = tmp_path / "bad-magic"
    path.write_bytes(b"\x12\x34\x08\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(IDXError, match="bad magic.*") as err:
        read_idx(path)
    assert str(path) in str(err.value)
    path.write_bytes(b"\x00\x00\x42\x01" + struct.pack(">I", 1) + b"\x00")  # unknown type code
    with pytest.raises(IDXError, match="bad magic"):
        read_idx(path)
    path.write_bytes(b"")
    with pytest.raises(IDXError, match="empty"):
        read_idx(path)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_truncated_file(tmp_path, suffix):
    path = write_idx(tmp_path / f"full{suffix}", np.zeros((10, 4, 4), np.uint8))
    raw = read_raw(path)
    cut = tmp_path / f"cut{suffix}"
    write_raw(cut, raw[:-5])
    with pytest.raises(IDXError, match="truncated") as err:
        read_idx(cut)
    assert str(cut) in str(err.value)
    write_raw(cut, raw[:10])  # cut inside the dimension sizes
    with pytest.raises(IDXError, match="truncated"):
        read_idx(cut)


def test_trailing_bytes_and_cut_gzip_stream(tmp_path):
    path = tmp_path / "long"
    path.write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 2) + b"\x01\x02\x03")
    with pytest.raises(IDXError, match="trailing"):
        read_idx(path)
    gz = write_idx(tmp_path / "x.gz", np.zeros(1000, np.uint8))
    gz.write_bytes(gz.read_bytes()[:-10])  # the gzip stream itself is cut off
    with pytest.raises(IDXError, match=str(gz)):
        read_idx(gz)


def test_count_mismatch(tmp_path):
    images = write_idx(tmp_path / "images", np.zeros((5, 2, 2), np.uint8))
    labels = write_idx(tmp_path / "labels", np.zeros(4, np.uint8))
    with pytest.raises(IDXError, match="count mismatch") as err:
        read_labelled(images, labels)
    assert str(images) in str(err.value) and str(labels) in str(err.value)
    with pytest.raises(IDXError, match=r"\[N, H, W\]"):
        read_labelled(labels, labels)


def read_raw(path):
    return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()


def write_raw(path, data):
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


SMALL = {"train": 12, "test": 6}


def fake_fashion_mnist(folder, counts=SMALL, gz=True, label_max=9):
    """The four raw files in the official names, with `counts` random images per split."""
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    for split, (images_stem, labels_stem) in fashion_mnist.RAW.items():
        n = counts[split]
        write_idx(folder / f"{images_stem}{suffix}", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        labels[0] = label_max
        write_idx(folder / f"{labels_stem}{suffix}", labels)
    return folder


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_prepare_and_load(tmp_path, gz):
    raw = fake_fashion_mnist(tmp_path / "raw", gz=gz)
    fashion_mnist.prepare(raw, tmp_path / "out", counts=SMALL)
    for split, n in SMALL.items():
        data = fashion_mnist.load(tmp_path / "out", split)
        assert data["images"].dtype == torch.uint8 and data["images"].shape == (n, 28, 28)
        assert data["labels"].dtype == torch.int64 and data["labels"].shape == (n,)
        stem = fashion_mnist.RAW[split][0] + (".gz" if gz else "")
        np.testing.assert_array_equal(data["images"].numpy(), read_idx(raw / stem))


def test_fashion_mnist_expects_official_sizes_by_default(tmp_path):
    raw = fake_fashion_mnist(tmp_path / "raw")
    with pytest.raises(IDXError, match=r"\[60000, 28, 28\]"):
        fashion_mnist.prepare(raw, tmp_path / "out")
    assert not (tmp_path / "out" / "train.pt").exists()


def test_fashion_mnist_missing_file_says_how_to_get_it(tmp_path):
    raw = fake_fashion_mnist(tmp_path / "raw")
    (raw / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError) as err:
        fashion_mnist.prepare(raw, tmp_path / "out", counts=SMALL)
    message = str(err.value)
    assert str(raw / "t10k-labels-idx1-ubyte") in message
    assert "./run.sh data" in message and "dataset-fashion-mnist" in message and "data.fashion_mnist" in message


def test_fashion_mnist_rejects_bad_labels(tmp_path):
    raw = fake_fashion_mnist(tmp_path / "raw", label_max=10)
    with pytest.raises(IDXError, match="0..9"):
        fashion_mnist.prepare(raw, tmp_path / "out", counts=SMALL)


def test_fashion_mnist_load_errors(tmp_path):
    with pytest.raises(ValueError, match="split"):
        fashion_mnist.load(tmp_path, "validation")
    (tmp_path / "train.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=str(tmp_path / "train.pt")):
        fashion_mnist.load(tmp_path, "train")


def test_digits_prepare_and_load(tmp_path):
    digits.prepare(tmp_path)
    data = digits.load(tmp_path)
    assert data["images"].shape == (1797, 8, 8) and data["images"].dtype == torch.uint8
    assert int(data["images"].max()) == digits.MAX_VALUE and int(data["images"].min()) == 0
    assert data["labels"].dtype == torch.int64 and sorted(data["labels"].unique().tolist()) == list(range(10))


def test_prepare_data_cli(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    cli = [sys.executable, str(root / "scripts" / "prepare_data.py")]
    done = subprocess.run([*cli, "fashion-mnist", "--out", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode != 0 and "--source" in done.stderr
    done = subprocess.run([*cli, "digits", "--out", str(tmp_path)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(root / "src")})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "digits.pt").is_file()
