"""b01-03: broadcasting at work, made explicit.

Three everyday computations that broadcasting turns from loops into one expression: an outer product, the
squared distances between every pair of points of two sets, and normalising each channel of a batch. Here no
arithmetic is left to torch's implicit broadcasting: every operand is first expanded to the result's shape with
a03's stride-0 `expand` (`torchkata.tensors.broadcasting`), so the shapes and strides that torch would make
behind the scenes are in plain sight, and still nothing is copied.
"""
from __future__ import annotations

from torch import Tensor

from torchkata.tensors.broadcasting import broadcast_tensors, expand


def along(v: Tensor, like: Tensor, dim: int) -> Tensor:
    """1-D `v` (one value per index of `like`'s dim `dim`) as a stride-0 view of `like`'s shape."""
    if not -like.dim() <= dim < like.dim():
        raise IndexError(f"dim {dim} is out of range for a tensor of shape {tuple(like.shape)}")
    dim %= like.dim()
    if v.dim() != 1 or v.shape[0] != like.shape[dim]:
        raise ValueError(f"want a 1-D tensor of length {like.shape[dim]} (dim {dim} of shape {tuple(like.shape)}), "
                         f"got shape {tuple(v.shape)}")
    column = v.view([-1 if d == dim else 1 for d in range(like.dim())])  # size 1 on every other dim
    return expand(column, like.shape)


def outer(a: Tensor, b: Tensor) -> Tensor:
    """out[i, j] = a[i] * b[j]: a as a column, b as a row, both expanded to (len(a), len(b))."""
    if a.dim() != 1 or b.dim() != 1:
        raise ValueError(f"outer wants two 1-D tensors, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    shape = (a.shape[0], b.shape[0])
    return expand(a.view(-1, 1), shape) * expand(b, shape)


def pairwise_sq_distances(x: Tensor, y: Tensor) -> Tensor:
    """out[..., i, j] = |x[..., i, :] - y[..., j, :]|^2 for x (..., N, D) and y (..., M, D); batch dims broadcast."""
    if x.dim() < 2 or y.dim() < 2 or x.shape[-1] != y.shape[-1]:
        raise ValueError(f"want points (..., N, D) and (..., M, D) with the same D, got shapes {tuple(x.shape)} "
                         f"and {tuple(y.shape)}")
    # (..., N, 1, D) against (..., 1, M, D): every pair of points, D coordinates each
    try:
        xs, ys = broadcast_tensors(x.unsqueeze(-2), y.unsqueeze(-3))
    except RuntimeError as error:
        raise ValueError(f"the batch dims of shapes {tuple(x.shape)} and {tuple(y.shape)} do not broadcast") from error
    diff = xs - ys
    return (diff * diff).sum(-1)


def normalize(x: Tensor, mean: Tensor, std: Tensor, dim: int = 1) -> Tensor:
    """(x - mean) / std with one mean and std per index of `dim` (the channels of an NCHW batch by default)."""
    return (x - along(mean, x, dim)) / along(std, x, dim)

