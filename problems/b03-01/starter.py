"""b03-01: a feed-forward network from scratch with nn.Module: your own nn.Parameters (no nn.Linear, F.linear,
nn.Sequential or nn.init), He initialisation, ReLU between the layers.

Grade it:  torchkata check b03-01
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn


class FeedForward(nn.Module):
    """sizes = [inputs, hidden..., outputs]. Parameters in two nn.ParameterLists: `weights` (weight i of shape
    (sizes[i+1], sizes[i])) and `biases` (bias i of shape (sizes[i+1],)). Weights drawn from N(0, 2 / fan_in) with
    `generator` (He / Kaiming normal), biases zero. forward: x @ Wᵀ + b per layer, ReLU between layers and none after
    the last. A ValueError naming `sizes` for fewer than two sizes or a size below 1, and one naming the expected
    inputs and the shape for an input whose last dim is wrong."""

    def __init__(self, sizes: Sequence[int], generator: torch.Generator | None = None):
        super().__init__()
        raise NotImplementedError("b03-01: write FeedForward.__init__")

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError("b03-01: write FeedForward.forward")


def parameter_count(sizes: Sequence[int]) -> int:
    """The number of weights and biases of FeedForward(sizes), from the sizes alone."""
    raise NotImplementedError("b03-01: write parameter_count")
