"""b04-06 experiment: train the CNN on Fashion-MNIST with the shared loop and a one-cycle learning rate, report its
accuracy on the official 10k test set, plot the training curve and the confusion matrix, and save the model for
b04-10 (transfer learning) and b04-05 (Grad-CAM)."""
from __future__ import annotations

import re
import time

import torch

from torchkata.data import fashion_mnist
from torchkata.pipeline.bench import median_seconds
from torchkata.pipeline.runner import RunContext
from torchkata.training.loop import evaluate, fit, one_cycle, plot_histories

SCALES = {
    "smoke": {"train_size": 256, "test_size": 256, "epochs": 1, "batch_size": 128, "max_lr": 4e-3,
              "weight_decay": 0.01, "channels": [4, 8], "hidden": 16, "dropout": 0.25, "bench_batch": 64,
              "bench_seconds": 0.02},
    "default": {"train_size": 60000, "test_size": 10000, "epochs": 4, "batch_size": 128, "max_lr": 4e-3,
                "weight_decay": 0.01, "channels": [16, 32], "hidden": 128, "dropout": 0.25, "bench_batch": 256,
                "bench_seconds": 0.5},
    "full": {"train_size": 60000, "test_size": 10000, "epochs": 15, "batch_size": 128, "max_lr": 4e-3,
             "weight_decay": 0.01, "channels": [32, 64], "hidden": 256, "dropout": 0.25, "bench_batch": 256,
             "bench_seconds": 2.0},
}
# the keys b04-10 and b04-05 need to rebuild the model
CHECKPOINT_KEYS = ("state_dict", "config", "classes")


def class_key(name: str) -> str:
    """'T-shirt/top' -> 't_shirt_top': a metric key without slashes or spaces."""
    return re.sub(r"\W+", "_", name).lower()


def run(ctx: RunContext) -> None:
    p, impl = ctx.params, ctx.impl
    folder = ctx.input("fashion-mnist")
    train, test = fashion_mnist.load(folder, "train"), fashion_mnist.load(folder, "test")
    # the first N of each split: the official files are already in random order. channels_last: the convolutions'
    # im2col reads each pixel's channels together
    layout = torch.channels_last
    x_train = impl.normalize(train["images"][:p["train_size"]]).contiguous(memory_format=layout)
    x_test = impl.normalize(test["images"][:p["test_size"]]).contiguous(memory_format=layout)
    y_train, y_test = train["labels"][:p["train_size"]], test["labels"][:p["test_size"]]

    model = impl.FashionCNN(channels=tuple(p["channels"]), hidden=p["hidden"], dropout=p["dropout"])
    model = model.to(memory_format=layout)
    optimizer = torch.optim.AdamW(model.parameters(), lr=p["max_lr"], weight_decay=p["weight_decay"], fused=True)
    steps = p["epochs"] * -(-len(x_train) // p["batch_size"])
    cpu_start = time.process_time()
    history = fit(model, optimizer, (x_train, y_train), (x_test, y_test), p["epochs"], p["batch_size"],
                  ctx.generator, before_step=one_cycle(optimizer, p["max_lr"], steps), log=ctx.log)
    cpu_seconds = time.process_time() - cpu_start

    start = time.perf_counter()
    result = evaluate(model, x_test, y_test)
    eval_seconds = time.perf_counter() - start
    confusion = torch.bincount(y_test * 10 + result["predictions"], minlength=100).reshape(10, 10)
    per_class = confusion.diag() / confusion.sum(dim=1).clamp(min=1)
    ctx.metrics.update(
        test_accuracy=result["accuracy"], test_loss=result["loss"], test_correct=result["correct"],
        final_train_loss=history[-1]["train_loss"], epochs=p["epochs"], train_images=len(x_train),
        test_images=len(x_test), parameters=sum(t.numel() for t in model.parameters()),
        per_class_accuracy={class_key(c): float(a) for c, a in zip(fashion_mnist.CLASSES, per_class)},
    )
    model = model.to(memory_format=torch.contiguous_format)  # a checkpoint in the default layout for its users
    ctx.save_checkpoint({"state_dict": model.state_dict(), "config": model.config,
                         "classes": list(fashion_mnist.CLASSES)}, "model.pt")

    # throughput only: the CNN is built from native ops, so there is no native counterpart to take a ratio against
    model.eval()
    batch = x_test[:p["bench_batch"]]
    with torch.no_grad():
        forward_s = median_seconds(lambda: model(batch), p["bench_seconds"])
    train_seconds = sum(h["seconds"] for h in history)
    ctx.bench.update(
        epoch_seconds=[h["seconds"] for h in history], train_seconds=train_seconds,
        # CPU time of the training and its per-epoch evaluations over the threads: the wall time a quiet machine
        # would take, which a loaded one inflates
        train_cpu_seconds_per_thread=cpu_seconds / torch.get_num_threads(),
        train_images_per_s=len(x_train) * p["epochs"] / train_seconds,
        eval_images_per_s=len(x_test) / eval_seconds,
        forward={"batch": len(batch), "median_s": forward_s, "images_per_s": len(batch) / forward_s},
        threads=torch.get_num_threads(),
    )

    plot_histories(ctx, {f"FashionCNN {p['channels']}, one-cycle": history},
                   f"b04-06: Fashion-MNIST, test accuracy {result['accuracy']:.4f}", name="training_curve")
    fig = ctx.figure(figsize=(6.5, 5.5))
    ax = fig.subplots()
    ax.imshow(confusion.numpy(), cmap="Blues")
    for (i, j), n in zip(torch.cartesian_prod(torch.arange(10), torch.arange(10)).tolist(), confusion.flatten().tolist()):
        ax.text(j, i, n, ha="center", va="center", fontsize=7, color="white" if n > confusion.max() / 2 else "black")
    ax.set_xticks(range(10), fashion_mnist.CLASSES, rotation=45, ha="right")
    ax.set_yticks(range(10), fashion_mnist.CLASSES)
    ax.set(xlabel="predicted", ylabel="true", title=f"b04-06: confusion matrix (accuracy {result['accuracy']:.4f})")
    ctx.save_figure(fig, "confusion_matrix")
