"""b03-02: MNIST without torchvision: a reader of the IDX files that MNIST and Fashion-MNIST ship as.

Layout (big-endian throughout): two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
0x0D float32, 0x0E float64), the number of dimensions, one uint32 per dimension, then the elements in C order.
A file ending in `.gz` is gzip-compressed. Every error names the file.
"""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch

# type code -> the big-endian dtype of the stored elements
DTYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
          0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
# the four files of a split, as LeCun's page names them
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_idx(path: str | Path) -> torch.Tensor:
    """The tensor stored in an IDX file (plain, or gzip when the name ends in .gz), in native byte order.
    ValueError naming the file for a bad magic number or a size that disagrees with the header."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in DTYPES:
        raise ValueError(f"{path}: bad magic number {data[:4].hex()!r}: not an IDX file")
    stored, ndim = DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: too short: the header names {ndim} dimensions, the file has {len(data)} bytes")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    size = int(np.prod(shape, dtype=np.int64)) * stored.itemsize
    if len(data) - header != size:
        raise ValueError(f"{path}: wrong size: shape {list(shape)} needs {size} bytes of data, "
                         f"the file has {len(data) - header}")
    native = np.frombuffer(data, dtype=stored, offset=header).astype(stored.newbyteorder("="))  # a writable copy
    return torch.from_numpy(native.reshape(shape))


def find(folder: Path, stem: str) -> Path:
    """folder/stem or folder/stem.gz, whichever exists."""
    for path in (folder / stem, folder / f"{stem}.gz"):
        if path.is_file():
            return path
    raise FileNotFoundError(f"{folder / stem}[.gz] not found")


def load_split(folder: str | Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 [N, H, W], labels int64 [N]) of split "train" or "test" from the IDX files in `folder`."""
    if split not in FILES:
        raise ValueError(f"split must be one of {sorted(FILES)}, not {split!r}")
    images_path, labels_path = (find(Path(folder), stem) for stem in FILES[split])
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dim() != 3 or labels.dim() != 1 or len(images) != len(labels):
        raise ValueError(f"{images_path} {list(images.shape)} and {labels_path} {list(labels.shape)} "
                         "are not N images [N, H, W] and their N labels")
    return images, labels.long()
