"""a19: Mixup and CutMix. Mix each row of a batch with a partner row (row perm[i] of a random permutation) and mix
their labels the same way; every random draw comes from `generator`, in this order: λ, the permutation, the box
centre (row, then column).

Grade it:  torchkata check a19
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class Mixed(NamedTuple):
    inputs: Tensor  # the mixed batch, the inputs' shape and dtype
    targets: Tensor  # [N, classes] label probabilities, the inputs' dtype
    lam: float  # the weight of each row's own label (CutMix: 1 - the pasted box's area / the image's)
    perm: Tensor  # row i was mixed with row perm[i]
    box: tuple[int, int, int, int] | None = None  # CutMix: (top, left, bottom, right), bottom and right exclusive


def sample_lambda(alpha: float, generator: torch.Generator | None = None) -> float:
    """λ ~ Beta(α, α), drawn from `generator` only; ValueError naming `alpha` unless alpha > 0."""
    raise NotImplementedError("a19: write sample_lambda")


def rand_box(height: int, width: int, lam: float, generator: torch.Generator | None = None):
    """(top, left, bottom, right): sides int(height √(1-λ)) and int(width √(1-λ)); a centre row, then a centre column,
    each torch.randint(size, (1,), generator=generator); the box starts at centre - side // 2 and is `side` long,
    clipped to the image. ValueError naming `lam` outside [0, 1]."""
    raise NotImplementedError("a19: write rand_box")


def mix_targets(labels: Tensor, perm: Tensor, lam: float, classes: int, dtype: torch.dtype) -> Tensor:
    """λ onehot(labels) + (1 - λ) onehot(labels[perm]), [N, classes] in `dtype`."""
    raise NotImplementedError("a19: write mix_targets")


def mixup(inputs: Tensor, labels: Tensor, classes: int, alpha: float = 1.0,
          generator: torch.Generator | None = None) -> Mixed:
    """λ inputs + (1 - λ) inputs[perm] for floating inputs [N, ...] and int64 labels [N] in [0, classes).
    TypeError naming "floating" for other inputs; ValueError naming "labels" for labels of another dtype or shape,
    and "classes=C" for a label outside the classes."""
    raise NotImplementedError("a19: write mixup")


def cutmix(inputs: Tensor, labels: Tensor, classes: int, alpha: float = 1.0,
           generator: torch.Generator | None = None) -> Mixed:
    """images [N, C, H, W] (ValueError naming "[N, C, H, W]" otherwise) with the box rand_box(H, W, λ) of
    inputs[perm] pasted in; `lam` and the targets weighted by the area of the box as clipped. The same input
    errors as mixup."""
    raise NotImplementedError("a19: write cutmix")


def soft_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """F.cross_entropy(logits, targets) by hand, for probabilities [N, classes] or class indices [N]."""
    raise NotImplementedError("a19: write soft_cross_entropy")
