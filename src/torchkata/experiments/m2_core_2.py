"""m2-core-2 experiment: SGD (momentum 0.9) against Adam, both the hand-written ones (b02-04's torchkata.optim.sgd,
a14's torchkata.optim.adaptive), training the same MLP on scikit-learn's digits. Fair: each optimizer first gets its
own learning rate from a small sweep on a tuning seed (the lowest final training loss wins), then both train over
the configured seeds from the same initial weights and batch orders. Reported: the convergence curves as mean ± std
bands, the final train loss and test accuracy, the steps to reach a smoothed loss threshold, the sweep, and on one
seed the largest loss difference of each hand-written optimizer against torch.optim's (it must be 0)."""
from __future__ import annotations

import statistics

import torch

from torchkata.data import digits
from torchkata.optim.adaptive import Adam
from torchkata.optim.sgd import SGD
from torchkata.pipeline.runner import RunContext
from torchkata.training.loop import fit, mean_std, over_seeds, plot_histories
from torchkata.training.models import mlp

SCALES = {
    "smoke": {"test_size": 100, "train_size": 128, "seeds": 2, "epochs": 1, "hidden": 16, "batch_size": 32,
              "lrs": {"sgd": [0.3], "adam": [1e-2]}, "threshold": 2.3, "window": 2},
    "default": {"test_size": 497, "train_size": None, "seeds": 4, "epochs": 8, "hidden": 64, "batch_size": 32,
                "lrs": {"sgd": [0.03, 0.1, 0.3], "adam": [3e-3, 1e-2, 3e-2]}, "threshold": 0.1,
                "window": 20},
    "full": {"test_size": 497, "train_size": None, "seeds": 10, "epochs": 30, "hidden": 256, "batch_size": 32,
             "lrs": {"sgd": [0.003, 0.01, 0.03, 0.1, 0.3, 1.0], "adam": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2]},
             "threshold": 0.03, "window": 20},
}
MOMENTUM = 0.9
OPTIMIZERS = {  # key: (label, ours, torch.optim's twin with the same arithmetic, options)
    "sgd": ("SGD", SGD, torch.optim.SGD, dict(momentum=MOMENTUM)),
    "adam": ("Adam", Adam, torch.optim.Adam, {}),
}
TUNING_SEED = 10_000  # the sweep's initial weights and batches: none of the seeds that are reported


def train(ctx: RunContext, p: dict, data, make, name: str, lr: float, seed: int):
    """One training from seed `seed` (initial weights and batch order): (fit's history, the loss of every step)."""
    torch.manual_seed(seed)
    model = mlp(p["hidden"])
    recorder = ctx.impl.LossRecorder()
    options = OPTIMIZERS[name][3] | (dict(foreach=False) if make is OPTIMIZERS[name][2] else {})
    history = fit(model, make(model.parameters(), lr=lr, **options), *data, p["epochs"], p["batch_size"],
                  torch.Generator().manual_seed(seed), loss_fn=recorder)
    return history, recorder.losses


