"""Early stopping by hand: watch a validation figure once per epoch, remember the best value and a copy of the
model's weights at it, and stop once `patience` epochs in a row fail to improve on it by more than `min_delta`."""
from __future__ import annotations

import copy
import math

from torch import nn

MODES = ("min", "max")


class EarlyStopping:
    """stopper.step(value, model) after each epoch's validation; True when training should stop.

    An epoch improves when value < best - min_delta (mode "min", a loss) or value > best + min_delta (mode
    "max", an accuracy); the first epoch always does, unless NaN: NaN never improves. `best_state` is a copy of the
    model's state_dict at the best epoch (not references to the live tensors, which the optimizer changes);
    restore(model) loads it back."""

    def __init__(self, patience: int = 5, min_delta: float = 0.0, mode: str = "min"):
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience must be an int of at least 1, got {patience!r}")
        if not min_delta >= 0:
            raise ValueError(f"min_delta must be at least 0, got {min_delta!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.patience, self.min_delta, self.mode = patience, float(min_delta), mode
        self.best: float | None = None
        self.best_epoch = 0  # epochs are counted from 1; 0: none seen yet
        self.best_state: dict | None = None
        self.epoch = self.bad_epochs = 0
        self.stopped = False

    def improves(self, value: float) -> bool:
        if math.isnan(value):  # a diverged epoch, first or not
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def step(self, value: float, model: nn.Module | None = None) -> bool:
        """Record one epoch's validation `value` (and the model's weights if it is the best so far)."""
        self.epoch += 1
        value = float(value)
        if self.improves(value):
            self.best, self.best_epoch, self.bad_epochs = value, self.epoch, 0
            if model is not None:
                self.best_state = copy.deepcopy(model.state_dict())
        else:
            self.bad_epochs += 1
        self.stopped = self.bad_epochs >= self.patience
        return self.stopped

    def restore(self, model: nn.Module) -> None:
        """Load the best epoch's weights into `model`."""
        if self.best_state is None:
            raise RuntimeError("no weights to restore: step(value, model) was never given the model")
        model.load_state_dict(self.best_state)
