"""a02 and b02-07: cross-entropy by hand, forward and backward, as a custom autograd Function.

For logits x of shape (batch, classes) and class indices y, with p = softmax(x_i) and class weights w (1 by default):

    loss_i = (1 - ε) w_{y_i} (-log p_{i,y_i}) + ε/C Σ_c w_c (-log p_{i,c})        (ε: label smoothing)

and 0 for a row whose target is ignore_index. Reduction "mean" divides the sum by Σ_i w_{y_i} over the rows kept,
as F.cross_entropy does. log p is computed as x - max x - log Σ exp(x - max x): never log(softmax), whose 0 at
logits of ±1e4 gives -inf.

The backward is written out: d loss_i / d x_i = (1 - ε) w_{y_i} (p_i - onehot(y_i)) + ε/C (Σ_c w_c p_i - w);
without weights and smoothing, softmax minus one-hot, over the batch, divided by the batch for "mean".
"""
from __future__ import annotations

import torch
from torch import Tensor

from torchkata.tensors.softmax import row_blocks

REDUCTIONS = ("none", "mean", "sum")


def log_softmax_rows(logits: Tensor) -> Tensor:
    if torch.is_grad_enabled():  # a double backward: out of place, so autograd can follow it
        shifted = logits - logits.amax(1, keepdim=True)
        return shifted - shifted.exp().sum(1, keepdim=True).log()
    out = torch.empty_like(logits)
    # a block of rows at a time (a01's row_blocks): the max, the shift, Σ exp and the log are all done while the block
    # is in cache, so the logits are read from memory once and the result written once
    for block, dest in zip(row_blocks(logits, 1), row_blocks(out, 1)):
        torch.sub(block, block.amax(1, keepdim=True), out=dest)
        dest.sub_(dest.exp().sum(1, keepdim=True).log_())
    return out


class CrossEntropyFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: Tensor, target: Tensor, weight: Tensor, ignore_index: int, reduction: str,
                label_smoothing: float) -> Tensor:
        classes = logits.shape[1]
        keep = target != ignore_index
        target = target.masked_fill(~keep, 0)  # any valid class for an ignored row: its weight is zeroed next
        row_weight = weight[target] * keep
        log_probs = log_softmax_rows(logits)
        losses = -(1 - label_smoothing) * row_weight * log_probs.gather(1, target[:, None]).squeeze(1)
        if label_smoothing:
            # (a float times a bool tensor is float32: the mask comes last, after a tensor of the logits' dtype)
            losses -= label_smoothing / classes * (log_probs @ weight) * keep
        ctx.save_for_backward(logits, log_probs, target, keep, row_weight, weight)
        ctx.options = reduction, label_smoothing
        if reduction == "none":
            return losses
        return losses.sum() / row_weight.sum() if reduction == "mean" else losses.sum()

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        logits, log_probs, target, keep, row_weight, weight = ctx.saved_tensors
        reduction, label_smoothing = ctx.options
        classes = logits.shape[1]
        if torch.is_grad_enabled():  # a double backward needs log p as a function of the logits, not a constant
            log_probs = log_softmax_rows(logits)
        upstream = grad_out / row_weight.sum() if reduction == "mean" else grad_out  # per row, or one for all
        # (1 - ε) w_y (p - onehot(y)) + ε/C (Σw p - w): p's coefficient per row, then the one-hot and the w terms
        on_probs = upstream * ((1 - label_smoothing) * row_weight + label_smoothing / classes * weight.sum() * keep)
        grad = log_probs.exp() * on_probs[:, None]
        grad.scatter_add_(1, target[:, None], (-(1 - label_smoothing) * upstream * row_weight)[:, None])
        if label_smoothing:
            grad.addr_(upstream * keep, weight, alpha=-label_smoothing / classes)
        return grad, None, None, None, None, None


def cross_entropy(logits: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """F.cross_entropy for logits (batch, classes) and int64 class indices (batch,), through CrossEntropyFunction."""
    if not isinstance(logits, Tensor) or not logits.is_floating_point():
        raise TypeError(f"logits must be a floating-point tensor, got {getattr(logits, 'dtype', type(logits).__name__)}")
    if logits.dim() != 2:
        raise ValueError(f"logits must have shape (batch, classes), got {tuple(logits.shape)}")
    if not isinstance(target, Tensor) or target.dtype != torch.int64:
        raise TypeError(f"target must be int64 class indices, got {getattr(target, 'dtype', type(target).__name__)}")
    if target.shape != logits.shape[:1]:
        raise ValueError(f"target shape {tuple(target.shape)} does not match logits of shape {tuple(logits.shape)}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    classes = logits.shape[1]
    if weight is None:
        weight = logits.new_ones(classes)
    elif weight.shape != (classes,):
        raise ValueError(f"weight must have one entry per class ({classes}), got shape {tuple(weight.shape)}")
    out_of_range = (target != ignore_index) & ((target < 0) | (target >= classes))
    if out_of_range.any():
        raise IndexError(f"target {int(target[out_of_range][0])} is out of range for {classes} classes")
    return CrossEntropyFunction.apply(logits, target, weight.to(logits.dtype), ignore_index, reduction,
                                      label_smoothing)
