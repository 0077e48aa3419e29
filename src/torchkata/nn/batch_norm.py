"""b03-04: batch normalisation by hand, nn.BatchNorm1d's semantics without F.batch_norm.

In training each channel is normalised with the batch's mean and biased variance (over the batch and, for a
[N, C, L] input, the length), and the running statistics move towards the batch's, the variance *unbiased*:
    running = (1 - momentum) * running + momentum * batch     (momentum None: the cumulative average)
In eval mode the running statistics normalise instead. With affine, a per-channel weight and bias follow.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


def batch_norm(x: Tensor, running_mean: Tensor, running_var: Tensor, weight: Tensor | None, bias: Tensor | None,
               training: bool, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise x [N, C] or [N, C, L] per channel; in training update running_mean/var in place by `momentum`."""
    if x.dim() not in (2, 3) or x.shape[1] != len(running_mean):
        raise ValueError(f"expected input [N, {len(running_mean)}] or [N, {len(running_mean)}, L], got {list(x.shape)}")
    dims = [0, 2] if x.dim() == 3 else [0]
    shape = [1, -1, 1] if x.dim() == 3 else [1, -1]
    if training:
        n = x.numel() // x.shape[1]
        if n < 2:
            raise ValueError(f"batch norm in training needs more than 1 value per channel, got input {list(x.shape)}")
        mean, var = x.mean(dims), x.var(dims, unbiased=False)
        with torch.no_grad():
            running_mean.lerp_(mean.to(running_mean.dtype), momentum)
            running_var.lerp_((var * n / (n - 1)).to(running_var.dtype), momentum)
    else:
        mean, var = running_mean, running_var
    out = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + eps)
    if weight is not None:
        out = out * weight.view(shape) + bias.view(shape)
    return out


class BatchNorm1d(nn.Module):
    """nn.BatchNorm1d(num_features, eps, momentum, affine): parameters `weight` (ones) and `bias` (zeros) where
    affine, buffers `running_mean` (zeros), `running_var` (ones) and `num_batches_tracked`."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True):
        super().__init__()
        self.num_features, self.eps, self.momentum, self.affine = num_features, eps, momentum, affine
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine else None
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: Tensor) -> Tensor:
        momentum = self.momentum
        if self.training:
            self.num_batches_tracked += 1
            if momentum is None:  # the cumulative average: batch k weighs 1/k
                momentum = 1.0 / float(self.num_batches_tracked)
        return batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.training,
                          momentum, self.eps)