def run(ctx: RunContext) -> None:
    p = ctx.params
    data = digits.split(ctx.input("digits"), p["test_size"], torch.Generator().manual_seed(0), p["train_size"])
    seeds = [ctx.seed * 1000 + k for k in range(p["seeds"])]

    sweep = {name: {lr: train(ctx, p, data, OPTIMIZERS[name][1], name, lr, TUNING_SEED)[0][-1]["train_loss"]
                    for lr in p["lrs"][name]} for name in OPTIMIZERS}
    tuned = {name: ctx.impl.best_learning_rate(losses) for name, losses in sweep.items()}

    histories, errors, curves, final, labels, gap, seconds = {}, {}, {}, {}, {}, {}, {}
    for name, (label, ours, theirs, _) in OPTIMIZERS.items():
        runs = [train(ctx, p, data, ours, name, tuned[name], seed) for seed in seeds]
        twin = train(ctx, p, data, theirs, name, tuned[name], seeds[0])  # torch.optim's, on the first seed
        gap[name] = ctx.impl.max_curve_difference(runs[0][1], twin[1])
        seconds[name] = (sum(h["seconds"] for h in runs[0][0]), sum(h["seconds"] for h in twin[0]))
        labels[name] = f"{label}, lr {tuned[name]:g}"
        histories[labels[name]], errors[labels[name]] = over_seeds([history for history, _ in runs])
        curves[name] = [ctx.impl.running_mean(losses, p["window"]) for _, losses in runs]
        reached = [ctx.impl.steps_to_reach(losses, p["threshold"], p["window"]) for _, losses in runs]
        final[name] = {key: dict(zip(("mean", "std"), mean_std(values))) for key, values in {
            "train_loss": [h[-1]["train_loss"] for h, _ in runs],
            "test_accuracy": [h[-1]["test_accuracy"] for h, _ in runs],
            "steps_to_threshold": [s for s in reached if s is not None] or [float("nan")]}.items()}
        final[name]["seeds_reaching_threshold"] = sum(s is not None for s in reached)
        for step, value in enumerate(statistics.fmean(c) for c in zip(*curves[name])):
            ctx.log(f"{name}_smoothed_loss", value, step + p["window"])

    steps = {name: final[name]["steps_to_threshold"]["mean"] for name in OPTIMIZERS}
    ctx.metrics.update(
        sgd_to_adam_steps_ratio=steps["sgd"] / steps["adam"],
        max_loss_difference_vs_torch=max(gap.values()), loss_difference_vs_torch=gap,
        tuned_lr=tuned, sweep={name: {f"{lr:g}": loss for lr, loss in losses.items()} for name, losses in sweep.items()},
        final=final, threshold=p["threshold"], window=p["window"], seeds=p["seeds"], epochs=p["epochs"],
        steps_per_epoch=-(-len(data[0][0]) // p["batch_size"]),
        train_size=len(data[0][0]), test_size=len(data[1][0]))
    for name in OPTIMIZERS:
        ctx.bench[f"train_seconds_{name}"], ctx.bench[f"train_seconds_{name}_torch"] = seconds[name]
        ctx.bench[f"ratio_{name}"] = seconds[name][0] / seconds[name][1]
    ctx.bench["ratio"] = sum(s[0] for s in seconds.values()) / sum(s[1] for s in seconds.values())

    title = f"m2-core-2 (±std, {p['seeds']} seeds)"
    plot_histories(ctx, histories, title, errors=errors)
    plot_convergence(ctx, p, curves, sweep, tuned, labels, final)


def plot_convergence(ctx: RunContext, p: dict, curves, sweep, tuned, labels, final) -> None:
    fig = ctx.figure(figsize=(10, 3.6))
    ax_steps, ax_sweep = fig.subplots(1, 2)
    for i, (name, runs) in enumerate(curves.items()):
        steps = range(p["window"], p["window"] + len(runs[0]))
        mean, std = zip(*(mean_std(values) for values in zip(*runs)))
        reached = final[name]["steps_to_threshold"]["mean"]
        ax_steps.plot(steps, mean, color=f"C{i}", label=f"{labels[name]}: {reached:.0f} steps to {p['threshold']:g}")
        ax_steps.fill_between(steps, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                              color=f"C{i}", alpha=0.2)
        lrs = list(sweep[name])
        ax_sweep.plot(lrs, [sweep[name][lr] for lr in lrs], "o-", color=f"C{i}", label=OPTIMIZERS[name][0])
        ax_sweep.plot([tuned[name]], [sweep[name][tuned[name]]], "*", ms=14, color=f"C{i}")
    ax_steps.axhline(p["threshold"], color="black", lw=0.8, ls=":")
    ax_steps.set(yscale="log", xlabel="step", ylabel=f"training loss (mean of last {p['window']} batches)",
                 title=f"m2-core-2: convergence, ±std of {p['seeds']} seeds")
    ax_steps.legend(fontsize=7)
    ax_sweep.set(xscale="log", yscale="log", xlabel="learning rate", ylabel=f"train loss after {p['epochs']} epochs",
                 title="learning-rate sweep (tuning seed; ★ chosen)")
    ax_sweep.legend(fontsize=7)
    ctx.save_figure(fig, "convergence")
