"""b02-03 experiment: the hand-written Huber loss against F.huber_loss over random shapes, deltas and reductions, the
loss and its derivative against the residual beside MSE and L1, a robust line fit with outliers (Huber against MSE),
and the forward and backward timed against PyTorch's at 4096x1024."""
from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from torchkata.autograd.timing import forward_backward
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"cases": 3, "max_rows": 32, "max_cols": 32, "points": 200, "fit_steps": 50,
              "bench_shape": [256, 256], "bench_seconds": 0.05},
    "default": {"cases": 8, "max_rows": 256, "max_cols": 256, "points": 1000, "fit_steps": 400,
                "bench_shape": [4096, 1024], "bench_seconds": 0.3},
    "full": {"cases": 64, "max_rows": 2048, "max_cols": 2048, "points": 100000, "fit_steps": 2000,
             "bench_shape": [16384, 4096], "bench_seconds": 1.0},
}
DELTAS = [0.1, 1.0, 3.0]
SLOPE, INTERCEPT, OUTLIER_SHARE = 2.0, 1.0, 0.1


def value_and_grads(fn, x, y, upstream, **options):
    x, y = x.detach().requires_grad_(), y.detach().requires_grad_()
    loss = fn(x, y, **options)
    return (loss.detach(), *torch.autograd.grad(loss, (x, y), upstream if loss.dim() else None))


def fit_line(loss_fn, x, y, steps):
    """Gradient descent on (slope, intercept) from 0 under `loss_fn(prediction, y)`."""
    params = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([params], lr=0.1, momentum=0.9)
    for _ in range(steps):
        loss = loss_fn(params[0] * x + params[1], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return params.detach()


def run(ctx: RunContext) -> None:
    p, g, huber_loss = ctx.params, ctx.generator, ctx.impl.huber_loss
    value_error = grad_error = 0.0
    for case in range(p["cases"]):
        shape = (int(torch.randint(1, p["max_rows"] + 1, (), generator=g)),
                 int(torch.randint(1, p["max_cols"] + 1, (), generator=g)))
        x = torch.randn(shape, generator=g, dtype=torch.float64) * 3
        y = torch.randn(shape, generator=g, dtype=torch.float64)
        upstream = torch.randn(shape, generator=g, dtype=torch.float64)
        for reduction, delta in itertools.product(["none", "mean", "sum"], DELTAS):
            ours = value_and_grads(huber_loss, x, y, upstream, reduction=reduction, delta=delta)
            want = value_and_grads(F.huber_loss, x, y, upstream, reduction=reduction, delta=delta)
            value_error = max(value_error, float((ours[0] - want[0]).abs().max()))
            grad_error = max(grad_error, *(float((o - w).abs().max()) for o, w in zip(ours[1:], want[1:])))
        ctx.log("grad_max_abs_error_so_far", grad_error, case)
    a = (torch.randn(3, 4, generator=g, dtype=torch.float64) * 2).requires_grad_()
    b = torch.randn(3, 4, generator=g, dtype=torch.float64).requires_grad_()
    fn = lambda u, v: huber_loss(u, v, delta=0.7)  # noqa: E731
    ctx.metrics.update(max_abs_error=value_error, grad_max_abs_error=grad_error, cases=p["cases"],
                       gradcheck=torch.autograd.gradcheck(fn, (a, b)), gradgradcheck=torch.autograd.gradgradcheck(fn, (a, b)))

    # robustness: a line with a tenth of the points thrown far off, fitted under Huber and under MSE
    x = torch.rand(p["points"], generator=g, dtype=torch.float64) * 4 - 2
    y = SLOPE * x + INTERCEPT + 0.1 * torch.randn(p["points"], generator=g, dtype=torch.float64)
    outliers = torch.rand(p["points"], generator=g) < OUTLIER_SHARE
    y[outliers] += 15 + 5 * torch.rand(int(outliers.sum()), generator=g, dtype=torch.float64)
    fits = {"huber (yours, delta 1)": fit_line(huber_loss, x, y, p["fit_steps"]),
            "mse": fit_line(F.mse_loss, x, y, p["fit_steps"])}
    ctx.metrics["line_fit"] = {name.split(" ")[0]: {"slope": float(f[0]), "intercept": float(f[1]),
                                                    "intercept_error": abs(float(f[1]) - INTERCEPT)}
                               for name, f in fits.items()}

    fig = ctx.figure(figsize=(13, 3.4))
    ax_loss, ax_grad, ax_fit = fig.subplots(1, 3)
    d = torch.linspace(-4, 4, 401, dtype=torch.float64).requires_grad_()
    for delta in DELTAS:
        loss = huber_loss(d, torch.zeros_like(d), reduction="none", delta=delta)
        (slope,) = torch.autograd.grad(loss.sum(), d)
        ax_loss.plot(d.detach(), loss.detach(), label=f"huber δ={delta:g}")
        ax_grad.plot(d.detach(), slope, label=f"huber δ={delta:g}")
    ax_loss.plot(d.detach(), d.detach() ** 2 / 2, "k:", label="d²/2")
    ax_loss.plot(d.detach(), d.detach().abs(), "k--", label="|d|")
    ax_loss.set(ylim=(0, 6), xlabel="residual d", ylabel="loss", title="b02-03: Huber loss")
    ax_grad.set(xlabel="residual d", ylabel="d loss / d d (your backward)", title="its derivative: clamp(d, -δ, δ)")
    ax_loss.legend(fontsize=7)
    ax_grad.legend(fontsize=7)
    ax_fit.plot(x[~outliers], y[~outliers], ".", color="0.6", markersize=2, label="points")
    ax_fit.plot(x[outliers], y[outliers], "x", color="tab:red", markersize=3, label=f"{int(outliers.sum())} outliers")
    line = torch.tensor([-2.0, 2.0], dtype=torch.float64)
    for name, f in fits.items():
        ax_fit.plot(line, f[0] * line + f[1], label=f"{name}: {float(f[0]):.2f}x + {float(f[1]):.2f}")
    ax_fit.set(xlabel="x", ylabel="y", title=f"fit of y = {SLOPE:g}x + {INTERCEPT:g} with outliers")
    ax_fit.legend(fontsize=7)
    ctx.save_figure(fig, "huber")

    x = torch.randn(*p["bench_shape"], generator=g).requires_grad_()
    y = torch.randn(*p["bench_shape"], generator=g)
    ctx.bench["huber_loss"] = forward_backward(huber_loss, F.huber_loss, (x, y), p["bench_seconds"])
    ctx.bench["forward_ratio"] = ctx.bench["huber_loss"]["forward"]["ratio"]
    ctx.bench["backward_ratio"] = ctx.bench["huber_loss"]["backward"]["ratio"]
    ctx.bench["shape"] = p["bench_shape"]
