"""b02-10: gradient accumulation. The big batch's gradient from k micro-batches.

Grade it:  torchkata check b02-10
"""
from __future__ import annotations

from torch import Tensor, nn


def accumulated_gradients(model: nn.Module, loss_fn, inputs: Tensor, targets: Tensor, micro_batches: int) -> list[Tensor]:
    """The gradients of loss_fn(model(inputs), targets) (a mean over the samples), computed in `micro_batches`
    consecutive chunks (torch.tensor_split: sizes differ by at most one) whose backward passes accumulate in .grad.

    Clear the model's gradients first; leave the accumulated gradient in .grad and return copies of it, in
    model.parameters() order. ValueError naming both lengths if inputs and targets differ in length, and naming
    micro_batches unless 1 <= micro_batches <= len(inputs)."""
    raise NotImplementedError("b02-10: write accumulated_gradients")


def max_difference(grads: list[Tensor], others: list[Tensor]) -> float:
    """The largest absolute difference between two lists of gradients; ValueError if their lengths differ."""
    raise NotImplementedError("b02-10: write max_difference")
