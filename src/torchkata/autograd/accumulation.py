"""b02-10: gradient accumulation, the gradient of one big batch from several small ones.

Gradients add up in `.grad` across backward passes. For a loss that is a mean over the batch, the big batch's
gradient is the mean of all per-sample gradients, so each micro-batch's mean loss is weighted by its share of the
samples, len(micro) / len(batch), before its backward: with equal micro-batches that is 1/k, and with a short last one
its smaller share. The result equals the big batch's gradient up to rounding, with 1/k of the activation memory.

It does not when the samples of a batch interact: batch norm normalises each micro-batch by its own mean and
variance, so a sample's output, and its gradient, depends on which micro-batch it is in.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


def accumulated_gradients(model: nn.Module, loss_fn, inputs: Tensor, targets: Tensor, micro_batches: int) -> list[Tensor]:
    """The gradients of loss_fn(model(inputs), targets) (a mean over the samples), computed in `micro_batches`
    consecutive chunks (torch.tensor_split: sizes differ by at most one) whose backward passes accumulate in .grad.
    The model's gradients are cleared first; returns copies of them, in model.parameters() order."""
    if len(inputs) != len(targets):
        raise ValueError(f"inputs and targets differ in length: {len(inputs)} against {len(targets)}")
    if not 1 <= micro_batches <= len(inputs):
        raise ValueError(f"micro_batches must be between 1 and the batch size {len(inputs)}, got {micro_batches}")
    model.zero_grad()  # to None: the first backward writes .grad, the next ones add to it
    for x, y in zip(torch.tensor_split(inputs, micro_batches), torch.tensor_split(targets, micro_batches)):
        (loss_fn(model(x), y) * (len(x) / len(inputs))).backward()
    return [p.grad.clone() for p in model.parameters()]


def max_difference(grads: list[Tensor], others: list[Tensor]) -> float:
    """The largest absolute difference between two lists of gradients."""
    return max(float((a - b).abs().max()) for a, b in zip(grads, others, strict=True))
