"""a04 experiment (b02-02 runs the same one on its functions): the hand-written linear backward and MSE against
autograd over random shapes; linear regression on scikit-learn's diabetes trained by gradient descent without
autograd, beside the same training through autograd (torchkata.training.loop.fit) and against the closed-form least
squares optimum (torch.linalg.lstsq); the forward and backward timed against F.linear's."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from torchkata.data import tables
from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext
from torchkata.training.loop import batch_order, fit

SCALES = {
    "smoke": {"cases": 4, "max_size": 16, "steps": 200, "autograd_steps": 50, "lr": 0.2, "test_fraction": 0.2,
              "bench_shape": [256, 256, 64], "bench_seconds": 0.02},
    # full-batch gradient descent: the slowest direction of diabetes's (collinear) features contracts by
    # 1 - 2·lr·0.0077 a step, so 7000 steps bring the parameters within ~1e-8 of lstsq's
    "default": {"cases": 32, "max_size": 64, "steps": 7000, "autograd_steps": 500, "lr": 0.2, "test_fraction": 0.2,
                "bench_shape": [4096, 1024, 256], "bench_seconds": 0.3},
    "full": {"cases": 128, "max_size": 256, "steps": 20000, "autograd_steps": 2000, "lr": 0.2, "test_fraction": 0.2,
             "bench_shape": [4096, 1024, 1024], "bench_seconds": 1.0},
}
CURVE_POINTS = 100  # steps measured (test loss, distance to lstsq), logged and plotted: evenly spaced on a log axis
PARAM_TOLERANCE = 1e-6  # the bar: learnt weights and bias within this of lstsq's (target units, scale ~150)

# How an exercise's implementation is driven (a04: a Linear object, b02-02: functions on tensors):
# a trainer, made from (in_features, generator): (step(x, y) -> loss before the step, predict(x), parameters()),
# and a layer on given (x, weight, bias): (forward() -> y, backward(dL/dy) -> (dL/dx, dL/dweight, dL/dbias)).
Trainer = tuple[Callable[[Tensor, Tensor], Tensor], Callable[[Tensor], Tensor], Callable[[], tuple[Tensor, Tensor]]]
Layer = tuple[Callable[[], Tensor], Callable[[Tensor], tuple[Tensor, Tensor, Tensor]]]


def layer_object(impl, lr: float) -> tuple[Callable[[int, torch.Generator], Trainer], Callable[..., Layer]]:
    """a04's way: a Linear object's forward, backward and step around the MSE's forward and backward."""
    def trainer(in_features, generator):
        layer = impl.Linear(in_features, 1, generator=generator)

        def step(x, y):
            prediction = layer.forward(x)
            loss = impl.mse_loss(prediction, y)
            layer.backward(impl.mse_backward(prediction, y))
            layer.step(lr)
            return loss
        return step, layer.forward, lambda: (layer.weight, layer.bias)

    def on(x, weight, bias):
        layer = impl.Linear(weight.shape[1], weight.shape[0], dtype=weight.dtype)
        layer.weight, layer.bias = weight, bias
        return lambda: layer.forward(x), lambda g: (layer.backward(g), layer.grad_weight, layer.grad_bias)
    return trainer, on


def diabetes(ctx: RunContext) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(x_train, y_train [N, 1], x_test, y_test): features standardised with the training split's statistics."""
    table = tables.load(ctx.input("sklearn-tables"), "diabetes")
    train, test = tables.split(table, ctx.params["test_fraction"], ctx.generator)
    x_train, x_test = tables.standardize(train["features"], test["features"])
    return x_train, train["targets"][:, None], x_test, test["targets"][:, None]


def gradient_errors(ctx: RunContext, layer_on: Callable[..., Layer]) -> tuple[float, float]:
    """Max abs errors of the layer's forward against F.linear and of its backward against autograd's, float64."""
    g, p = ctx.generator, ctx.params
    value_error = grad_error = 0.0
    for case in range(p["cases"]):
        rows, n_in, n_out = (int(s) for s in torch.randint(1, p["max_size"] + 1, (3,), generator=g))
        lead = (rows,) if case % 2 else (2, rows)  # a batch of matrices every other case
        x, w, b = (torch.randn(s, generator=g, dtype=torch.float64).requires_grad_()
                   for s in (lead + (n_in,), (n_out, n_in), (n_out,)))
        want = F.linear(x, w, b)
        upstream = torch.randn(want.shape, generator=g, dtype=torch.float64)
        forward, backward = layer_on(x.detach(), w.detach(), b.detach())
        value_error = max(value_error, float((forward() - want.detach()).abs().max()))
        ours = backward(upstream)
        grad_error = max(grad_error, *(float((o - a).abs().max())
                                       for o, a in zip(ours, torch.autograd.grad(want, (x, w, b), upstream))))
    return value_error, grad_error


