"""a15 experiment: the polynomial schedule beside torch's PolynomialLR (and, with warm-up, beside SequentialLR of
LinearLR and PolynomialLR) for 1,000 steps, resumed half-way from its state_dict; its curves for several powers; and
what the power and a warm-up change in a short training (b03-09's digits MLP, SGD with momentum, stepped per batch)."""
from __future__ import annotations

from torch.optim import lr_scheduler

from torchkata.experiments import b03_09
from torchkata.experiments.b03_09 import agreement, bench_step, new_optimizer, plot_schedules, train_under
from torchkata.pipeline.runner import RunContext

SCALES = b03_09.SCALES  # the same digits training and step counts
POWERS = [0.5, 1.0, 2.0]


def torch_polynomial(opt, total_iters: int, power: float, warmup_iters: int = 0, warmup_start_factor: float = 1 / 3):
    decay = lr_scheduler.PolynomialLR(opt, total_iters=total_iters, power=power)
    if warmup_iters == 0:
        return decay
    warmup = lr_scheduler.LinearLR(opt, start_factor=warmup_start_factor, end_factor=1.0, total_iters=warmup_iters)
    return lr_scheduler.SequentialLR(opt, [warmup, decay], milestones=[warmup_iters])


def agreement_cases(impl, steps: int) -> dict[str, tuple]:
    cases = {f"power {power}": dict(total_iters=steps * 3 // 4, power=power) for power in [*POWERS, 3.0]}
    cases["power 1, warm-up steps/10"] = dict(total_iters=steps * 3 // 4, power=1.0, warmup_iters=steps // 10,
                                              warmup_start_factor=0.05)
    return {label: (lambda opt, o=options: impl.PolynomialLR(opt, **o), lambda opt, o=options: torch_polynomial(opt, **o),
                    "sgd") for label, options in cases.items()}


def training_schedules(impl, steps_per_epoch: int, epochs: int) -> dict[str, tuple]:
    total = epochs * steps_per_epoch
    schedules = {"constant": (lambda opt: None, "epoch")}
    for power in POWERS:
        schedules[f"power {power}"] = (lambda opt, power=power: impl.PolynomialLR(opt, total, power), "step")
    warmup = max(1, total // 10)
    schedules["power 1 + warm-up (first 10%)"] = (
        lambda opt: impl.PolynomialLR(opt, total - warmup, 1.0, warmup_iters=warmup, warmup_start_factor=0.05), "step")
    return schedules


def run(ctx: RunContext) -> None:
    impl, p = ctx.impl, ctx.params
    curves = agreement(ctx, agreement_cases(impl, p["steps"]))
    trained = train_under(ctx, lambda steps_per_epoch: training_schedules(impl, steps_per_epoch, p["epochs"]),
                          "a15: digits MLP, SGD, polynomial decay")
    plot_schedules(ctx, curves, *trained, "a15")
    bench_step(ctx, impl.PolynomialLR(new_optimizer("sgd"), total_iters=10**9, power=2.0),
               lr_scheduler.PolynomialLR(new_optimizer("sgd"), total_iters=10**9, power=2.0))
