"""b01-03: a custom broadcasting example. Make every broadcast explicit with a03's stride-0 `expand` /
`broadcast_tensors` (imported below): no `x[:, None]`-style implicit broadcasting, no torch.outer or torch.cdist.

Grade it:  torchkata check b01-03
"""
from __future__ import annotations

from torch import Tensor

from torchkata.tensors.broadcasting import broadcast_tensors, expand  # noqa: F401 - yours to use


def along(v: Tensor, like: Tensor, dim: int) -> Tensor:
    """1-D `v` (one value per index of `like`'s dim `dim`, negative dims too) as a view of `like`'s shape:
    stride 0 on every other dim, nothing copied. IndexError naming `dim` if it is out of range; ValueError naming
    both shapes if `v` is not 1-D of length like.shape[dim]."""
    raise NotImplementedError("b01-03: write along")


def outer(a: Tensor, b: Tensor) -> Tensor:
    """out[i, j] = a[i] * b[j] for 1-D a and b; ValueError naming both shapes otherwise."""
    raise NotImplementedError("b01-03: write outer")


def pairwise_sq_distances(x: Tensor, y: Tensor) -> Tensor:
    """out[..., i, j] = |x[..., i, :] - y[..., j, :]|^2 for x (..., N, D) and y (..., M, D), batch dims broadcast.
    ValueError (or RuntimeError) naming both shapes when D differs, an input is not at least 2-D, or the batch
    dims do not broadcast."""
    raise NotImplementedError("b01-03: write pairwise_sq_distances")


def normalize(x: Tensor, mean: Tensor, std: Tensor, dim: int = 1) -> Tensor:
    """(x - mean) / std with one mean and std (1-D tensors) per index of `dim`; the channels of NCHW by default."""
    raise NotImplementedError("b01-03: write normalize")
