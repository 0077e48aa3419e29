"""m2-core-2: the measurements of a convergence race between SGD and Adam: per-step losses, a smoothed curve, the
steps to reach a loss, the winner of a learning-rate sweep, and the largest gap between two curves.

Grade it:  torchkata check m2-core-2
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch.nn.functional as F
from torch import Tensor


class LossRecorder:
    """A loss_fn for training.loop's fit that also keeps each training batch's loss (a float, in step order) in
    `losses`; evaluation (run under no_grad, so its loss needs no gradient) is not recorded."""

    def __init__(self, loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy):
        raise NotImplementedError("m2-core-2: write LossRecorder.__init__")

    def __call__(self, output: Tensor, target: Tensor) -> Tensor:
        """loss_fn(output, target), recorded when it is a training step's."""
        raise NotImplementedError("m2-core-2: write LossRecorder.__call__")


def running_mean(values: Sequence[float], window: int) -> list[float]:
    """Mean of the last `window` values at each position from the window-th on: len(values) - window + 1 numbers.
    A window below 1 is a ValueError that names the window."""
    raise NotImplementedError("m2-core-2: write running_mean")


def steps_to_reach(losses: Sequence[float], threshold: float, window: int = 1) -> int | None:
    """The number of steps after which the mean of the last `window` losses is first at most `threshold`;
    None when the curve never gets there."""
    raise NotImplementedError("m2-core-2: write steps_to_reach")


def best_learning_rate(final_losses: dict[float, float]) -> float:
    """The learning rate of a sweep {lr: final loss} with the lowest loss. A diverged run (nan or inf) never wins;
    of equal losses the smaller rate wins. No finite loss at all: a ValueError that says so ("finite")."""
    raise NotImplementedError("m2-core-2: write best_learning_rate")


def max_curve_difference(ours: Sequence[float], theirs: Sequence[float]) -> float:
    """Largest |ours[i] - theirs[i]| of two loss curves of the same length (0. for two empty ones); a value that
    is nan on one side only, or inf against a finite one, counts as inf. Curves of different lengths: a ValueError
    naming the length."""
    raise NotImplementedError("m2-core-2: write max_curve_difference")
