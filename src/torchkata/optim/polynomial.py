"""a15: polynomial learning-rate decay with an optional linear warm-up, a schedule added to b03-09's (it inherits
LRSchedule's stepping and state_dict, and warms up with the same linear_factor as LinearLR):

    lr(t) = base · linear_factor(t, warmup_start_factor, 1, warmup_iters)          for t < warmup_iters = W
    lr(t) = base · (1 - min(t - W, total_iters) / total_iters) ^ power            from W on

so the lr climbs from warmup_start_factor · base to base over W steps, then decays to 0 over total_iters more and
stays there. Without warm-up it is torch's PolynomialLR (torch.optim.lr_scheduler); with it, torch's SequentialLR of
LinearLR(warmup_start_factor, 1.0, W) and PolynomialLR(total_iters, power) switching at milestone W. power 1 is a
straight line; above 1 the lr falls fast at first and lingers near 0, below 1 it stays high and drops at the end.
"""
from __future__ import annotations

import torch

from torchkata.optim.schedules import LRSchedule, check_positive_int, linear_factor


class PolynomialLR(LRSchedule):
    def __init__(self, optimizer: torch.optim.Optimizer, total_iters: int = 5, power: float = 1.0,
                 warmup_iters: int = 0, warmup_start_factor: float = 1 / 3):
        check_positive_int("total_iters", total_iters)
        if not power > 0:
            raise ValueError(f"power must be positive, got {power}")
        if isinstance(warmup_iters, bool) or not isinstance(warmup_iters, int) or warmup_iters < 0:
            raise ValueError(f"warmup_iters must be a non-negative integer, got {warmup_iters!r}")
        if not 0 < warmup_start_factor <= 1:
            raise ValueError(f"warmup_start_factor must lie in (0, 1], got {warmup_start_factor}")
        self.total_iters, self.power = total_iters, power
        self.warmup_iters, self.warmup_start_factor = warmup_iters, warmup_start_factor
        super().__init__(optimizer)

    def lr_at(self, step: int, base_lr: float) -> float:
        if step < self.warmup_iters:
            return base_lr * linear_factor(step, self.warmup_start_factor, 1.0, self.warmup_iters)
        decayed = min(step - self.warmup_iters, self.total_iters)
        return base_lr * (1 - decayed / self.total_iters) ** self.power
