"""b03-09 (and a15, which adds its schedule here by subclassing): learning-rate schedules written by hand, each
giving the same learning rate as its torch.optim.lr_scheduler counterpart at every step.

A schedule owns an optimizer and a step count `last_epoch` (torch's name: it counts epochs or batches, whichever the
caller steps on). Each group's learning rate is a closed-form function of that count and of the group's base
learning rate (its lr when the schedule was made, kept in the group as "initial_lr" as torch does):

    StepLR              base · gamma^⌊t / step_size⌋
    CosineAnnealingLR   eta_min + (base - eta_min) · (1 + cos(π t / T_max)) / 2       (periodic past T_max)
    LinearLR (warm-up)  base · (start + (end - start) · min(t, total_iters) / total_iters)
    OneCycleLR          up from max_lr / div_factor to max_lr over pct_start of the steps, then down to
                        max_lr / (div_factor · final_div_factor); momentum (or Adam's beta1) the other way round

torch computes most of these recursively (each lr from the previous one); a closed form gives the same values to
rounding and has two advantages: the state is just the count, and a restored schedule needs nothing from the
optimizer. Making a schedule applies step 0 at once, as torch does, so the first optimizer step already runs at
the schedule's first value; call `step()` after each optimizer step.
"""
from __future__ import annotations

import math

import torch


def linear_factor(step: int, start: float, end: float, total: int) -> float:
    """From `start` at step 0 to `end` at step `total`, then `end`: LinearLR's multiplier, and a warm-up's."""
    return start + (end - start) * min(step, total) / total


def check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


class LRSchedule:
    """The machinery every schedule shares; a subclass defines `lr_at(step, base_lr)`."""

    def __init__(self, optimizer: torch.optim.Optimizer):
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"a schedule needs a torch.optim.Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])  # a second schedule on the same optimizer keeps the first's
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = 0
        self._apply()

    def lr_at(self, step: int, base_lr: float) -> float:
        raise NotImplementedError

    def _apply(self) -> None:
        """Write the learning rates of step `last_epoch` into the optimizer."""
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.lr_at(self.last_epoch, base_lr)
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def step(self) -> None:
        """Move to the next step (after the optimizer's step) and set its learning rates."""
        self.last_epoch += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """Everything but the optimizer, as torch's schedulers save: plain numbers and lists."""
        return {key: value for key, value in vars(self).items() if key != "optimizer"}

    def load_state_dict(self, state: dict) -> None:
        """Take the saved state and put its step's learning rates back into the optimizer (a closed form needs
        nothing else; torch's recursive schedulers rely on the optimizer's own restored state for that)."""
        self.__dict__.update(state)
        self._apply()


class StepLR(LRSchedule):
    def __init__(self, optimizer: torch.optim.Optimizer, step_size: int, gamma: float = 0.1):
        check_positive_int("step_size", step_size)
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer)

    def lr_at(self, step: int, base_lr: float) -> float:
        return base_lr * self.gamma ** (step // self.step_size)


class CosineAnnealingLR(LRSchedule):
    def __init__(self, optimizer: torch.optim.Optimizer, T_max: int, eta_min: float = 0.0):
        check_positive_int("T_max", T_max)
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer)

    def lr_at(self, step: int, base_lr: float) -> float:
        # past T_max the cosine climbs back to base_lr by 2 T_max, as torch's recursion does
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * step / self.T_max)) / 2


class LinearLR(LRSchedule):
    """The warm-up: the lr grows linearly from start_factor · base to end_factor · base over total_iters steps."""

    def __init__(self, optimizer: torch.optim.Optimizer, start_factor: float = 1 / 3, end_factor: float = 1.0,
                 total_iters: int = 5):
        if not 0 < start_factor <= 1:
            raise ValueError(f"start_factor must lie in (0, 1], got {start_factor}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"end_factor must lie in [0, 1], got {end_factor}")
        check_positive_int("total_iters", total_iters)
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer)

    def lr_at(self, step: int, base_lr: float) -> float:
        return base_lr * linear_factor(step, self.start_factor, self.end_factor, self.total_iters)


