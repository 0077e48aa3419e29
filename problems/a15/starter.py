"""a15: a polynomial learning-rate schedule with an optional linear warm-up, added to b03-09's schedules: subclass
LRSchedule (it steps, saves and restores; you define lr_at) and warm up with linear_factor.

Grade it:  torchkata check a15
"""
from __future__ import annotations

import torch

from torchkata.optim.schedules import LRSchedule, check_positive_int, linear_factor  # noqa: F401


class PolynomialLR(LRSchedule):
    """lr(t) = base · linear_factor(t, warmup_start_factor, 1, warmup_iters) for t < warmup_iters, then
    base · (1 - min(t - warmup_iters, total_iters) / total_iters) ** power: torch's PolynomialLR when
    warmup_iters is 0, torch's SequentialLR of LinearLR and PolynomialLR otherwise.

    ValueErrors naming the argument: total_iters not a positive int, power not positive, warmup_iters not an int of
    at least 0, warmup_start_factor outside (0, 1]."""

    def __init__(self, optimizer: torch.optim.Optimizer, total_iters: int = 5, power: float = 1.0,
                 warmup_iters: int = 0, warmup_start_factor: float = 1 / 3):
        raise NotImplementedError("a15: write PolynomialLR.__init__ (set your settings, then super().__init__)")

    def lr_at(self, step: int, base_lr: float) -> float:
        raise NotImplementedError("a15: write PolynomialLR.lr_at")
