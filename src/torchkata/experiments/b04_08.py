"""b04-08 experiment: the same small CNN downsampling by max pooling, by strided convolution and not at all, each
trained once on Fashion-MNIST with the same data, batch order and one-cycle schedule: test accuracy, parameters
and time side by side (their error bars are the spread over the variance seeds, which rerun this whole run)."""
from __future__ import annotations

import time
from typing import Callable

import torch
from torch import Tensor, nn

from torchkata.data import fashion_mnist
from torchkata.pipeline.bench import median_seconds
from torchkata.pipeline.runner import RunContext
from torchkata.training.loop import evaluate, fit, one_cycle, plot_histories
from torchkata.vision.fashion_cnn import normalize

SCALES = {
    "smoke": {"train_size": 128, "test_size": 128, "epochs": 1, "batch_size": 64, "max_lr": 4e-3,
              "weight_decay": 0.01, "channels": [2, 4], "hidden": 0, "dropout": 0.25, "bench_batch": 32,
              "bench_seconds": 0.02},
    "default": {"train_size": 40000, "test_size": 10000, "epochs": 1, "batch_size": 128, "max_lr": 1e-2,
                "weight_decay": 0.01, "channels": [8, 16], "hidden": 0, "dropout": 0.25, "bench_batch": 256,
                "bench_seconds": 0.2},
    "full": {"train_size": 60000, "test_size": 10000, "epochs": 10, "batch_size": 128, "max_lr": 4e-3,
             "weight_decay": 0.01, "channels": [16, 32], "hidden": 128, "dropout": 0.25, "bench_batch": 256,
             "bench_seconds": 1.0},
}
VARIANTS = {"pool": "2x2 max pool", "stride": "stride-2 conv", "none": "no downsampling"}
LAYOUT = torch.channels_last  # as b04-06: im2col reads each pixel's channels together


def fashion_data(ctx: RunContext) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """The first train_size training and test_size test images (the official files are in random order),
    normalised, in channels_last, with their labels (b04-07 and b04-03 train on the same)."""
    p, folder = ctx.params, ctx.input("fashion-mnist")
    splits = []
    for split, size in (("train", p["train_size"]), ("test", p["test_size"])):
        data = fashion_mnist.load(folder, split)
        splits.append((normalize(data["images"][:size]).contiguous(memory_format=LAYOUT), data["labels"][:size]))
    return splits[0], splits[1]


def train_variant(ctx: RunContext, name: str, build: Callable[[], nn.Module], train, test) -> tuple[list, nn.Module]:
    """Build (from ctx.seed, so the order of the variants changes nothing) and train one model with AdamW and a
    one-cycle rate on the shared loop, in ctx.params' batch order; ctx.metrics gets f"{name}_test_accuracy",
    _test_loss, _final_train_loss and _parameters, ctx.bench[name] its times."""
    p = ctx.params
    torch.manual_seed(ctx.seed)
    model = build().to(memory_format=LAYOUT)
    optimizer = torch.optim.AdamW(model.parameters(), lr=p["max_lr"], weight_decay=p["weight_decay"], fused=True)
    steps = p["epochs"] * -(-len(train[0]) // p["batch_size"])
    cpu_start = time.process_time()
    history = fit(model, optimizer, train, test, p["epochs"], p["batch_size"], torch.Generator().manual_seed(ctx.seed),
                  before_step=one_cycle(optimizer, p["max_lr"], steps), log=ctx.log, prefix=f"{name}_")
    # CPU time of training and per-epoch evaluation over the threads: the wall time a quiet machine would take
    cpu_per_thread = (time.process_time() - cpu_start) / torch.get_num_threads()
    result = evaluate(model, *test)
    ctx.metrics.update({f"{name}_test_accuracy": result["accuracy"], f"{name}_test_loss": result["loss"],
                        f"{name}_final_train_loss": history[-1]["train_loss"],
                        f"{name}_parameters": sum(t.numel() for t in model.parameters())})
    model.eval()
    batch = test[0][:p["bench_batch"]]
    with torch.no_grad():
        forward_s = median_seconds(lambda: model(batch), p["bench_seconds"])
    train_seconds = sum(h["seconds"] for h in history)
    ctx.bench[name] = {"epoch_seconds": [h["seconds"] for h in history], "train_seconds": train_seconds,
                       "train_cpu_seconds_per_thread": cpu_per_thread,
                       "train_images_per_s": len(train[0]) * p["epochs"] / train_seconds,
                       "forward_images_per_s": len(batch) / forward_s}
    return history, model


def plot_side_by_side(ctx: RunContext, labels: list[str], panels: dict[str, list[float]], title: str) -> None:
    """One bar panel per figure, one bar per variant; the first panel is a test accuracy (its axis starts near
    the lowest bar, so that points apart are visible). Saved as side_by_side.png (b04-07 uses it too)."""
    fig = ctx.figure(figsize=(3.4 * len(panels), 3.2))
    axes = fig.subplots(1, len(panels))
    for ax, (name, values) in zip(axes, panels.items()):
        ax.bar(labels, values, color=[f"C{i}" for i in range(len(labels))])
        ax.bar_label(ax.containers[0], fmt="%.4g", fontsize=8)
        ax.set_title(name, fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
    axes[0].set_ylim(min(next(iter(panels.values()))) - 0.05, 1)
    fig.suptitle(title, fontsize=9, y=1.04)  # above the panels' own titles
    ctx.save_figure(fig, "side_by_side")


def run(ctx: RunContext) -> None:
    p, impl = ctx.params, ctx.impl
    train, test = fashion_data(ctx)
    histories = {variant: train_variant(ctx, variant, lambda: impl.small_cnn(p["channels"], variant, hidden=p["hidden"],
                                                                             dropout=p["dropout"]), train, test)[0]
                 for variant in VARIANTS}
    ctx.metrics.update(epochs=p["epochs"], train_images=len(train[0]), test_images=len(test[0]), channels=p["channels"])
    ctx.bench.update(threads=torch.get_num_threads(),
                     time_ratio_to_pool={v: ctx.bench[v]["train_seconds"] / ctx.bench["pool"]["train_seconds"]
                                         for v in VARIANTS})

    plot_histories(ctx, {label: histories[v] for v, label in VARIANTS.items()},
                   f"b04-08, {len(train[0])} images")
    plot_side_by_side(ctx, list(VARIANTS), {
        "test accuracy": [ctx.metrics[f"{v}_test_accuracy"] for v in VARIANTS],
        "parameters": [ctx.metrics[f"{v}_parameters"] for v in VARIANTS],
        "training CPU s per thread": [ctx.bench[v]["train_cpu_seconds_per_thread"] for v in VARIANTS]},
        "b04-08: one seed (error bars over seeds: the variance seeds' summary)")
