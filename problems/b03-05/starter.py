"""b03-05: the update-to-weight ratio ‖ΔW‖ / ‖W‖ of each layer over a training.

Grade it:  torchkata check b03-05
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


def weights(model: nn.Module) -> dict[str, Tensor]:
    """A detached copy of every weight matrix (parameters of 2 or more dims: biases and norms left out),
    keyed by the parameter's name."""
    raise NotImplementedError("b03-05: write weights")


def update_ratios(before: dict[str, Tensor], after: dict[str, Tensor]) -> dict[str, float]:
    """{name: ‖after − before‖ / ‖before‖} (Frobenius norms) for the same names; ValueError when the names
    differ."""
    raise NotImplementedError("b03-05: write update_ratios")


class UpdateRecorder:
    """Records update_ratios of `model`'s weights for every step of `optimizer`, through the optimizer's step
    hooks: `ratios[name]` is the list over steps. `remove()` takes the hooks off."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer):
        raise NotImplementedError("b03-05: write UpdateRecorder")

    def remove(self) -> None:
        raise NotImplementedError("b03-05: write UpdateRecorder.remove")
