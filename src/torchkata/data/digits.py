"""scikit-learn's bundled handwritten digits (UCI, 1797 images of 8x8): no download needed.

data/digits/digits.pt is {"images": uint8 [1797, 8, 8] with values 0..16 (ink counts, not 0..255),
"labels": int64 [1797]} with labels 0..9.
"""
from __future__ import annotations

from pathlib import Path

import torch

from torchkata.pipeline.checkpoint import load_checkpoint, save_checkpoint

MAX_VALUE = 16  # each pixel counts the set bits of a 4x4 block of the original 32x32 bitmap


def prepare(out: str | Path) -> Path:
    from sklearn.datasets import load_digits  # imported here: only preparing needs scikit-learn

    digits = load_digits()
    return save_checkpoint({"images": torch.from_numpy(digits.images).to(torch.uint8),
                            "labels": torch.from_numpy(digits.target).to(torch.int64)}, Path(out) / "digits.pt")


def load(folder: str | Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(Path(folder) / "digits.pt", required_keys=("images", "labels"))
