"""b03-06: early stopping by hand.

Grade it:  torchkata check b03-06
"""
from __future__ import annotations

from torch import nn


class EarlyStopping:
    """stopper.step(value, model) after each epoch's validation; True when training should stop.

    EarlyStopping(patience=5, min_delta=0.0, mode="min"): ValueError naming the argument unless patience is an
    int of at least 1, min_delta at least 0 (not NaN), mode "min" or "max".

    Attributes: patience, min_delta, mode; best (None before the first improvement), best_epoch (0 before it;
    epochs count from 1), best_state (a copy of model.state_dict() at the best epoch, None if no model was
    given), epoch (epochs seen), bad_epochs (epochs in a row without improvement), stopped.

    An epoch improves when value < best - min_delta (mode "min", a loss) or value > best + min_delta (mode
    "max", an accuracy); the first epoch always does, unless NaN: NaN never improves. Training stops once
    `patience` epochs in a row do not improve."""

    def __init__(self, patience: int = 5, min_delta: float = 0.0, mode: str = "min"):
        raise NotImplementedError("b03-06: write EarlyStopping.__init__")

    def improves(self, value: float) -> bool:
        """Whether `value` improves on the best so far (see above)."""
        raise NotImplementedError("b03-06: write EarlyStopping.improves")

    def step(self, value: float, model: nn.Module | None = None) -> bool:
        """Record one epoch's validation `value` (and a copy of the model's weights if it is the best so far);
        return whether to stop."""
        raise NotImplementedError("b03-06: write EarlyStopping.step")

    def restore(self, model: nn.Module) -> None:
        """Load the best epoch's weights into `model`; RuntimeError mentioning restore if none were saved."""
        raise NotImplementedError("b03-06: write EarlyStopping.restore")
