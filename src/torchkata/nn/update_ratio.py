"""b03-05: how big each optimizer step is beside the weights it changes: per layer, ‖W_after − W_before‖ / ‖W_before‖
(Frobenius norms). Around 1e-3 a layer learns steadily; near 1e-1 each step rewrites a tenth of the weights and
training is unstable; at 1e-5 it hardly moves.

    recorder = UpdateRecorder(model, optimizer)   # hooks on the optimizer's step
    fit(model, optimizer, ...)                    # recorder.ratios["0.weight"][k]: the ratio of step k
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


def weights(model: nn.Module) -> dict[str, Tensor]:
    """A detached copy of every weight matrix (parameters of 2 or more dims: biases and norms left out)."""
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.dim() >= 2}


def update_ratios(before: dict[str, Tensor], after: dict[str, Tensor]) -> dict[str, float]:
    """{name: ‖after − before‖ / ‖before‖} for the same names; ValueError when the names differ."""
    if before.keys() != after.keys():
        raise ValueError(f"before and after name different weights: {sorted(before)} against {sorted(after)}")
    return {name: float(torch.linalg.vector_norm(after[name] - before[name]) / torch.linalg.vector_norm(before[name]))
            for name in before}


class UpdateRecorder:
    """Records update_ratios of `model`'s weights for every step of `optimizer`, through the optimizer's step
    hooks: `ratios[name]` is the list over steps. `remove()` takes the hooks off."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer):
        self.model, self.before = model, None
        self.ratios: dict[str, list[float]] = {name: [] for name in weights(model)}
        self.handles = [optimizer.register_step_pre_hook(self.pre_step),
                        optimizer.register_step_post_hook(self.post_step)]

    def pre_step(self, optimizer, args, kwargs) -> None:
        self.before = weights(self.model)

    def post_step(self, optimizer, args, kwargs) -> None:
        for name, ratio in update_ratios(self.before, weights(self.model)).items():
            self.ratios[name].append(ratio)

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
