"""b03-02: MNIST without torchvision: read the IDX files yourself (not torchvision, not torchkata.data.idx).

Grade it:  torchkata check b03-02
"""
from __future__ import annotations

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
    raise NotImplementedError("b03-02: write read_idx")


def find(folder: Path, stem: str) -> Path:
    """folder/stem or folder/stem.gz, whichever exists; FileNotFoundError naming stem otherwise."""
    raise NotImplementedError("b03-02: write find")


def load_split(folder: str | Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 [N, H, W], labels int64 [N]) of split "train" or "test" from the IDX files in `folder`;
    ValueError naming the files when they are not N images and N labels."""
    raise NotImplementedError("b03-02: write load_split")
