"""Dropout by hand: in training each unit is kept with probability 1 - p and the kept ones are scaled by
1 / (1 - p) (inverted dropout), so that the expectation of every output equals its input and eval mode can be
the identity. No F.dropout / nn.Dropout / torch.dropout."""
from __future__ import annotations

import torch
from torch import Tensor, nn


def check_probability(p: float) -> float:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability p must lie in [0, 1], got {p}")
    return float(p)


def dropout_mask(x: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
    """1.0 where a unit is kept (probability 1 - p), 0.0 where it is dropped, shaped and typed like x.
    Drawn as ATen draws it (bernoulli_ on a tensor like x), so that the default generator after
    torch.manual_seed(s) gives F.dropout's own mask."""
    return torch.empty_like(x).bernoulli_(1.0 - check_probability(p), generator=generator)


def dropout(x: Tensor, p: float = 0.5, training: bool = True, generator: torch.Generator | None = None) -> Tensor:
    """Inverted dropout of x; the identity (x itself) when not training. p = 1 drops every unit (zeros, as
    nn.Dropout gives: there is nothing left to scale)."""
    p = check_probability(p)
    if not training:
        return x
    if p == 1.0:
        return x * 0.0  # 1 / (1 - p) would be inf and 0 * inf nan; the gradient is zero as well
    return x * dropout_mask(x, p, generator).div_(1.0 - p)


class Dropout(nn.Module):
    """nn.Dropout's semantics with an optional generator of its own (a seeded, repeatable mask)."""

    def __init__(self, p: float = 0.5, generator: torch.Generator | None = None):
        super().__init__()
        self.p, self.generator = check_probability(p), generator

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"
