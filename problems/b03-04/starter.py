"""b03-04: batch normalisation by hand (no F.batch_norm, nn.BatchNorm1d or torch.batch_norm).

Grade it:  torchkata check b03-04
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


def batch_norm(x: Tensor, running_mean: Tensor, running_var: Tensor, weight: Tensor | None, bias: Tensor | None,
               training: bool, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise x [N, C] or [N, C, L] per channel: in training with the batch's mean and biased variance,
    updating running_mean and running_var (unbiased) in place by `momentum`; in eval with the running ones.
    Then * weight + bias where weight is given. ValueError for another shape, or one value per channel in
    training."""
    raise NotImplementedError("b03-04: write batch_norm")


class BatchNorm1d(nn.Module):
    """nn.BatchNorm1d(num_features, eps, momentum, affine): parameters `weight` (ones) and `bias` (zeros) where
    affine, buffers `running_mean` (zeros), `running_var` (ones) and `num_batches_tracked`; momentum None
    averages all batches seen so far."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True):
        super().__init__()
        raise NotImplementedError("b03-04: write BatchNorm1d")

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError("b03-04: write BatchNorm1d.forward")
