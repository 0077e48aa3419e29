"""b02-03: the Huber loss as a custom autograd Function. Write the forward and the backward yourself.

Grade it:  torchkata check b02-03
"""
from __future__ import annotations

import torch
from torch import Tensor


class HuberLossFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input: Tensor, target: Tensor, reduction: str, delta: float) -> Tensor:
        """The Huber loss of the residual input - target, reduced; save what the backward needs."""
        raise NotImplementedError("b02-03: write HuberLossFunction.forward")

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        """Gradients for input and target, and None for reduction and delta."""
        raise NotImplementedError("b02-03: write HuberLossFunction.backward")


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """F.huber_loss through HuberLossFunction: residual d, loss d²/2 for |d| <= delta, delta·(|d| - delta/2) beyond.

    Must match F.huber_loss and its gradients (into input and target) for reductions "none" / "mean" / "sum" and any
    delta > 0, pass gradcheck and gradgradcheck in float64, handle empty and non-contiguous tensors, leave its inputs
    untouched, and raise, naming the problem: TypeError for a non-tensor, a non-float tensor or mixed dtypes,
    ValueError for different shapes, an unknown reduction or delta <= 0. F.huber_loss, F.smooth_l1_loss and
    nn.HuberLoss are off limits."""
    raise NotImplementedError("b02-03: write huber_loss")
