"""b03-01: a feed-forward network from scratch with nn.Module: its own Parameters (no Linear modules), He initialisation,
ReLU between the layers and none after the last (the logits go to the loss as they are).

He (Kaiming) normal initialisation, weight ~ N(0, 2 / fan_in), zero biases: with ReLU halving the signal's second
moment, a variance of 2 / fan_in keeps the activations' scale the same from layer to layer, so a deep stack neither
fades nor explodes at the start of training.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn


class FeedForward(nn.Module):
    """sizes = [inputs, hidden..., outputs]: Linear maps weight_i (sizes[i+1], sizes[i]) and bias_i, ReLU between."""

    def __init__(self, sizes: Sequence[int], generator: torch.Generator | None = None):
        super().__init__()
        if len(sizes) < 2 or any(size < 1 for size in sizes):
            raise ValueError(f"sizes needs an input and an output size, all at least 1, got {list(sizes)}")
        self.sizes = list(sizes)
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(fan_out, fan_in, generator=generator) * math.sqrt(2 / fan_in))
            for fan_in, fan_out in zip(sizes, sizes[1:]))
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(fan_out)) for fan_out in sizes[1:])

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1:] != (self.sizes[0],):
            raise ValueError(f"expected input of shape (..., {self.sizes[0]}), got {tuple(x.shape)}")
        *hidden, (weight, bias) = zip(self.weights, self.biases)
        for w, b in hidden:
            x = torch.relu(x @ w.T + b)
        return x @ weight.T + bias  # logits: no ReLU after the last layer


def parameter_count(sizes: Sequence[int]) -> int:
    """Weights and biases of FeedForward(sizes), from the sizes alone."""
    return sum(fan_in * fan_out + fan_out for fan_in, fan_out in zip(sizes, sizes[1:]))
