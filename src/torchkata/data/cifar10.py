"""CIFAR-10 for b04-01 and m2-core-1: the python version's pickled batches -> data/cifar10/{train,test}.pt, or, where
no copy is configured (config key data.cifar10 empty), a generated stand-in of the same shape.

The real format (https://www.cs.toronto.edu/~kriz/cifar.html, cifar-10-python.tar.gz unpacked to
cifar-10-batches-py/): data_batch_1 .. data_batch_5 (10000 images each) and test_batch, each a pickled dict with
b"data", uint8 [10000, 3072] (the red plane's 1024 pixels row by row, then green, then blue), and b"labels", a list
of 10000 ints 0..9. Pickle runs code while loading: read only a copy you trust.

Each .pt file is {"images": uint8 [N, 3, 32, 32], "labels": int64 [N], "classes": [10 names], "source": text saying
which data it is}; experiments put `source` in their metrics, so a result always says what it was measured on.
"""
from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from torchkata.pipeline.checkpoint import load_checkpoint, save_checkpoint

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
BATCHES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
COUNTS = {"train": 50000, "test": 10000}  # the official split sizes
SHAPE = (3, 32, 32)
PIXELS = 3 * 32 * 32
HOW_TO_GET = ("download cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html, unpack it and set "
              "the config key data.cifar10 to the cifar-10-batches-py folder")

# the stand-in: each class is a shape drawn with a striped texture in one orientation
STAND_IN_SHAPES = ("disk", "square", "diamond", "ring", "cross")
STAND_IN_CLASSES = tuple(f"{shape}, {stripes} stripes" for shape in STAND_IN_SHAPES
                         for stripes in ("horizontal", "vertical"))
STAND_IN_COUNTS = {"train": 20000, "test": 4000}


class CIFARError(ValueError):
    """A batch file that is not in the CIFAR-10 python format."""


def read_batch(path: str | Path) -> tuple[Tensor, Tensor]:
    """One pickled batch -> (uint8 images [N, 3, 32, 32], int64 labels [N]); a CIFARError naming the file when its
    content is not a CIFAR-10 batch."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR-10 batch {path} not found; {HOW_TO_GET}")
    try:
        with path.open("rb") as f:
            batch = pickle.load(f, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise CIFARError(f"{path}: not a pickled CIFAR-10 batch ({type(err).__name__}: {err})") from err
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise CIFARError(f"{path}: expected a dict with b'data' and b'labels', got {keys}")
    data, labels = batch[b"data"], np.asarray(batch[b"labels"], dtype=None if len(batch[b"labels"]) else np.int64)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        got = f"{data.dtype} {list(data.shape)}" if isinstance(data, np.ndarray) else type(data).__name__
        raise CIFARError(f"{path}: b'data' must be uint8 [N, {PIXELS}], got {got}")
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise CIFARError(f"{path}: b'labels' must be {len(data)} integers, got {labels.dtype} {list(labels.shape)}")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        raise CIFARError(f"{path}: labels must lie in 0..{len(CLASSES) - 1}, found {labels.min()}..{labels.max()}")
    return torch.from_numpy(data.reshape(-1, *SHAPE).copy()), torch.from_numpy(labels.astype(np.int64))


def write_batch(path: str | Path, images: Tensor, labels: Tensor) -> Path:
    """The inverse of read_batch, in the real format (tests write their batch files with it)."""
    path = Path(path)
    batch = {b"batch_label": path.name.encode(), b"labels": [int(y) for y in labels],
             b"data": images.reshape(len(images), PIXELS).numpy(), b"filenames": [b"%d.png" % i for i in range(len(labels))]}
    with path.open("wb") as f:
        pickle.dump(batch, f)
    return path


def prepare(source: str | Path, out: str | Path, counts: dict[str, int] = COUNTS) -> None:
    """Read the six batches in `source` and write out/train.pt and out/test.pt; `counts` is the expected number of
    images per split (the official sizes unless a test shrinks them)."""
    source = Path(source)
    for split, names in BATCHES.items():
        images, labels = zip(*(read_batch(source / name) for name in names))
        images, labels = torch.cat(images), torch.cat(labels)
        if len(images) != counts[split]:
            raise CIFARError(f"{source}: the {split} batches {', '.join(names)} hold {len(images)} images, "
                             f"expected {counts[split]}")
        save_checkpoint({"images": images, "labels": labels, "classes": list(CLASSES),
                         "source": f"CIFAR-10 ({source.resolve()})"}, Path(out) / f"{split}.pt")


def stand_in(n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """n images [n, 3, 32, 32] uint8 and labels of the stand-in: per image, a shape (disk, square, diamond, ring or
    cross) of random size and place, filled with stripes of a random period and two random colours, on a background
    of a third colour, with pixel noise. The class is the shape and the stripes' orientation (10 classes); the
    colours say nothing about it, so the model must see form and texture. A small CNN gets most of it in a few
    epochs, a linear model does not."""
    g = generator
    labels = torch.randint(0, len(STAND_IN_CLASSES), (n,), generator=g)
    shape, vertical = labels // 2, (labels % 2).bool()
    centre = 10 + 12 * torch.rand(n, 2, 1, 1, generator=g)
    radius = 4 + 7 * torch.rand(n, 1, 1, generator=g)
    period = 3 + 4 * torch.rand(n, 1, 1, generator=g)
    phase = 2 * math.pi * torch.rand(n, 1, 1, generator=g)
    colours = torch.rand(n, 3, 3, 1, 1, generator=g)  # stripe on, stripe off, background
    noise = torch.randn(n, *SHAPE, generator=g)

    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    dy, dx = yy - centre[:, 0], xx - centre[:, 1]
    distance = (dx**2 + dy**2).sqrt()
    box = torch.maximum(dx.abs(), dy.abs())
    masks = torch.stack([distance <= radius, box <= 0.85 * radius, dx.abs() + dy.abs() <= 1.2 * radius,
                         (distance <= radius) & (distance >= 0.55 * radius),
                         (torch.minimum(dx.abs(), dy.abs()) <= 0.35 * radius) & (box <= radius)], dim=1)
    inside = masks[torch.arange(n), shape].unsqueeze(1)
    along = torch.where(vertical.view(n, 1, 1), xx, yy)
    on = (torch.sin(2 * math.pi * along / period + phase) > 0).unsqueeze(1)
    picture = torch.where(inside, torch.where(on, colours[:, 0], colours[:, 1]), colours[:, 2])
    images = (picture * 255 + 35 * noise).round().clamp(0, 255).to(torch.uint8)
    return images, labels


def generate(out: str | Path, seed: int = 0, counts: dict[str, int] = STAND_IN_COUNTS) -> None:
    """Write the stand-in's out/train.pt and out/test.pt, the same for the same seed and counts."""
    generator = torch.Generator().manual_seed(seed)
    for split, n in counts.items():
        images, labels = stand_in(n, generator)
        save_checkpoint({"images": images, "labels": labels, "classes": list(STAND_IN_CLASSES),
                         "source": f"cifar10 stand-in (generated, seed {seed}: {n} {split} images of 10 classes of "
                                   "striped shapes; not CIFAR-10, set data.cifar10 for the real one)"},
                        Path(out) / f"{split}.pt")


def load(folder: str | Path, split: str) -> dict:
    """{"images": uint8 [N, 3, 32, 32], "labels": int64 [N], "classes": [...], "source": str} of "train" or "test"."""
    if split not in BATCHES:
        raise ValueError(f"split must be one of {sorted(BATCHES)}, not {split!r}")
    return load_checkpoint(Path(folder) / f"{split}.pt", required_keys=("images", "labels", "classes", "source"))
