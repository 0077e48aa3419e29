"""b02-01 experiment: an MLP on scikit-learn's digits trained twice from the same initialisation and batch order,
once with the custom ReLU Function and once with F.relu: the two runs must be the same run. Plus the Function's
forward and backward timed against PyTorch's at 4096x1024."""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from torchkata.autograd.timing import forward_backward
from torchkata.data import digits as digits_data
from torchkata.data.digits import MAX_VALUE
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"test_size": 400, "hidden": 32, "epochs": 2, "batch_size": 64, "lr": 0.05, "bench_shape": [256, 256],
              "bench_seconds": 0.05},
    "default": {"test_size": 400, "hidden": 64, "epochs": 15, "batch_size": 64, "lr": 0.05,
                "bench_shape": [4096, 1024], "bench_seconds": 0.3},
    "full": {"test_size": 400, "hidden": 512, "epochs": 200, "batch_size": 64, "lr": 0.05,
             "bench_shape": [16384, 4096], "bench_seconds": 1.0},
}


class MLP(nn.Module):
    def __init__(self, hidden: int, activation):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(64, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, 10)])
        self.activation = activation

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)


def train(model, x, y, x_test, y_test, p, order_seed, log):
    """Plain SGD with momentum over seeded batches; the training loss and test accuracy after every epoch."""
    opt = torch.optim.SGD(model.parameters(), lr=p["lr"], momentum=0.9)
    order_gen = torch.Generator().manual_seed(order_seed)
    curve = []
    for epoch in range(p["epochs"]):
        total = 0.0
        for batch in torch.randperm(len(x), generator=order_gen).split(p["batch_size"]):
            loss = F.cross_entropy(model(x[batch]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
        with torch.no_grad():
            accuracy = float((model(x_test).argmax(1) == y_test).float().mean())
        curve.append((total / len(x), accuracy))
        log(epoch, *curve[-1])
    return curve


def run(ctx: RunContext) -> None:
    p, g = ctx.params, ctx.generator
    digits = digits_data.load(ctx.input("digits"))
    x, y = digits["images"].flatten(1).float() / MAX_VALUE, digits["labels"]
    order = torch.randperm(len(x), generator=g)
    test, train_ids = order[:p["test_size"]], order[p["test_size"]:]
    init = MLP(p["hidden"], F.relu).state_dict()  # drawn from the seeded global generator
    order_seed = int(torch.randint(2**31, (), generator=g))

    curves, params, seconds = {}, {}, {}
    for name, activation in (("custom", ctx.impl.relu), ("F.relu", F.relu)):
        model = MLP(p["hidden"], activation)
        model.load_state_dict(init)
        start = time.perf_counter()
        curves[name] = train(model, x[train_ids], y[train_ids], x[test], y[test], p, order_seed,
                             lambda epoch, loss, acc, name=name: (ctx.log(f"{name}_train_loss", loss, epoch),
                                                                   ctx.log(f"{name}_test_accuracy", acc, epoch)))
        seconds[name] = time.perf_counter() - start
        params[name] = torch.cat([t.flatten() for t in model.state_dict().values()])

    losses = {k: torch.tensor([loss for loss, _ in c]) for k, c in curves.items()}
    ctx.metrics.update(
        max_loss_difference=float((losses["custom"] - losses["F.relu"]).abs().max()),
        max_param_difference=float((params["custom"] - params["F.relu"]).abs().max()),
        final_train_loss={k: c[-1][0] for k, c in curves.items()},
        test_accuracy={k: c[-1][1] for k, c in curves.items()},
        train_size=len(train_ids), test_size=len(test), epochs=p["epochs"])

    fig = ctx.figure(figsize=(9, 3.2))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for (name, curve), style in zip(curves.items(), ("o-", "x--")):
        epochs = range(1, len(curve) + 1)
        ax_loss.plot(epochs, [loss for loss, _ in curve], style, label=name, markersize=4)
        ax_acc.plot(epochs, [acc for _, acc in curve], style, label=name, markersize=4)
    ax_loss.set(yscale="log", xlabel="epoch", ylabel="training loss",
                title=f"b02-01: digits MLP, max |loss diff| = {ctx.metrics['max_loss_difference']:.1g}")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy", title=f"{len(test)} held-out digits")
    ax_loss.legend()
    ax_acc.legend()
    ctx.save_figure(fig, "training_curves")

    ctx.bench["train_s"] = seconds
    ctx.bench["train_time_ratio"] = seconds["custom"] / seconds["F.relu"]
    x = torch.randn(*p["bench_shape"], generator=g).requires_grad_()
    ctx.bench["relu"] = forward_backward(ctx.impl.relu, F.relu, (x,), p["bench_seconds"])
    ctx.bench["forward_ratio"] = ctx.bench["relu"]["forward"]["ratio"]
    ctx.bench["backward_ratio"] = ctx.bench["relu"]["backward"]["ratio"]
    ctx.bench["shape"] = p["bench_shape"]
