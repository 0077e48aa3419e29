"""a01: softmax by hand, without torch.softmax.

softmax(x)_i = exp(x_i) / sum_j exp(x_j). Computed as written it overflows for logits above ~88
(float32 exp), so we subtract the maximum along `dim` first: the result is the same because
softmax(x - c) = softmax(x) for any constant c, and the largest exponent is then exp(0) = 1.
"""
from __future__ import annotations

import torch
from torch import Tensor


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """Numerically stable softmax of `x` along `dim`; differentiable through autograd."""
    if not x.is_floating_point():
        raise TypeError(f"softmax needs a floating-point tensor, got {x.dtype}")
    if not -max(x.dim(), 1) <= dim < max(x.dim(), 1):
        raise IndexError(f"dim {dim} is out of range for a tensor of shape {tuple(x.shape)}")
    if x.dim() > 0 and x.shape[dim] == 0:
        return torch.empty_like(x)  # nothing to normalise over (amax would refuse an empty dim)
    exps = (x - x.amax(dim=dim, keepdim=True)).exp_()  # exp in place: the difference is our own temporary
    total = exps.sum(dim=dim, keepdim=True)
    # dividing in place would overwrite the result exp_'s backward needs: only where no graph is being built
    return exps / total if exps.requires_grad else exps.div_(total)
