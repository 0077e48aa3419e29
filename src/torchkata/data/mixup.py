"""a19: Mixup and CutMix, batch augmentations that mix two samples and their labels.

Mixup (Zhang et al. 2018) blends whole images: x = λ x_i + (1 - λ) x_j. CutMix (Yun et al. 2019) pastes a box of
x_j into x_i, and the label weight is the area actually kept: λ = 1 - box area / image area, recomputed from the
box after it is clipped to the image. Either way the target is λ onehot(y_i) + (1 - λ) onehot(y_j), trained with
the cross-entropy against those probabilities. λ ~ Beta(α, α); the partner j of row i is row perm[i] of a random
permutation of the batch. Every draw comes from `generator`, in this order: λ, the permutation, the box centre
(row, then column), so a seeded generator gives the same batch again.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor


class Mixed(NamedTuple):
    inputs: Tensor  # the mixed batch, the inputs' shape and dtype
    targets: Tensor  # [N, classes] label probabilities, the inputs' dtype
    lam: float  # the weight of each row's own label (CutMix: 1 - the pasted box's area / the image's)
    perm: Tensor  # row i was mixed with row perm[i]
    box: tuple[int, int, int, int] | None = None  # CutMix: (top, left, bottom, right), bottom and right exclusive


def sample_lambda(alpha: float, generator: torch.Generator | None = None) -> float:
    """λ ~ Beta(α, α) as G1 / (G1 + G2) with G1, G2 ~ Gamma(α): torch.distributions.Beta takes no generator, the
    gamma sampler behind it does."""
    if not alpha > 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    gammas = torch._standard_gamma(torch.full((2,), float(alpha), dtype=torch.float64), generator=generator)
    return float(gammas[0] / gammas.sum())


def rand_box(height: int, width: int, lam: float, generator: torch.Generator | None = None):
    """A box of sides int(height √(1-λ)) and int(width √(1-λ)) (area about 1 - λ of the image) around a centre
    drawn uniformly among the pixels (row, then column), rows centre - side // 2 up to that + side, clipped to the
    image: (top, left, bottom, right)."""
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must lie in [0, 1], got {lam}")
    scale = math.sqrt(1.0 - lam)
    corners = []
    for size in (height, width):
        side, centre = int(size * scale), int(torch.randint(size, (1,), generator=generator))
        start = centre - side // 2
        corners.append((max(start, 0), min(start + side, size)))
    (top, bottom), (left, right) = corners
    return top, left, bottom, right


def mix_targets(labels: Tensor, perm: Tensor, lam: float, classes: int, dtype: torch.dtype) -> Tensor:
    """λ onehot(labels) + (1 - λ) onehot(labels[perm]): [N, classes] rows that sum to 1."""
    one_hot = F.one_hot(labels, classes).to(dtype)
    return lam * one_hot + (1 - lam) * one_hot[perm]


def _check(inputs: Tensor, labels: Tensor, classes: int) -> None:
    if not inputs.is_floating_point():
        raise TypeError(f"inputs must be floating point, got {inputs.dtype}")
    if labels.dtype != torch.int64 or labels.shape != inputs.shape[:1]:
        raise ValueError(f"labels must be int64 of shape [{len(inputs)}] (one per input row), got {labels.dtype} "
                         f"{tuple(labels.shape)}")
    if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < classes:
        raise ValueError(f"labels must lie in [0, classes={classes}), got {int(labels.min())}..{int(labels.max())}")


def mixup(inputs: Tensor, labels: Tensor, classes: int, alpha: float = 1.0,
          generator: torch.Generator | None = None) -> Mixed:
    """λ inputs + (1 - λ) inputs[perm], any shape [N, ...]."""
    _check(inputs, labels, classes)
    lam = sample_lambda(alpha, generator)
    perm = torch.randperm(len(inputs), generator=generator)
    return Mixed(lam * inputs + (1 - lam) * inputs[perm], mix_targets(labels, perm, lam, classes, inputs.dtype),
                 lam, perm)


def cutmix(inputs: Tensor, labels: Tensor, classes: int, alpha: float = 1.0,
           generator: torch.Generator | None = None) -> Mixed:
    """inputs with the box rand_box(H, W, λ) of inputs[perm] pasted in, images [N, C, H, W]; the labels weighted
    by the area kept."""
    _check(inputs, labels, classes)
    if inputs.dim() != 4:
        raise ValueError(f"cutmix wants images [N, C, H, W], got shape {tuple(inputs.shape)}")
    height, width = inputs.shape[-2:]
    lam = sample_lambda(alpha, generator)
    perm = torch.randperm(len(inputs), generator=generator)
    top, left, bottom, right = rand_box(height, width, lam, generator)
    mixed = inputs.clone()
    mixed[:, :, top:bottom, left:right] = inputs[perm, :, top:bottom, left:right]
    lam = 1.0 - (bottom - top) * (right - left) / (height * width)  # the box as clipped, not the λ drawn
    return Mixed(mixed, mix_targets(labels, perm, lam, classes, inputs.dtype), lam, perm, (top, left, bottom, right))


def soft_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """F.cross_entropy(logits, targets) by hand: the mean over rows of -Σ_c p_c log softmax(logits)_c, where the
    targets are probabilities [N, classes] or class indices [N] (one-hot)."""
    log_p = logits.log_softmax(dim=1)
    if not targets.is_floating_point():
        targets = F.one_hot(targets, logits.shape[1]).to(log_p.dtype)
    return -(targets * log_p).sum(dim=1).mean()
