"""b01-06: cosine similarity, computed as PyTorch computes it.

cos(x1, x2) = <x1, x2> / (max(||x1||, eps) * max(||x2||, eps)) along `dim`, after broadcasting x1 and x2 against
each other. Each norm is held at eps or above separately (not their product), as torch does, so a zero vector
has similarity 0 with anything instead of 0 / 0. Three sums over the data (the dot product and both squared
norms) and small per-slice arithmetic afterwards: no normalised copies of the inputs.
"""
from __future__ import annotations

import torch
from torch import Tensor


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Cosine similarity of x1 and x2 along `dim` of their broadcast shape; that dim is reduced away."""
    dtype = torch.result_type(x1, x2)  # integers promote against a float, like torch
    if not dtype.is_floating_point:
        raise TypeError(f"cosine_similarity needs a floating-point input, got {x1.dtype} and {x2.dtype}")
    try:  # views with stride 0 (torch.broadcast_shapes would import sympy: seconds on the first call)
        x1, x2 = torch.broadcast_tensors(x1.to(dtype), x2.to(dtype))  # a broadcast dim is summed in full
    except RuntimeError:
        raise ValueError(f"shapes {tuple(x1.shape)} and {tuple(x2.shape)} do not broadcast") from None
    # a dim out of range: sum raises an IndexError that names it, even for empty and 0-d inputs
    dot = (x1 * x2).sum(dim)
    # max(||x||, eps) as sqrt(max(||x||^2, eps^2)): the clamp comes before the sqrt, whose gradient at 0 is inf
    norm1 = (x1 * x1).sum(dim).clamp_min(eps * eps).sqrt()
    norm2 = (x2 * x2).sum(dim).clamp_min(eps * eps).sqrt()
    return dot / norm1 / norm2  # two divisions: norm1 * norm2 underflows for tiny eps, overflows for huge norms
