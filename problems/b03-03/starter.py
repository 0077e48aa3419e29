"""b03-03: dropout by hand (no F.dropout, nn.Dropout or torch.dropout).

Grade it:  torchkata check b03-03
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


def check_probability(p: float) -> float:
    """p as a float; ValueError naming p and its value unless 0 <= p <= 1."""
    raise NotImplementedError("b03-03: write check_probability")


def dropout_mask(x: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
    """1.0 where a unit is kept (independently, probability 1 - p), 0.0 where it is dropped, shaped and typed
    like x, drawn from `generator` (torch's default generator when None)."""
    raise NotImplementedError("b03-03: write dropout_mask")


def dropout(x: Tensor, p: float = 0.5, training: bool = True, generator: torch.Generator | None = None) -> Tensor:
    """Inverted dropout: in training each unit kept with probability 1 - p and scaled by 1 / (1 - p), the
    others zero; x itself when not training. p = 0 keeps everything, p = 1 gives zeros (as nn.Dropout does).
    ValueError for p outside [0, 1], in eval mode too."""
    raise NotImplementedError("b03-03: write dropout")


class Dropout(nn.Module):
    """nn.Dropout's semantics (train: dropout, eval: identity) with an optional generator of its own."""

    def __init__(self, p: float = 0.5, generator: torch.Generator | None = None):
        super().__init__()
        raise NotImplementedError("b03-03: write Dropout")

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError("b03-03: write Dropout.forward")
