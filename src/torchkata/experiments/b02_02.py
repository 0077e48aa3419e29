"""b02-02 experiment: a04's, run on functions of plain tensors (linear_forward/backward, mse_loss/backward and
sgd_step) instead of a layer object: the backward against autograd, gradient descent on diabetes against the same
training through autograd and against torch.linalg.lstsq's optimum, and the timings against F.linear."""
from __future__ import annotations

import torch

from torchkata.experiments.a04 import SCALES, run_regression  # noqa: F401  (the same scales as a04)
from torchkata.pipeline.runner import RunContext


def run(ctx: RunContext) -> None:
    impl, lr = ctx.impl, ctx.params["lr"]

    def trainer(in_features, generator):  # from zero: the loss is convex, any start reaches the same optimum
        weight, bias = torch.zeros(1, in_features, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
        return (lambda x, y: impl.sgd_step(weight, bias, x, y, lr), lambda x: impl.linear_forward(x, weight, bias),
                lambda: (weight, bias))

    def on(x, weight, bias):
        return lambda: impl.linear_forward(x, weight, bias), lambda g: impl.linear_backward(g, x, weight)

    run_regression(ctx, trainer, on, "b02-02 regression by hand")
