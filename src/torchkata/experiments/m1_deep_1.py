"""m1-deep-1 experiment: the Snake Function against autograd differentiating the same formula (values, gradients,
gradcheck, gradgradcheck), its forward and backward timed against autograd's at 4096x1024 float32, the curve and
its derivatives, and a small MLP on Fashion-MNIST with Snake against the same MLP with ReLU, a few seeds of each
(mean ± std)."""
from __future__ import annotations

import torch
from torch import nn

from torchkata.autograd.timing import forward_backward
from torchkata.data import fashion_mnist
from torchkata.pipeline.runner import RunContext
from torchkata.training.loop import fit, mean_std, over_seeds, plot_histories

SCALES = {
    "smoke": {"cases": 3, "train_size": 500, "test_size": 500, "epochs": 1, "seeds": 1, "hidden": [64, 32],
              "batch_size": 128, "lr": 1e-3, "bench_shape": [256, 256], "bench_seconds": 0.02},
    "default": {"cases": 12, "train_size": 10000, "test_size": 10000, "epochs": 3, "seeds": 3, "hidden": [256, 128],
                "batch_size": 128, "lr": 1e-3, "bench_shape": [4096, 1024], "bench_seconds": 0.3},
    "full": {"cases": 64, "train_size": 60000, "test_size": 10000, "epochs": 15, "seeds": 5, "hidden": [512, 256],
             "batch_size": 128, "lr": 1e-3, "bench_shape": [4096, 1024], "bench_seconds": 1.0},
}


def formula(x, alpha):
    return x + torch.sin(alpha * x) ** 2 / alpha


def mlp(hidden: list[int], activation) -> nn.Sequential:
    layers, width = [nn.Flatten()], 28 * 28
    for h in hidden:
        layers += [nn.Linear(width, h), activation(h)]
        width = h
    return nn.Sequential(*layers, nn.Linear(width, 10))


def run(ctx: RunContext) -> None:
    p, g, impl = ctx.params, ctx.generator, ctx.impl
    value_error = grad_error = 0.0
    for case in range(p["cases"]):
        rows, cols = (int(torch.randint(1, 200, (), generator=g)) for _ in range(2))
        x = (torch.randn(rows, cols, generator=g, dtype=torch.float64) * 3).requires_grad_()
        alpha = (torch.rand(cols, generator=g, dtype=torch.float64) * 5 + 0.1).requires_grad_()
        upstream = torch.randn(rows, cols, generator=g, dtype=torch.float64)
        ours, want = impl.snake(x, alpha), formula(x, alpha)
        value_error = max(value_error, float((ours - want).detach().abs().max()))
        pairs = zip(torch.autograd.grad(ours, (x, alpha), upstream), torch.autograd.grad(want, (x, alpha), upstream))
        for a, b in pairs:
            grad_error = max(grad_error, float((a - b).abs().max() / b.abs().max().clamp(min=1)))
    x = torch.randn(4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    alpha = (torch.rand(5, generator=g, dtype=torch.float64) + 0.5).requires_grad_()
    ctx.metrics.update(max_abs_error=value_error, grad_max_abs_error=grad_error, cases=p["cases"],
                       gradcheck=torch.autograd.gradcheck(impl.snake, (x, alpha)),
                       gradgradcheck=torch.autograd.gradgradcheck(impl.snake, (x, alpha)))

    # the curve and what the backward returns for it, for three alphas
    fig = ctx.figure(figsize=(9, 3.4))
    ax_y, ax_dy = fig.subplots(1, 2)
    grid = torch.linspace(-6, 6, 601, dtype=torch.float64).requires_grad_()
    for a in (0.5, 1.0, 3.0):
        y = impl.snake(grid, torch.tensor(a, dtype=torch.float64))
        (slope,) = torch.autograd.grad(y.sum(), grid)
        ax_y.plot(grid.detach(), y.detach(), label=f"a = {a:g}")
        ax_dy.plot(grid.detach(), slope, label=f"a = {a:g}")
    ax_y.plot(grid.detach(), grid.detach().clamp(min=0), "k:", label="ReLU")
    ax_y.set(xlabel="x", ylabel="snake(x)", title="m1-deep-1: x + sin²(ax)/a")
    ax_dy.set(xlabel="x", ylabel="dy/dx (your backward)", title="its derivative 1 + sin(2ax)")
    ax_y.legend(fontsize=7)
    ax_dy.legend(fontsize=7)
    ctx.save_figure(fig, "snake")

    # training: the same MLP with Snake and with ReLU, p["seeds"] seeds each, the same batches for both
    folder = ctx.input("fashion-mnist")
    train, test = fashion_mnist.load(folder, "train"), fashion_mnist.load(folder, "test")
    normalize = lambda images: (images.float() / 255 - 0.2860) / 0.3530  # noqa: E731  (the training set's mean/std)
    train_set = (normalize(train["images"][:p["train_size"]]), train["labels"][:p["train_size"]])
    test_set = (normalize(test["images"][:p["test_size"]]), test["labels"][:p["test_size"]])
    activations = {"snake": impl.Snake, "relu": lambda width: nn.ReLU()}
    runs = {name: [] for name in activations}
    for k in range(p["seeds"]):
        for name, activation in activations.items():
            torch.manual_seed(ctx.seed * 1000 + k)
            model = mlp(p["hidden"], activation)
            optimizer = torch.optim.Adam(model.parameters(), lr=p["lr"])
            runs[name].append(fit(model, optimizer, train_set, test_set, p["epochs"], p["batch_size"],
                                  torch.Generator().manual_seed(ctx.seed * 1000 + k)))
            if name == "snake":
                learnt = torch.cat([m.alpha.detach() for m in model if isinstance(m, impl.Snake)])
    mean, std = {}, {}
    for name, rs in runs.items():
        mean[name], std[name] = over_seeds(rs)
    keys = ("test_accuracy", "test_loss", "train_loss")
    final = {name: {f"{key}_{stat}": value for key in keys
                    for stat, value in zip(("mean", "std"), mean_std([r[-1][key] for r in rs]))}
             for name, rs in runs.items()}
    alpha_stats = {"mean": float(learnt.mean()), "min": float(learnt.min()), "max": float(learnt.max())}
    ctx.metrics["training"] = final | {"seeds": p["seeds"], "epochs": p["epochs"], "train_images": p["train_size"],
                                       "snake_alpha_last_seed": alpha_stats}
    accuracy = {name: f["test_accuracy_mean"] for name, f in final.items()}
    ctx.metrics["snake_minus_relu_accuracy"] = accuracy["snake"] - accuracy["relu"]
    plot_histories(ctx, {"Snake (yours)": mean["snake"], "ReLU": mean["relu"]},
                   f"m1-deep-1: Fashion-MNIST, ±std of {p['seeds']} seeds",
                   errors={"Snake (yours)": std["snake"], "ReLU": std["relu"]})
    ctx.bench["train_seconds"] = {name: sum(h["seconds"] for r in rs for h in r) for name, rs in runs.items()}

    x = torch.randn(*p["bench_shape"], generator=g).requires_grad_()
    alpha = (torch.rand(p["bench_shape"][1], generator=g) + 0.5).requires_grad_()
    ctx.bench["snake"] = forward_backward(impl.snake, formula, (x, alpha), p["bench_seconds"])
    ctx.bench["forward_ratio"] = ctx.bench["snake"]["forward"]["ratio"]
    ctx.bench["backward_ratio"] = ctx.bench["snake"]["backward"]["ratio"]
    ctx.bench["shape"] = p["bench_shape"]
