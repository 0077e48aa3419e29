"""b01-08: one-hot encoding by hand, without F.one_hot.

one_hot(labels)[..., c] is 1 where labels == c, else 0. The result has one more axis than `labels`, of
length num_classes, and the dtype int64 like F.one_hot. We write it as F.one_hot does: a zero tensor and one
scatter of 1s along the new last axis (one write per label, instead of comparing every label with every class).
"""
from __future__ import annotations

import torch
from torch import Tensor


def one_hot(labels: Tensor, num_classes: int = -1) -> Tensor:
    """One-hot encoding of integer `labels`, shape labels.shape + (num_classes,), dtype int64.

    num_classes=-1 infers it as labels.max() + 1 (which needs at least one label)."""
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"one_hot needs integer class labels, got {labels.dtype}")
    if num_classes == 0 or num_classes < -1:
        raise ValueError(f"num_classes must be positive or -1 (infer it), got {num_classes}")
    if labels.numel() and int(labels.min()) < 0:
        raise ValueError(f"class labels must be non-negative, got {int(labels.min())}")
    if num_classes == -1:
        if not labels.numel():
            raise ValueError("cannot infer num_classes from empty labels: pass num_classes")
        num_classes = int(labels.max()) + 1
    elif labels.numel() and int(labels.max()) >= num_classes:
        raise ValueError(f"class label {int(labels.max())} is out of range for num_classes={num_classes}")
    encoded = torch.zeros(*labels.shape, num_classes, dtype=torch.int64, device=labels.device)
    return encoded.scatter_(-1, labels.long().unsqueeze(-1), 1)
