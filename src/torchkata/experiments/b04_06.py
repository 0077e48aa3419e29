"""b04-06 experiment: train the CNN on Fashion-MNIST, report its accuracy on the official 10k test set,
plot the training curve and the confusion matrix, and save the model for b04-10 (transfer learning)."""
from __future__ import annotations

import re
import time

import torch

from torchkata.data import fashion_mnist
from torchkata.pipeline.bench import median_seconds
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"train_size": 2000, "test_size": 1000, "epochs": 1, "batch_size": 64, "lr": 2e-3, "lr_decay": 0.6,
              "channels": [8, 16], "hidden": 64, "dropout": 0.25, "bench_batch": 256, "bench_seconds": 0.05},
    # ~2.5 minutes on two CPU threads, ~0.915 test accuracy
    "default": {"train_size": 60000, "test_size": 10000, "epochs": 6, "batch_size": 64, "lr": 2e-3, "lr_decay": 0.6,
                "channels": [16, 32], "hidden": 128, "dropout": 0.25, "bench_batch": 256, "bench_seconds": 0.5},
    "full": {"train_size": 60000, "test_size": 10000, "epochs": 15, "batch_size": 64, "lr": 2e-3, "lr_decay": 0.8,
             "channels": [32, 64], "hidden": 256, "dropout": 0.25, "bench_batch": 256, "bench_seconds": 2.0},
}
# the keys b04-10 needs to rebuild the model
CHECKPOINT_KEYS = ("state_dict", "config", "classes")


def class_key(name: str) -> str:
    """'T-shirt/top' -> 't_shirt_top': a metric key without slashes or spaces."""
    return re.sub(r"\W+", "_", name).lower()


def run(ctx: RunContext) -> None:
    p, impl = ctx.params, ctx.impl
    folder = ctx.input("fashion-mnist")
    train, test = fashion_mnist.load(folder, "train"), fashion_mnist.load(folder, "test")
    # the first N of each split: the official files are already in random order
    x_train, y_train = impl.normalize(train["images"][:p["train_size"]]), train["labels"][:p["train_size"]]
    x_test, y_test = impl.normalize(test["images"][:p["test_size"]]), test["labels"][:p["test_size"]]

    model = impl.FashionCNN(channels=tuple(p["channels"]), hidden=p["hidden"], dropout=p["dropout"])
    optimizer = torch.optim.Adam(model.parameters(), lr=p["lr"], fused=True)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=p["lr_decay"])
    epoch_seconds, curve = [], []
    for epoch in range(1, p["epochs"] + 1):
        start = time.perf_counter()
        train_loss = impl.train_epoch(model, optimizer, x_train, y_train, p["batch_size"], ctx.generator)
        epoch_seconds.append(time.perf_counter() - start)
        schedule.step()
        result = impl.evaluate(model, x_test, y_test)
        curve.append((train_loss, result["loss"], result["accuracy"]))
        ctx.log("train_loss", train_loss, epoch)
        ctx.log("test_loss", result["loss"], epoch)
        ctx.log("test_accuracy", result["accuracy"], epoch)

    start = time.perf_counter()
    result = impl.evaluate(model, x_test, y_test)
    eval_seconds = time.perf_counter() - start
    confusion = torch.bincount(y_test * 10 + result["predictions"], minlength=100).reshape(10, 10)
    per_class = confusion.diag() / confusion.sum(dim=1).clamp(min=1)
    ctx.metrics.update(
        test_accuracy=result["accuracy"], test_loss=result["loss"], test_correct=result["correct"],
        final_train_loss=curve[-1][0], epochs=p["epochs"], train_images=len(x_train), test_images=len(x_test),
        parameters=sum(t.numel() for t in model.parameters()),
        per_class_accuracy={class_key(c): float(a) for c, a in zip(fashion_mnist.CLASSES, per_class)},
    )
    ctx.save_checkpoint({"state_dict": model.state_dict(), "config": model.config,
                         "classes": list(fashion_mnist.CLASSES)}, "model.pt")

    # throughput only: the CNN is built from native ops, so there is no native counterpart to take a ratio against
    model.eval()
    batch = x_test[:p["bench_batch"]]
    with torch.no_grad():
        forward_s = median_seconds(lambda: model(batch), p["bench_seconds"])
    ctx.bench.update(
        epoch_seconds=epoch_seconds, train_seconds=sum(epoch_seconds),
        train_images_per_s=len(x_train) * p["epochs"] / sum(epoch_seconds),
        eval_images_per_s=len(x_test) / eval_seconds,
        forward={"batch": len(batch), "median_s": forward_s, "images_per_s": len(batch) / forward_s},
        threads=torch.get_num_threads(),
    )

    epochs = range(1, p["epochs"] + 1)
    fig = ctx.figure(figsize=(9, 3.4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(epochs, [c[0] for c in curve], "o-", label="train")
    ax_loss.plot(epochs, [c[1] for c in curve], "s--", label="test")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="b04-06: loss")
    ax_loss.legend()
    ax_acc.plot(epochs, [c[2] for c in curve], "o-", color="tab:green")
    ax_acc.axhline(0.91, color="gray", ls=":", label="target 0.91")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy", title="b04-06: test accuracy")
    ax_acc.legend()
    ctx.save_figure(fig, "training_curve")

    fig = ctx.figure(figsize=(6.5, 5.5))
    ax = fig.subplots()
    ax.imshow(confusion.numpy(), cmap="Blues")
    for (i, j), n in zip(torch.cartesian_prod(torch.arange(10), torch.arange(10)).tolist(), confusion.flatten().tolist()):
        ax.text(j, i, n, ha="center", va="center", fontsize=7, color="white" if n > confusion.max() / 2 else "black")
    ax.set_xticks(range(10), fashion_mnist.CLASSES, rotation=45, ha="right")
    ax.set_yticks(range(10), fashion_mnist.CLASSES)
    ax.set(xlabel="predicted", ylabel="true", title=f"b04-06: confusion matrix (accuracy {result['accuracy']:.4f})")
    ctx.save_figure(fig, "confusion_matrix")