def _per_group(name: str, value, optimizer: torch.optim.Optimizer) -> list[float]:
    """One value for every group, or a list with exactly one per group."""
    if isinstance(value, (list, tuple)):
        if len(value) != len(optimizer.param_groups):
            raise ValueError(f"{name} has {len(value)} values for {len(optimizer.param_groups)} parameter groups")
        return list(value)
    return [value] * len(optimizer.param_groups)


class OneCycleLR(LRSchedule):
    """Smith's 1cycle policy, called after every batch: total_steps (or epochs · steps_per_epoch) steps in all.

    The learning rate goes initial -> max -> min (two phases) or initial -> max -> initial -> min (three_phase), with
    initial = max_lr / div_factor and min = initial / final_div_factor; each phase anneals by a half cosine or a
    straight line. With cycle_momentum the optimizer's momentum (SGD) or beta1 (Adam) moves the other way: high while
    the lr is low, base_momentum at the lr's peak.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, max_lr, total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True, base_momentum=0.85, max_momentum=0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4, three_phase: bool = False):
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("give total_steps, or epochs and steps_per_epoch")
            check_positive_int("epochs", epochs)
            check_positive_int("steps_per_epoch", steps_per_epoch)
            total_steps = epochs * steps_per_epoch
        check_positive_int("total_steps", total_steps)
        if not 0 <= pct_start <= 1:
            raise ValueError(f"pct_start must lie in [0, 1], got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.total_steps, self.anneal_strategy, self.cycle_momentum = total_steps, anneal_strategy, cycle_momentum
        self.div_factor, self.final_div_factor = div_factor, final_div_factor
        up = pct_start * total_steps - 1  # the step the lr peaks at
        self.phase_ends = [up, 2 * up, total_steps - 1] if three_phase else [up, total_steps - 1]
        self.three_phase = three_phase
        for group, peak in zip(optimizer.param_groups, _per_group("max_lr", max_lr, optimizer)):
            group["initial_lr"] = peak / div_factor  # the cycle starts low, whatever lr the optimizer was made with
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError("cycle_momentum needs an optimizer with a momentum or betas (or cycle_momentum=False)")
            self.use_beta1 = "betas" in optimizer.defaults
            self.base_momentums = _per_group("base_momentum", base_momentum, optimizer)
            self.max_momentums = _per_group("max_momentum", max_momentum, optimizer)
        super().__init__(optimizer)

    def _phase(self, step: int) -> tuple[int, float]:
        """(the phase that `step` falls in, the fraction of it done)."""
        if step > self.total_steps:
            raise ValueError(f"stepped {step} times, beyond total_steps = {self.total_steps}")
        start = 0.0
        for i, end in enumerate(self.phase_ends):
            if step <= end or i == len(self.phase_ends) - 1:
                return i, (step - start) / (end - start)
            start = end

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)
        return start + (end - start) * pct

    def lr_at(self, step: int, base_lr: float) -> float:
        peak, low = base_lr * self.div_factor, base_lr / self.final_div_factor
        points = [base_lr, peak, base_lr, low] if self.three_phase else [base_lr, peak, low]
        i, pct = self._phase(step)
        return self._anneal(points[i], points[i + 1], pct)

    def _apply(self) -> None:
        super()._apply()
        if not self.cycle_momentum:
            return
        i, pct = self._phase(self.last_epoch)
        for group, low, high in zip(self.optimizer.param_groups, self.base_momentums, self.max_momentums):
            points = [high, low, high, high] if self.three_phase else [high, low, high]
            momentum = self._anneal(points[i], points[i + 1], pct)
            if self.use_beta1:
                group["betas"] = (momentum, *group["betas"][1:])
            else:
                group["momentum"] = momentum
