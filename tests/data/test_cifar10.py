"""The CIFAR-10 data path of m2-core-1 and b04-01: the reader of the real pickled batches, on batch files written
here, with errors that name the file; and the generated stand-in the default runs use."""
import pickle

import numpy as np
import pytest
import torch

from torchkata.data import cifar10
from torchkata.pipeline.checkpoint import CheckpointError

EXERCISES = ("m2-core-1", "b04-01")  # the exercises that read this dataset
COUNTS = {"train": 5 * 4, "test": 6}


def random_batch(n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8), torch.randint(0, 10, (n,), generator=g)


@pytest.fixture
def batches(tmp_path):
    """A cifar-10-batches-py folder of small batches: 4 images in each of the five training batches, 6 in the test."""
    written = {}
    for i, name in enumerate([*cifar10.BATCHES["train"], *cifar10.BATCHES["test"]]):
        written[name] = random_batch(6 if name == "test_batch" else 4, i)
        cifar10.write_batch(tmp_path / name, *written[name])
    return tmp_path, written


def test_real_layout_is_planes_row_by_row(tmp_path):
    # the format's own description: the first 1024 bytes are the red plane, row by row, then green, then blue
    data = np.zeros((1, 3072), np.uint8)
    data[0, 0], data[0, 1], data[0, 32], data[0, 1024], data[0, 2048 + 1023] = 1, 2, 3, 4, 5
    with (tmp_path / "data_batch_1").open("wb") as f:
        pickle.dump({b"batch_label": b"x", b"labels": [7], b"data": data, b"filenames": [b"a.png"]}, f)
    images, labels = cifar10.read_batch(tmp_path / "data_batch_1")
    assert images.shape == (1, 3, 32, 32) and images.dtype == torch.uint8 and labels.tolist() == [7]
    assert (images[0, 0, 0, 0], images[0, 0, 0, 1], images[0, 0, 1, 0]) == (1, 2, 3)
    assert images[0, 1, 0, 0] == 4 and images[0, 2, 31, 31] == 5 and labels.dtype == torch.int64


def test_prepare_reads_every_batch_in_order(batches, tmp_path):
    source, written = batches
    cifar10.prepare(source, tmp_path / "out", counts=COUNTS)
    train, test = cifar10.load(tmp_path / "out", "train"), cifar10.load(tmp_path / "out", "test")
    want = [written[name] for name in cifar10.BATCHES["train"]]
    assert torch.equal(train["images"], torch.cat([w[0] for w in want]))
    assert torch.equal(train["labels"], torch.cat([w[1] for w in want]))
    assert torch.equal(test["images"], written["test_batch"][0]) and torch.equal(test["labels"], written["test_batch"][1])
    assert train["classes"] == list(cifar10.CLASSES) and train["source"].startswith("CIFAR-10 (")
    assert str(source.resolve()) in test["source"]


def test_missing_batch_says_how_to_get_it(batches, tmp_path):
    source, _ = batches
    (source / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3.*data.cifar10"):
        cifar10.prepare(source, tmp_path / "out", counts=COUNTS)


def test_wrong_count_names_the_split(batches, tmp_path):
    with pytest.raises(cifar10.CIFARError, match="the test batches test_batch hold 6 images, expected 10000"):
        cifar10.prepare(batches[0], tmp_path / "out", counts={"train": 20, "test": 10000})


@pytest.mark.parametrize("content, message", [
    (b"not a pickle at all", "not a pickled CIFAR-10 batch"),
    (pickle.dumps([1, 2, 3]), "expected a dict with b'data' and b'labels', got list"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}), r"got \[b'data'\]"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}), r"uint8 \[N, 3072\], got float32"),
    (pickle.dumps({b"data": np.zeros((2, 1024), np.uint8), b"labels": [0, 1]}), r"got uint8 \[2, 1024\]"),
    (pickle.dumps({b"data": [[0] * 3072], b"labels": [0]}), "got list"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}), r"must be 2 integers, got int64 \[1\]"),
    (pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0.5]}), "must be 1 integers, got float64"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}), r"labels must lie in 0..9, found 0..10"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [-1, 3]}), r"found -1..3"),
])
def test_bad_content_names_the_file(tmp_path, content, message):
    path = tmp_path / "data_batch_1"
    path.write_bytes(content)
    with pytest.raises(cifar10.CIFARError, match=message) as err:
        cifar10.read_batch(path)
    assert str(path) in str(err.value)


def test_empty_batch_reads_as_empty(tmp_path):
    images, labels = cifar10.read_batch(cifar10.write_batch(tmp_path / "b", torch.zeros(0, 3, 32, 32, dtype=torch.uint8),
                                                            torch.zeros(0, dtype=torch.long)))
    assert images.shape == (0, 3, 32, 32) and labels.shape == (0,)


def test_load_names_a_bad_split(tmp_path):
    with pytest.raises(ValueError, match="split must be one of"):
        cifar10.load(tmp_path, "valid")
    with pytest.raises((FileNotFoundError, CheckpointError)):
        cifar10.load(tmp_path, "train")


def test_stand_in_shape_determinism_and_labels(tmp_path):
    counts = {"train": 120, "test": 30}
    cifar10.generate(tmp_path / "a", seed=3, counts=counts)
    cifar10.generate(tmp_path / "b", seed=3, counts=counts)
    cifar10.generate(tmp_path / "c", seed=4, counts=counts)
    a, b, c = (cifar10.load(tmp_path / k, "train") for k in "abc")
    assert a["images"].shape == (120, 3, 32, 32) and a["images"].dtype == torch.uint8 and a["labels"].dtype == torch.int64
    assert torch.equal(a["images"], b["images"]) and torch.equal(a["labels"], b["labels"])
    assert not torch.equal(a["images"], c["images"])
    assert set(a["labels"].tolist()) == set(range(10)) and a["classes"] == list(cifar10.STAND_IN_CLASSES)
    assert "stand-in" in a["source"] and "seed 3" in a["source"] and "not CIFAR-10" in a["source"]
    assert cifar10.load(tmp_path / "a", "test")["images"].shape == (30, 3, 32, 32)
    assert 60 < a["images"].float().mean() < 200 and a["images"].float().std() > 40  # a full range of colours


def test_stand_in_is_learnable_but_not_by_colour():
    # the class lives in shape and texture: the mean colour of an image says nearly nothing about it, while a
    # nearest-class-mean on the pixels of a fixed shape and place would say everything
    images, labels = cifar10.stand_in(600, torch.Generator().manual_seed(0))
    colour = images.float().mean(dim=(2, 3))
    means = torch.stack([colour[labels == k].mean(0) for k in range(10)])
    guess = torch.cdist(colour, means).argmin(1)
    assert float((guess == labels).float().mean()) < 0.2
    # the stripes' orientation is there to see: vertical stripes vary along x inside the image, horizontal along y
    centre = images[:, :, 12:20, 12:20].float().mean(1)
    along_x, along_y = centre.diff(dim=2).abs().mean((1, 2)), centre.diff(dim=1).abs().mean((1, 2))
    vertical = labels % 2 == 1
    assert float((along_x > along_y)[vertical].float().mean()) > 0.6
    assert float((along_x < along_y)[~vertical].float().mean()) > 0.6
