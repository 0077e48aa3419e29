"""b01-02: min-max scaling along one dim.

y = (x - min) / (max - min) per slice along `dim`, so every slice spans [0, 1]. A constant slice has
max - min = 0 and no scale to divide by: it maps to 0, the low end of the range, as in scikit-learn's
MinMaxScaler. Subtracting first and dividing second keeps the result exact at both ends ((max - min) / (max - min)
is 1 in IEEE arithmetic) and accurate for values far from 0 whose spread is small.
"""
from __future__ import annotations

import torch
from torch import Tensor


def min_max_scale(x: Tensor, dim: int = -1) -> Tensor:
    """Each slice of `x` along `dim` scaled to [0, 1]; constant slices become 0. Does not modify `x`."""
    if not x.is_floating_point():
        raise TypeError(f"min_max_scale needs a floating-point tensor, got {x.dtype}")
    if not -max(x.dim(), 1) <= dim < max(x.dim(), 1):
        raise IndexError(f"dim {dim} is out of range for a tensor of shape {tuple(x.shape)}")
    if not x.numel():
        return torch.empty_like(x)  # nothing to scale (amin would refuse an empty dim)
    low = x.amin(dim=dim, keepdim=True)  # amin and amax: two vectorised passes beat aminmax's one scalar pass
    span = x.amax(dim=dim, keepdim=True) - low
    if not torch.isfinite(span).all():
        raise ValueError(f"max - min along dim {dim} is not finite: x holds inf or nan, or its range overflows "
                         f"{x.dtype}")
    span = torch.where(span == 0, 1, span)  # a constant slice: x - low is 0 there, so it maps to 0
    return (x - low).div_(span)  # divide in place: the difference is our own temporary