def run_regression(ctx: RunContext, make_trainer: Callable[[int, torch.Generator], Trainer],
                   layer_on: Callable[..., Layer], title: str) -> None:
    p, g = ctx.params, ctx.generator
    x_train, y_train, x_test, y_test = diabetes(ctx)
    n, n_in = x_train.shape
    design = torch.cat([x_train, torch.ones(n, 1, dtype=x_train.dtype)], dim=1)
    optimum = torch.linalg.lstsq(design, y_train).solution.squeeze(1)  # [weights..., bias]
    optimum_mse = {"train": float(((design @ optimum - y_train.squeeze(1)) ** 2).mean()),
                   "test": float(((x_test @ optimum[:-1] + optimum[-1] - y_test.squeeze(1)) ** 2).mean())}

    step, predict, parameters = make_trainer(n_in, g)
    weight, bias = parameters()
    autograd_model = nn.Linear(n_in, 1, dtype=torch.float64)
    with torch.no_grad():
        autograd_model.weight.copy_(weight)
        autograd_model.bias.copy_(bias)
    order_seed = int(torch.randint(2**62, (), generator=g))

    measured = {round(p["steps"] ** (i / (CURVE_POINTS - 1))) for i in range(CURVE_POINTS)}
    order, curve = torch.Generator().manual_seed(order_seed), []
    for epoch in range(1, p["steps"] + 1):  # full batch: one step an epoch (the order is drawn as fit draws it)
        (idx,) = batch_order(n, n, order)
        train_loss = float(step(x_train[idx], y_train[idx]))
        if epoch in measured or epoch <= p["autograd_steps"]:
            test_loss = float(F.mse_loss(predict(x_test), y_test))
            distance = float((torch.cat([t.flatten() for t in parameters()]) - optimum).abs().max())
            curve.append({"epoch": epoch, "train_loss": train_loss, "test_loss": test_loss, "distance": distance})
            if epoch in measured:
                for key in ("train_loss", "test_loss", "distance"):
                    ctx.log(key, curve[-1][key], epoch)

    # the same start, batches and learning rate through autograd and torch.optim.SGD, over the first steps
    reference = fit(autograd_model, torch.optim.SGD(autograd_model.parameters(), lr=p["lr"]), (x_train, y_train),
                    (x_test, y_test), p["autograd_steps"], n, torch.Generator().manual_seed(order_seed),
                    loss_fn=F.mse_loss)
    learnt = torch.cat([w.flatten() for w in parameters()])
    value_error, grad_error = gradient_errors(ctx, layer_on)
    ctx.metrics.update(
        max_abs_error=value_error, grad_max_abs_error=grad_error,
        param_max_abs_error=float((learnt - optimum).abs().max()), param_tolerance=PARAM_TOLERANCE,
        matches_lstsq=bool((learnt - optimum).abs().max() <= PARAM_TOLERANCE),
        train_mse=curve[-1]["train_loss"], test_mse=curve[-1]["test_loss"],
        lstsq_train_mse=optimum_mse["train"], lstsq_test_mse=optimum_mse["test"],
        autograd_curve_max_abs_diff=max(abs(o[k] - r[k]) for o, r in zip(curve, reference)
                                        for k in ("train_loss", "test_loss")),
        autograd_steps=p["autograd_steps"], steps=p["steps"], lr=p["lr"], train_rows=n, test_rows=len(x_test),
        learnt={"weight": learnt[:-1].tolist(), "bias": float(learnt[-1])}, lstsq=optimum.tolist())

    fig = ctx.figure(figsize=(11, 3.8))
    ax_loss, ax_dist = fig.subplots(1, 2)
    steps, autograd_steps = [c["epoch"] for c in curve], [r["epoch"] for r in reference]
    for split, colour in (("train", "C0"), ("test", "C1")):
        ax_loss.plot(steps, [c[f"{split}_loss"] for c in curve], color=colour, label=f"{split}, by hand")
        ax_loss.plot(autograd_steps, [r[f"{split}_loss"] for r in reference], ":", color="k", lw=1.5,
                     label="autograd + torch.optim.SGD" if split == "test" else None)
        ax_loss.axhline(optimum_mse[split], color=colour, ls="--", lw=1, label=f"{split}, lstsq optimum")
    ax_loss.set(xscale="log", yscale="log", xlabel="gradient step (full batch)", ylabel="MSE",
                title=f"{title}: diabetes, loss")
    ax_loss.legend(fontsize=7)
    ax_dist.plot(steps, [c["distance"] for c in curve])
    ax_dist.axhline(PARAM_TOLERANCE, color="k", ls="--", lw=1, label=f"tolerance {PARAM_TOLERANCE:g}")
    ax_dist.set(xscale="log", yscale="log", xlabel="gradient step", ylabel="max |θ − θ_lstsq|",
                title="distance of the parameters to lstsq's")
    ax_dist.legend(fontsize=7)
    ctx.save_figure(fig, "loss_curve")

    rows, n_in, n_out = p["bench_shape"]
    x = torch.randn(rows, n_in, generator=g)
    w, b = torch.randn(n_out, n_in, generator=g) / n_in ** 0.5, torch.randn(n_out, generator=g)
    upstream = torch.randn(rows, n_out, generator=g)
    leaves = [t.clone().requires_grad_() for t in (x, w, b)]
    with torch.enable_grad():
        graph = F.linear(*leaves)
    forward, backward = layer_on(x, w, b)
    forward()  # a layer object's backward reads the input its forward kept
    ctx.bench["forward"] = compare(forward, lambda: F.linear(x, w, b), p["bench_seconds"])
    ctx.bench["backward"] = compare(lambda: backward(upstream),
                                    lambda: torch.autograd.grad(graph, leaves, upstream, retain_graph=True),
                                    p["bench_seconds"])
    ctx.bench.update(forward_ratio=ctx.bench["forward"]["ratio"], backward_ratio=ctx.bench["backward"]["ratio"],
                     shape=p["bench_shape"])


def run(ctx: RunContext) -> None:
    run_regression(ctx, *layer_object(ctx.impl, ctx.params["lr"]), "a04 Linear by hand")
