"""a02: cross-entropy by hand, forward and backward, as a custom autograd Function. b02-07 asks for the same
function: write it once, here (problems/b02-07/starter.py is a link to this file).

Grade it:  torchkata check a02   and   torchkata check b02-07
"""
from __future__ import annotations

import torch
from torch import Tensor


class CrossEntropyFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: Tensor, target: Tensor, weight: Tensor, ignore_index: int, reduction: str,
                label_smoothing: float) -> Tensor:
        """The loss, from log-probabilities you compute stably (no log(softmax(x))); save what backward needs."""
        raise NotImplementedError("a02 and b02-07: write CrossEntropyFunction.forward")

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        """d loss / d logits, written out (softmax minus one-hot, weighted, smoothed, reduced); None for the rest."""
        raise NotImplementedError("a02 and b02-07: write CrossEntropyFunction.backward")


def cross_entropy(logits: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """F.cross_entropy for logits (batch, classes) and int64 class indices (batch,), through CrossEntropyFunction.

    Must match F.cross_entropy and its gradient with class weights (any float dtype), ignore_index, label smoothing in
    [0, 1] and reduction "none" / "mean" / "sum"; stay finite for logits of ±1e4; pass gradcheck and gradgradcheck in
    float64; and raise, naming the problem: TypeError for logits that are not a float tensor or a target that is not
    int64, ValueError for logits that are not 2-D, a target or weight of the wrong shape, an unknown reduction or a
    label_smoothing outside [0, 1], IndexError for a target out of range. F.cross_entropy, nll_loss, log_softmax,
    softmax and logsumexp are off limits."""
    raise NotImplementedError("a02 and b02-07: write cross_entropy")
