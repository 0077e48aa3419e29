"""Fashion-MNIST: the four raw IDX files -> data/fashion-mnist/{train,test}.pt.

Each .pt file is a dict {"images": uint8 [N, 28, 28], "labels": int64 [N]} (labels 0..9:
T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot).
"""
from __future__ import annotations

from pathlib import Path

import torch

from torchkata.data.idx import IDXError, read_labelled
from torchkata.pipeline.checkpoint import load_checkpoint, save_checkpoint

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
RAW = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
       "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
COUNTS = {"train": 60000, "test": 10000}  # the official split sizes
SIZE = 28
HOW_TO_GET = ("get it with `./run.sh data`, or install the Debian package dataset-fashion-mnist "
              "(files under /usr/share/datasets/fashion-mnist), or point the config key "
              "data.fashion_mnist at a folder holding the four IDX files")


def raw_file(source: Path, stem: str) -> Path:
    """`stem` or `stem.gz` under `source`; a clear error saying how to get the data if neither exists."""
    for path in (source / stem, source / f"{stem}.gz"):
        if path.is_file():
            return path
    raise FileNotFoundError(f"Fashion-MNIST file {source / stem}[.gz] not found; {HOW_TO_GET}")


def prepare(source: str | Path, out: str | Path, counts: dict[str, int] = COUNTS) -> None:
    """Read and validate the raw IDX files in `source`; write out/train.pt and out/test.pt atomically.

    `counts` is the expected number of images per split (the official sizes unless a test shrinks them).
    """
    source, out = Path(source), Path(out)
    for split, (images_stem, labels_stem) in RAW.items():
        images_path, labels_path = raw_file(source, images_stem), raw_file(source, labels_stem)
        images, labels = read_labelled(images_path, labels_path)
        if images.shape != (counts[split], SIZE, SIZE) or images.dtype != "uint8":
            raise IDXError(f"{images_path}: expected uint8 images of shape [{counts[split]}, {SIZE}, {SIZE}], "
                           f"got {images.dtype} {list(images.shape)}")
        if labels.min() < 0 or labels.max() >= len(CLASSES):
            raise IDXError(f"{labels_path}: labels must lie in 0..{len(CLASSES) - 1}, "
                           f"found {labels.min()}..{labels.max()}")
        save_checkpoint({"images": torch.from_numpy(images.copy()),
                         "labels": torch.from_numpy(labels.astype("int64"))}, out / f"{split}.pt")


def load(folder: str | Path, split: str) -> dict[str, torch.Tensor]:
    """{"images": uint8 [N, 28, 28], "labels": int64 [N]} of split "train" or "test"."""
    if split not in RAW:
        raise ValueError(f"split must be one of {sorted(RAW)}, not {split!r}")
    return load_checkpoint(Path(folder) / f"{split}.pt", required_keys=("images", "labels"))
