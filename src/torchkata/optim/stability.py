"""m2-deep-3: what a training needs to show that gradient clipping keeps it stable: a `before_step` for
training.loop's fit that records each step's total gradient norm before clipping and clips it with the hand-written
clip_grad_norm_ of a17 (torchkata.autograd.clipping), counting the steps where the clip was active; and the step
where a loss curve diverges.

    clipper = GradientClipper(max_norm=0.25)          # GradientClipper(None): records the norms, clips nothing
    fit(model, optimizer, train, test, epochs, batch_size, generator, before_step=clipper)
    clipper.norms, clipper.active_fraction

Norm clipping rescales the whole gradient to length max_norm when it is longer, so one step of plain SGD moves the
weights by at most lr * max_norm: a spike of the gradient (a Transformer's attention logits growing, a loss
cliff) cannot throw the weights far enough for the next step to be worse still, the loop that ends in inf and nan.
"""
from __future__ import annotations

import math
from typing import Sequence

from torch import nn

from torchkata.autograd import clipping


class GradientClipper:
    """before_step(model, step): the total `norm_type`-norm of the gradients, taken before clipping, goes to
    `norms`; with a `max_norm` the gradients are then clipped to it, and `clipped` counts the steps whose norm was
    above it. max_norm None records only."""

    def __init__(self, max_norm: float | None, norm_type: float = 2.0):
        if max_norm is not None and not max_norm > 0:
            raise ValueError(f"max_norm must be positive (or None to record only), got {max_norm}")
        self.max_norm, self.norm_type = max_norm, norm_type
        self.norms: list[float] = []
        self.clipped = 0

    def __call__(self, model: nn.Module, step: int) -> None:
        params = [p for p in model.parameters() if p.grad is not None]
        if self.max_norm is None:
            norm = clipping.total_norm([p.grad for p in params], self.norm_type) if params else 0.0
        else:
            norm = clipping.clip_grad_norm_(params, self.max_norm, self.norm_type)
            self.clipped += bool(norm > self.max_norm)
        self.norms.append(float(norm))

    @property
    def active_fraction(self) -> float:
        """The fraction of the recorded steps where clipping changed the gradients (0. before any step)."""
        return self.clipped / len(self.norms) if self.norms else 0.0


def first_divergence(losses: Sequence[float], factor: float = 10.0) -> int | None:
    """Index of the first loss that is not finite or above `factor` times the first loss (a run that blew up);
    None for a curve that stays below."""
    if not factor > 1:
        raise ValueError(f"factor must be above 1, got {factor}")
    for i, loss in enumerate(losses):
        if not math.isfinite(loss) or loss > factor * losses[0]:
            return i
    return None
