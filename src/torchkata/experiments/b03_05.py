"""b03-05 experiment: the update-to-weight ratio of each layer over a training, for a good learning rate and one
that is too high. The same MLP (same initial weights, same batches) is trained on a Fashion-MNIST subset with SGD
and momentum at both rates, your UpdateRecorder on the optimizer's steps: the ratios of each layer per step on a
log scale beside the 1e-3 rule of thumb, and the two training curves. Your ratios are checked against ones taken
by hand around optimizer.step() on a few steps."""
from __future__ import annotations

import statistics

import torch
import torch.nn.functional as F

from torchkata.nn.fashion_mlp import load, mlp
from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext
from torchkata.training.loop import fit, plot_histories

SCALES = {
    "smoke": {"train_size": 300, "test_size": 200, "epochs": 1, "widths": [32, 32], "batch_size": 64,
              "lrs": {"good": 0.01, "too high": 0.5}, "momentum": 0.9, "check_steps": 3, "bench_seconds": 0.02},
    "default": {"train_size": 10000, "test_size": 10000, "epochs": 6, "widths": [256, 128], "batch_size": 64,
                "lrs": {"good": 0.01, "too high": 0.5}, "momentum": 0.9, "check_steps": 5, "bench_seconds": 0.3},
    "full": {"train_size": 60000, "test_size": 10000, "epochs": 20, "widths": [512, 256], "batch_size": 64,
             "lrs": {"good": 0.01, "too high": 0.5}, "momentum": 0.9, "check_steps": 10, "bench_seconds": 1.0},
}
RULE_OF_THUMB = 1e-3


def checked_by_hand(ctx: RunContext, train, p) -> float:
    """Largest relative difference between your recorder and ratios of snapshots taken around each step."""
    torch.manual_seed(ctx.seed)
    model = mlp(tuple(p["widths"]))
    optimizer = torch.optim.SGD(model.parameters(), lr=p["lrs"]["too high"], momentum=p["momentum"])
    recorder, expected = ctx.impl.UpdateRecorder(model, optimizer), []
    for step in range(p["check_steps"]):
        idx = slice(step * p["batch_size"], (step + 1) * p["batch_size"])
        optimizer.zero_grad()
        F.cross_entropy(model(train[0][idx]), train[1][idx]).backward()
        before = [m.weight.detach().clone() for m in model if hasattr(m, "weight")]
        optimizer.step()
        expected.append([float((m.weight.detach() - w).norm() / w.norm()) for m, w in
                         zip((m for m in model if hasattr(m, "weight")), before)])
    got = list(zip(*recorder.ratios.values()))
    return max(abs(g - e) / e for row_g, row_e in zip(got, expected) for g, e in zip(row_g, row_e))


def run(ctx: RunContext) -> None:
    p = ctx.params
    train, test = load(ctx.input("fashion-mnist"), ctx.generator, p["train_size"], p["test_size"])
    error = checked_by_hand(ctx, train, p)
    seed = int(torch.randint(2**31, (), generator=ctx.generator))
    histories, ratios = {}, {}
    for name, lr in p["lrs"].items():
        torch.manual_seed(seed)
        model = mlp(tuple(p["widths"]))
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=p["momentum"])
        recorder = ctx.impl.UpdateRecorder(model, optimizer)
        histories[f"lr {lr:g} ({name})"] = fit(model, optimizer, train, test, p["epochs"], p["batch_size"],
                                                torch.Generator().manual_seed(seed), log=ctx.log, prefix=f"{name}.")
        ratios[name] = recorder.ratios

    ctx.metrics.update(
        max_rel_error=error, lrs=p["lrs"],
        median_ratio={name: {layer: statistics.median(r) for layer, r in layers.items()}
                      for name, layers in ratios.items()},
        test_accuracy={name: h[-1]["test_accuracy"] for name, h in zip(p["lrs"], histories.values())},
        steps=len(next(iter(ratios["good"].values()))), epochs=p["epochs"], train_size=len(train[0]))
    plot_histories(ctx, histories, f"b03-05: MLP {p['widths']}, SGD momentum {p['momentum']}")
    plot_ratios(ctx, ratios, p)

    # the recorder's cost: a training step with it against the same step without
    torch.manual_seed(seed)
    model = mlp(tuple(p["widths"]))
    optimizer = torch.optim.SGD(model.parameters(), lr=p["lrs"]["good"], momentum=p["momentum"])
    x, y = train[0][:p["batch_size"]], train[1][:p["batch_size"]]

    def step():
        optimizer.zero_grad()
        with torch.enable_grad():
            F.cross_entropy(model(x), y).backward()
        optimizer.step()

    plain = compare(step, step, p["bench_seconds"])["impl_s"]
    recorder = ctx.impl.UpdateRecorder(model, optimizer)
    with_recorder = compare(step, step, p["bench_seconds"])["impl_s"]
    recorder.remove()
    ctx.bench.update(step_with_recorder_s=with_recorder, step_s=plain, ratio=with_recorder / plain,
                     train_s={name: sum(h["seconds"] for h in history) for name, history in zip(p["lrs"], histories.values())})


def plot_ratios(ctx: RunContext, ratios: dict, p: dict) -> None:
    fig = ctx.figure(figsize=(10, 3.6))
    axes = fig.subplots(1, len(ratios), sharey=True, squeeze=False)[0]
    for ax, (name, layers) in zip(axes, ratios.items()):
        for layer, values in layers.items():
            ax.plot(values, lw=0.8, label=layer)
        ax.axhline(RULE_OF_THUMB, color="k", ls="--", lw=0.8, label="1e-3 rule of thumb")
        ax.set(yscale="log", xlabel="step", title=f"lr {p['lrs'][name]:g} ({name})")
    axes[0].set(ylabel="‖ΔW‖ / ‖W‖ per step")
    axes[0].legend(fontsize=7)
    fig.suptitle("b03-05: update-to-weight ratio per layer")
    ctx.save_figure(fig, "update_ratios")
