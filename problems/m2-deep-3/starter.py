"""m2-deep-3: the clipping step of a training that records each step's gradient norm before clipping, and the
test of whether a loss curve diverged.

Grade it:  torchkata check m2-deep-3
"""
from __future__ import annotations

from typing import Sequence

from torch import nn

from torchkata.autograd import clipping  # a17's clip_grad_norm_ and total_norm: use them, not torch.nn.utils


class GradientClipper:
    """before_step(model, step) for training.loop's fit: the total `norm_type`-norm of the gradients, taken before
    clipping, goes to `norms` (floats); with a `max_norm` the gradients are then clipped to it, and `clipped` counts
    the steps whose norm was above it. max_norm None records only and leaves the gradients alone. A max_norm that
    is not positive is a ValueError naming max_norm. Parameters without a gradient are skipped."""

    def __init__(self, max_norm: float | None, norm_type: float = 2.0):
        raise NotImplementedError("m2-deep-3: write GradientClipper.__init__")

    def __call__(self, model: nn.Module, step: int) -> None:
        raise NotImplementedError("m2-deep-3: write GradientClipper.__call__")

    @property
    def active_fraction(self) -> float:
        """The fraction of the recorded steps where clipping changed the gradients (0. before any step)."""
        raise NotImplementedError("m2-deep-3: write GradientClipper.active_fraction")


def first_divergence(losses: Sequence[float], factor: float = 10.0) -> int | None:
    """Index of the first loss that is not finite or above `factor` times the first loss; None for a curve that
    stays below. A factor not above 1 is a ValueError naming the factor."""
    raise NotImplementedError("m2-deep-3: write first_divergence")
