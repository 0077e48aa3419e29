"""m2-core-1 experiment: the CIFAR-10 CNN of b04-01 trained with your Adam (a14) and with torch.optim.Adam from the
same seed, on the same batches: the two training curves, their largest difference (the metric), the test accuracy
of both, and the training time of each. By default on the generated stand-in (data.cifar10 empty); the run records
which data it used in metrics.json["data"]."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from torchkata.data import cifar10
from torchkata.pipeline.runner import RunContext
from torchkata.training.loop import fit, plot_histories
from torchkata.vision.cifar_cnn import CifarCNN, channel_stats, normalize

SCALES = {
    "smoke": {"train_size": 256, "test_size": 128, "epochs": 1, "batch_size": 64, "lr": 2e-3, "channels": [8, 16, 16],
              "depth": 1},
    "default": {"train_size": 7000, "test_size": 2000, "epochs": 3, "batch_size": 64, "lr": 2e-3,
                "channels": [16, 32, 64], "depth": 1},
    "full": {"train_size": 50000, "test_size": 10000, "epochs": 30, "batch_size": 128, "lr": 1e-3,
             "channels": [64, 128, 256], "depth": 2},
}


def load_split(folder, split: str, size: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    data = cifar10.load(folder, split)
    return data["images"][:size], data["labels"][:size], data["source"]


def run(ctx: RunContext) -> None:
    p = ctx.params
    folder = ctx.input("cifar10")
    train_images, train_labels, source = load_split(folder, "train", p["train_size"])
    test_images, test_labels, _ = load_split(folder, "test", p["test_size"])
    mean, std = channel_stats(train_images)
    train = (normalize(train_images, mean, std), train_labels)
    test = (normalize(test_images, mean, std), test_labels)

    model = CifarCNN(tuple(p["channels"]), p["depth"])
    runs = {}
    for label, make in (("your Adam", ctx.impl.Adam), ("torch.optim.Adam", torch.optim.Adam)):
        net = copy.deepcopy(model)  # the same initial weights for both
        steps = []

        def loss_fn(logits, targets, steps=steps):
            loss = F.cross_entropy(logits, targets)
            if logits.requires_grad:  # a training step, not the evaluation
                steps.append(loss.item())
            return loss
        options = dict(foreach=False) if make is torch.optim.Adam else {}
        history = fit(net, make(net.parameters(), lr=p["lr"], **options), train, test, p["epochs"], p["batch_size"],
                      torch.Generator().manual_seed(ctx.seed), loss_fn=loss_fn,
                      log=ctx.log if make is not torch.optim.Adam else None)
        runs[label] = {"history": history, "steps": steps, "model": net}

    ours, theirs = runs["your Adam"], runs["torch.optim.Adam"]
    curve_gap = [abs(a - b) for a, b in zip(ours["steps"], theirs["steps"])]
    weights = zip(ours["model"].state_dict().values(), theirs["model"].state_dict().values())
    ctx.metrics.update(
        max_loss_difference=max(curve_gap),
        max_parameter_difference=max(float((a.double() - b.double()).abs().max()) for a, b in weights),
        test_accuracy=ours["history"][-1]["test_accuracy"], test_accuracy_torch=theirs["history"][-1]["test_accuracy"],
        final_train_loss=ours["history"][-1]["train_loss"], steps=len(ours["steps"]), epochs=p["epochs"],
        train_images=len(train[0]), test_images=len(test[0]), data=source,
        parameters=sum(t.numel() for t in model.parameters()))
    ctx.bench.update({f"train_seconds_{key}": sum(h["seconds"] for h in run["history"])
                      for key, run in (("ours", ours), ("torch", theirs))})
    ctx.bench["ratio"] = ctx.bench["train_seconds_ours"] / ctx.bench["train_seconds_torch"]

    data_name = "CIFAR-10" if source.startswith("CIFAR-10") else "CIFAR-10 stand-in (generated)"
    plot_histories(ctx, {label: run["history"] for label, run in runs.items()}, f"m2-core-1: {data_name}")
    fig = ctx.figure(figsize=(9.5, 3.4))
    ax_loss, ax_gap = fig.subplots(1, 2)
    ax_loss.plot(ours["steps"], lw=2.5, alpha=0.5, label="your Adam")
    ax_loss.plot(theirs["steps"], lw=0.8, ls="--", color="black", label="torch.optim.Adam")
    ax_loss.set(xlabel="step", ylabel="training loss (batch)", title=f"m2-core-1: {data_name}, same seed")
    ax_loss.legend()
    ax_gap.plot([max(g, 1e-12) for g in curve_gap])
    ax_gap.set(yscale="log", xlabel="step", ylabel="|loss difference| (floor 1e-12)",
               title=f"largest difference {max(curve_gap):.3g}")
    ctx.save_figure(fig, "ours_vs_torch_adam")
