"""b03-09: learning-rate schedules by hand. Write them without torch.optim.lr_scheduler; each must give the same
learning rate as its torch counterpart at every step.

Grade it:  torchkata check b03-09
"""
from __future__ import annotations

import torch


def linear_factor(step: int, start: float, end: float, total: int) -> float:
    """From `start` at step 0 to `end` at step `total`, then `end` (LinearLR's multiplier, and a warm-up's)."""
    raise NotImplementedError("b03-09: write linear_factor")


class LRSchedule:
    """What every schedule shares. Making one records each group's base lr (group["initial_lr"], set only where
    missing) in `base_lrs`, sets `last_epoch` = 0 and writes step 0's learning rates into the optimizer. A subclass
    defines `lr_at(step, base_lr)`. TypeError if `optimizer` is not a torch.optim.Optimizer."""

    def __init__(self, optimizer: torch.optim.Optimizer):
        raise NotImplementedError("b03-09: write LRSchedule")

    def lr_at(self, step: int, base_lr: float) -> float:
        raise NotImplementedError

    def step(self) -> None:
        """Next step (called after the optimizer's step): last_epoch + 1 and its learning rates."""
        raise NotImplementedError("b03-09: write LRSchedule.step")

    def get_last_lr(self) -> list[float]:
        """The learning rates of the current step, one per parameter group."""
        raise NotImplementedError("b03-09: write LRSchedule.get_last_lr")

    def state_dict(self) -> dict:
        """Everything but the optimizer, in types torch.load(weights_only=True) accepts."""
        raise NotImplementedError("b03-09: write LRSchedule.state_dict")

    def load_state_dict(self, state: dict) -> None:
        """Take a saved state and write that step's values into the optimizer."""
        raise NotImplementedError("b03-09: write LRSchedule.load_state_dict")


class StepLR(LRSchedule):
    """base · gamma^(step // step_size); ValueError naming step_size unless it is a positive int."""

    def __init__(self, optimizer: torch.optim.Optimizer, step_size: int, gamma: float = 0.1):
        raise NotImplementedError("b03-09: write StepLR")


class CosineAnnealingLR(LRSchedule):
    """eta_min + (base - eta_min) · (1 + cos(π step / T_max)) / 2; ValueError naming T_max unless a positive int."""

    def __init__(self, optimizer: torch.optim.Optimizer, T_max: int, eta_min: float = 0.0):
        raise NotImplementedError("b03-09: write CosineAnnealingLR")


class LinearLR(LRSchedule):
    """The warm-up: base · linear_factor(step, start_factor, end_factor, total_iters). ValueErrors naming the
    argument: start_factor outside (0, 1], end_factor outside [0, 1], total_iters not a positive int."""

    def __init__(self, optimizer: torch.optim.Optimizer, start_factor: float = 1 / 3, end_factor: float = 1.0,
                 total_iters: int = 5):
        raise NotImplementedError("b03-09: write LinearLR")


class OneCycleLR(LRSchedule):
    """torch.optim.lr_scheduler.OneCycleLR's 1cycle policy with the same arguments and defaults, its momentum (SGD) or
    beta1 (Adam) cycling included. ValueErrors naming the argument (total_steps / epochs / steps_per_epoch,
    pct_start, anneal_strategy, a per-group list of the wrong length) and one saying the optimizer has no momentum;
    stepping past total_steps is a ValueError naming total_steps."""

    def __init__(self, optimizer: torch.optim.Optimizer, max_lr, total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True, base_momentum=0.85, max_momentum=0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4, three_phase: bool = False):
        raise NotImplementedError("b03-09: write OneCycleLR")
