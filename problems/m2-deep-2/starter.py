"""m2-deep-2: dynamic loss scaling, as torch.amp.GradScaler does it, written yourself.

Grade it:  torchkata check m2-deep-2
"""
from __future__ import annotations

import torch
from torch import Tensor


class DynamicLossScaler:
    """Scale the loss so that float16 gradients do not flush to zero; skip the steps whose gradients overflowed.

    Settings as GradScaler's (ValueError naming the setting when out of range): init_scale > 0 and finite,
    growth_factor > 1, 0 < backoff_factor < 1, growth_interval >= 1. Attributes: scale_value (a float, kept at
    float32 precision as GradScaler keeps its scale), growth_factor, backoff_factor, growth_interval, enabled,
    clean_steps (clean steps since the last change), found_inf (None until the step's gradients are unscaled,
    then a bool), history (the scale after each update), skipped (overflowed steps).
    enabled=False: scale returns the loss itself, unscale_ finds nothing, step always steps, update does nothing.
    """

    def __init__(self, init_scale: float = 2.0 ** 16, growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True):
        raise NotImplementedError("m2-deep-2: write DynamicLossScaler.__init__")

    def scale(self, loss: Tensor) -> Tensor:
        """loss * scale."""
        raise NotImplementedError("m2-deep-2: write scale")

    def unscale_(self, optimizer: torch.optim.Optimizer) -> bool:
        """Multiply every gradient of the optimizer's parameters by 1/scale (the reciprocal rounded to float32,
        as GradScaler); record and return whether any is inf or nan. A second call in the same step is a
        RuntimeError that names unscale_."""
        raise NotImplementedError("m2-deep-2: write unscale_")

    def step(self, optimizer: torch.optim.Optimizer) -> bool:
        """Unscale unless unscale_ was called already; optimizer.step() only if every gradient is finite.
        Returns whether it stepped."""
        raise NotImplementedError("m2-deep-2: write step")

    def update(self) -> None:
        """After an overflow: scale *= backoff_factor, clean_steps = 0. Otherwise clean_steps += 1, and at
        growth_interval: scale *= growth_factor (kept if it stays finite in float32), clean_steps = 0. Then append
        the scale to history and reset found_inf. Before any unscale in this step: RuntimeError naming update."""
        raise NotImplementedError("m2-deep-2: write update")

    def loss_fn(self, loss_fn):
        """For training.loop: a loss_fn whose value is loss_fn's but whose backward scales the gradient."""
        raise NotImplementedError("m2-deep-2: write loss_fn")

    def before_step(self, optimizer: torch.optim.Optimizer):
        """For training.loop: before_step(model, step) that unscales, drops the gradients after an overflow (so
        the loop's optimizer.step() changes nothing) and updates."""
        raise NotImplementedError("m2-deep-2: write before_step")

    def state_dict(self) -> dict:
        raise NotImplementedError("m2-deep-2: write state_dict")

    def load_state_dict(self, state: dict) -> None:
        raise NotImplementedError("m2-deep-2: write load_state_dict")
