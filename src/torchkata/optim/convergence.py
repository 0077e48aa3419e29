"""m2-core-2: the measurements of a convergence race between optimizers (SGD against Adam, both hand-written:
torchkata.optim.sgd and torchkata.optim.adaptive): the loss of every training step, a smoothed curve, the steps to
reach a loss, the winner of a learning-rate sweep, and the largest gap between two runs' curves.

    recorder = LossRecorder()
    fit(model, optimizer, train, test, epochs, batch_size, generator, loss_fn=recorder)
    steps_to_reach(recorder.losses, threshold=0.1, window=20)

A batch loss is noisy: a curve is read through its running mean over `window` steps, so that one lucky batch does
not count as convergence. A sweep compares learning rates by the final loss they reach, and a diverged run (a
non-finite loss) must never win it, which a plain min() over floats with nan in it does not guarantee.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


class LossRecorder:
    """A loss_fn for training.loop's fit that also keeps each training batch's loss (a float, in step order) in
    `losses`; evaluation (run under no_grad, so its loss needs no gradient) is not recorded."""

    def __init__(self, loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy):
        self.loss_fn = loss_fn
        self.losses: list[float] = []

    def __call__(self, output: Tensor, target: Tensor) -> Tensor:
        loss = self.loss_fn(output, target)
        if loss.requires_grad:
            self.losses.append(loss.item())
        return loss


def running_mean(values: Sequence[float], window: int) -> list[float]:
    """Mean of the last `window` values at each position from the window-th on: len(values) - window + 1 numbers."""
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    # each window summed on its own (exactly, by fsum): a running total would carry one nan or rounding onwards
    return [math.fsum(values[end - window:end]) / window for end in range(window, len(values) + 1)]


def steps_to_reach(losses: Sequence[float], threshold: float, window: int = 1) -> int | None:
    """The number of steps after which the mean of the last `window` losses is first at most `threshold`;
    None when the curve never gets there."""
    for end, mean in enumerate(running_mean(losses, window), start=window):
        if mean <= threshold:
            return end
    return None


def best_learning_rate(final_losses: dict[float, float]) -> float:
    """The learning rate of a sweep {lr: final loss} with the lowest loss. A diverged run (nan or inf) never wins;
    of equal losses the smaller rate wins (the safer one)."""
    finite = {lr: loss for lr, loss in final_losses.items() if math.isfinite(loss)}
    if not finite:
        raise ValueError(f"no learning rate of the sweep reached a finite loss: {final_losses}")
    return min(finite, key=lambda lr: (finite[lr], lr))


def max_curve_difference(ours: Sequence[float], theirs: Sequence[float]) -> float:
    """Largest |ours[i] - theirs[i]| of two loss curves of the same length (0. for two empty ones); a value that
    is nan on one side only, or inf against a finite one, counts as inf: the curves are not the same."""
    if len(ours) != len(theirs):
        raise ValueError(f"the curves differ in length: {len(ours)} steps against {len(theirs)}")
    gaps = [0.0 if a == b or (math.isnan(a) and math.isnan(b)) else abs(a - b) for a, b in zip(ours, theirs)]
    return max((gap if not math.isnan(gap) else math.inf for gap in gaps), default=0.0)
