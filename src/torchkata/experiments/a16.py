"""a16 experiment: linear regression on scikit-learn's diabetes (a04's split and standardisation) by gradient descent
with the update written by hand under torch.no_grad, at several learning rates given as fractions of the stability
bound 2/λ_max: the runs below it converge to torch.linalg.lstsq's solution, the one above diverges at the rate the
Hessian predicts. The trajectory is compared with torch.optim.SGD's from the same start, and timed against it."""
from __future__ import annotations

import torch
from torch import Tensor

from torchkata.experiments.a04 import diabetes
from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"test_fraction": 0.2, "lr_fractions": [0.1, 0.5, 0.95, 1.05], "steps": 12, "diverge_steps": 12,
              "bench_steps": 5, "bench_seconds": 0.02},
    # at 0.95 of the bound the slowest direction (λ_min/λ_max ≈ 0.002 on diabetes) contracts by 1 - 1.9·λ_min/λ_max
    # a step: 6000 steps bring the parameters within ~1e-8 of lstsq's
    "default": {"test_fraction": 0.2, "lr_fractions": [0.1, 0.5, 0.95, 1.05], "steps": 6000, "diverge_steps": 200,
                "bench_steps": 100, "bench_seconds": 0.3},
    "full": {"test_fraction": 0.2, "lr_fractions": [0.01, 0.1, 0.5, 0.95, 1.0, 1.05], "steps": 20000,
             "diverge_steps": 200, "bench_steps": 100, "bench_seconds": 1.0},
}
BEST = 0.95  # the fraction of the bound whose end point is compared with lstsq's
PARAM_TOLERANCE = 1e-6  # the bar: learnt weights and bias within this of lstsq's (target units, scale ~150)
GROWTH_WINDOW = 50  # steps at the end of a diverging run over which its loss growth per step is measured


def sgd_fit(x: Tensor, y: Tensor, lr: float, steps: int) -> list[float]:
    """The same descent through torch.optim.SGD: the baseline trajectory (losses before each step)."""
    weight = torch.zeros(x.shape[1], dtype=x.dtype, requires_grad=True)
    bias = torch.zeros((), dtype=x.dtype, requires_grad=True)
    optimizer, losses = torch.optim.SGD([weight, bias], lr=lr), []
    for _ in range(steps):
        loss = ((x @ weight + bias - y) ** 2).mean()
        loss.backward()
        losses.append(loss.item())
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return losses


def with_grad(fn):
    """compare() times under torch.no_grad: a training needs autograd on."""
    def timed():
        with torch.enable_grad():
            return fn()
    return timed


def run(ctx: RunContext) -> None:
    p, impl = ctx.params, ctx.impl
    x_train, y_train, x_test, y_test = diabetes(ctx)
    y_train, y_test = y_train.squeeze(1), y_test.squeeze(1)
    design = torch.cat([x_train, torch.ones(len(x_train), 1, dtype=x_train.dtype)], dim=1)
    optimum = torch.linalg.lstsq(design, y_train[:, None]).solution.squeeze(1)
    optimum_loss = float(((design @ optimum - y_train) ** 2).mean())

    # λ of the Hessian from autograd (no formula of the exercise's), to check the bound the exercise computes
    def loss_of(theta):
        return ((x_train @ theta[:-1] + theta[-1] - y_train) ** 2).mean()
    lambdas = torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss_of, torch.zeros_like(optimum)))
    lambda_max, lambda_min = float(lambdas[-1]), float(lambdas[0])
    bound = impl.stability_bound(x_train)

    runs, curves = {}, {}
    for fraction in p["lr_fractions"]:
        lr = fraction * bound
        steps = p["steps"] if fraction <= 1 else p["diverge_steps"]  # a diverging run overflows if left running
        weight, bias, losses = impl.fit_linear_regression(x_train, y_train, lr, steps)
        learnt = torch.cat([weight, bias[None]])
        record = {"lr": lr, "steps": steps, "first_loss": losses[0], "final_loss": losses[-1],
                  "diverged": not losses[-1] < losses[0], "param_max_abs_error": float((learnt - optimum).abs().max()),
                  "test_mse": float(((x_test @ weight + bias - y_test) ** 2).mean())}
        if fraction > 1:  # the top direction's error grows by |1 - lr·λ_max| a step, the loss by its square
            window = min(GROWTH_WINDOW, steps - 1)
            record |= {"growth_per_step": (losses[-1] / losses[-1 - window]) ** (1 / window),
                       "predicted_growth_per_step": (lr * lambda_max - 1) ** 2}
        runs[f"{fraction:g}"], curves[fraction] = record, losses
        for step in sorted({round(steps ** (i / 49)) for i in range(50)}):
            ctx.log(f"train_loss_lr{fraction:g}", losses[step - 1], step)

    best = runs[f"{BEST:g}"]
    baseline = sgd_fit(x_train, y_train, best["lr"], p["steps"])
    diverging = [r for f, r in runs.items() if float(f) > 1]
    ctx.metrics.update(
        param_max_abs_error=best["param_max_abs_error"], param_tolerance=PARAM_TOLERANCE,
        matches_lstsq=best["param_max_abs_error"] <= PARAM_TOLERANCE,
        stability_bound=bound, lambda_max=lambda_max, lambda_min=lambda_min,
        bound_rel_error=abs(bound * lambda_max / 2 - 1),
        bound_checked=all(r["diverged"] == (float(f) > 1) for f, r in runs.items()),
        growth_rel_error=max((abs(r["growth_per_step"] / r["predicted_growth_per_step"] - 1) for r in diverging),
                             default=0.0),
        sgd_loss_max_rel_diff=max(abs(a / b - 1) for a, b in zip(curves[BEST], baseline)),
        lstsq_train_mse=optimum_loss, lstsq_test_mse=float(((x_test @ optimum[:-1] + optimum[-1] - y_test) ** 2).mean()),
        runs=runs, train_rows=len(x_train), test_rows=len(x_test), lstsq=optimum.tolist())

    from matplotlib.ticker import NullLocator  # here: runs without figures do not need matplotlib

    fig = ctx.figure(figsize=(6.5, 4))
    ax = fig.subplots()
    for i, (fraction, losses) in enumerate(curves.items()):
        excess = [max(loss - optimum_loss, 1e-12) for loss in losses]  # what is left to gain, on a log axis
        ax.plot(range(1, len(losses) + 1), excess, color=f"C{i}",
                label=f"lr = {fraction:g} · 2/λ_max = {fraction * bound:.3g}")
    ax.plot(range(1, len(baseline) + 1), [max(b - optimum_loss, 1e-12) for b in baseline], ":", color="k",
            label=f"torch.optim.SGD at {BEST:g} · 2/λ_max")
    ax.set(xscale="log", yscale="log", xlabel="gradient step (full batch)", ylabel="train MSE − lstsq's MSE",
           title=f"a16 diabetes: 2/λ_max = {bound:.4f} (λ_max {lambda_max:.3g}, λ_min {lambda_min:.3g})")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_minor_locator(NullLocator())  # minor log ticks are most of the drawing time
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "learning_rates")

    steps = p["bench_steps"]
    ctx.bench["fit"] = compare(with_grad(lambda: impl.fit_linear_regression(x_train, y_train, best["lr"], steps)),
                               with_grad(lambda: sgd_fit(x_train, y_train, best["lr"], steps)), p["bench_seconds"])
    ctx.bench.update(fit_ratio=ctx.bench["fit"]["ratio"], bench_steps=steps,
                     step_us=ctx.bench["fit"]["impl_s"] / steps * 1e6)
