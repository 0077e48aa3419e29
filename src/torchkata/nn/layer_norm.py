"""a07: LayerNorm by hand, without PyTorch's layer-norm function or module.

Each sample is normalised over its trailing `normalized_shape` dims: y = (x - mean) / sqrt(var + eps) * weight + bias,
with the biased variance (divide by the count, not count - 1) and eps inside the square root, as PyTorch does.
float16 and bfloat16 inputs are normalised in float32 and cast back: their sums of squares lose too many digits.
"""
from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor, nn

LOW_PRECISION = (torch.float16, torch.bfloat16)


def as_shape(normalized_shape: int | tuple[int, ...] | list[int] | torch.Size) -> tuple[int, ...]:
    shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else tuple(normalized_shape)
    if not shape:
        raise ValueError("normalized_shape must name at least one dim, got ()")
    return shape


def layer_norm(x: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalise `x` over its last len(normalized_shape) dims; differentiable through autograd."""
    shape = as_shape(normalized_shape)
    if not x.is_floating_point():
        raise TypeError(f"layer_norm needs a floating-point tensor, got {x.dtype}")
    trailing = tuple(x.shape[x.dim() - len(shape):]) if x.dim() >= len(shape) else None
    if trailing != shape:
        raise ValueError(f"normalized_shape {shape} does not match the trailing dims of the input of shape "
                         f"{tuple(x.shape)}")
    for name, param in (("weight", weight), ("bias", bias)):
        if param is not None and tuple(param.shape) != shape:
            raise ValueError(f"{name} has shape {tuple(param.shape)}, normalized_shape is {shape}")
    dims = tuple(range(-len(shape), 0))
    xf = x.float() if x.dtype in LOW_PRECISION else x
    centred = xf - xf.mean(dim=dims, keepdim=True)
    # the biased variance, mean of squares of the centred values; vector_norm squares inside its reduction, a pass
    # over memory fewer than centred.square().mean() (torch.var_mean's Welford loop is slower still on the CPU)
    var = torch.linalg.vector_norm(centred, dim=dims, keepdim=True).square() / math.prod(shape)
    y = centred * torch.rsqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y.to(x.dtype)


class LayerNorm(nn.Module):
    """Drop-in for nn.LayerNorm: same arguments, parameters, initial values and state_dict keys."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        self.normalized_shape = as_shape(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        factory = {"device": device, "dtype": dtype}
        # the identity transform at the start: scale 1, shift 0
        self.weight = nn.Parameter(torch.ones(self.normalized_shape, **factory)) if elementwise_affine else None
        self.bias = nn.Parameter(torch.zeros(self.normalized_shape, **factory)) if elementwise_affine and bias else None

    def forward(self, x: Tensor) -> Tensor:
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
