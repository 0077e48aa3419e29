"""a10: torch.autograd.gradcheck as a tool. Write a custom Function with a right backward and three wrong ones, the
central differences gradcheck compares them with, and a verdict function around gradcheck; then see which bugs
gradcheck catches, and what eps and tolerances it needs in float32.

Grade it:  torchkata check a10
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor

BUGS = ("sign", "transpose", "broadcast")


class ScaledLinearFunction(torch.autograd.Function):
    """y = (x @ weight.T) * scale[:, None] + bias: x [N, in], weight [out, in], scale [N] (a weight per sample),
    bias [out]. The last forward argument, bug, is None (the right backward) or one of BUGS:
      "sign":      dL/dx with the wrong sign;
      "transpose": dL/dweight computed as [in, out] (the transpose missing), not [out, in];
      "broadcast": dL/dscale left [N, out]: scale's broadcast over the columns not summed away.
    Each bug changes that one gradient only."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, scale: Tensor, bias: Tensor, bug: str | None) -> Tensor:
        raise NotImplementedError("a10: write ScaledLinearFunction.forward")

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        raise NotImplementedError("a10: write ScaledLinearFunction.backward")


def scaled_linear(x: Tensor, weight: Tensor, scale: Tensor, bias: Tensor, bug: str | None = None) -> Tensor:
    """ScaledLinearFunction applied. Raise, naming the problem: ValueError for a bug not in BUGS (naming it), a tensor
    of the wrong number of dims ("x must be 2-D"), shapes that do not fit together ("... do not fit ..."); TypeError
    for a non-tensor or a non-float tensor (naming the argument and what it got)."""
    raise NotImplementedError("a10: write scaled_linear")


def numerical_jacobian(fn: Callable[[Tensor], Tensor], x: Tensor, eps: float) -> Tensor:
    """d fn(x) / d x by central differences, one entry of x at a time, computed in x's dtype, of shape
    [*fn(x).shape, *x.shape]; x is left as it was. ValueError for eps <= 0. No torch.autograd here."""
    raise NotImplementedError("a10: write numerical_jacobian")


def gradcheck_passes(fn: Callable[..., Tensor], inputs: Sequence[Tensor], **options) -> bool:
    """torch.autograd.gradcheck(fn, inputs, **options) as True or False: False where gradcheck finds a mismatch, and
    where autograd refuses a backward's gradient of the wrong shape ("invalid gradient"); any other error (a crash of
    fn) propagates."""
    raise NotImplementedError("a10: write gradcheck_passes")
