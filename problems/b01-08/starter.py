"""b01-08: one-hot encoding. Write `one_hot` without F.one_hot (or torch.eye).

Grade it:  torchkata check b01-08
"""
from __future__ import annotations

from torch import Tensor


def one_hot(labels: Tensor, num_classes: int = -1) -> Tensor:
    """One-hot encoding of integer `labels`: shape labels.shape + (num_classes,), dtype int64, like F.one_hot.

    Any integer dtype is accepted. num_classes=-1 infers it as labels.max() + 1. Raise TypeError for
    non-integer labels (name the dtype), ValueError for a negative label, a label >= num_classes (name the label
    and num_classes), num_classes 0 or below -1, and num_classes=-1 with empty labels.
    """
    raise NotImplementedError("b01-08: write one_hot")
