"""b04-01 experiment: the CIFAR-10 CNN trained with the shared loop and a one-cycle learning rate, next to an MLP
baseline with many more parameters on the same images and batches: training curves, test accuracy of both, and a
grid of test images with the CNN's predictions. By default on the generated stand-in (data.cifar10 empty); the run
records which data it used in metrics.json["data"] and names it in every plot title."""
from __future__ import annotations

import time

import torch
from torch import nn

from torchkata.data import cifar10
from torchkata.experiments.b04_06 import class_key
from torchkata.pipeline.bench import median_seconds
from torchkata.pipeline.runner import RunContext
from torchkata.training.loop import evaluate, fit, one_cycle, plot_histories

SCALES = {
    "smoke": {"train_size": 256, "test_size": 128, "epochs": 1, "batch_size": 32, "max_lr": 4e-3,
              "weight_decay": 0.01, "channels": [8, 16, 16], "depth": 1, "stem": None, "mlp_hidden": 32,
              "bench_seconds": 0.02, "shown": 4},
    "default": {"train_size": 7000, "test_size": 2000, "epochs": 4, "batch_size": 64, "max_lr": 4e-3,
                "weight_decay": 0.01, "channels": [16, 32, 64], "depth": 1, "stem": None, "mlp_hidden": 128,
                "bench_seconds": 0.3, "shown": 16},
    # Page's plain DAWNBench backbone (see the README): for a GPU and the real CIFAR-10 (data.cifar10)
    "full": {"train_size": 50000, "test_size": 10000, "epochs": 20, "batch_size": 128, "max_lr": 2e-3,
             "weight_decay": 0.05, "channels": [128, 256, 512], "depth": 1, "stem": 64, "mlp_hidden": 512,
             "bench_seconds": 2.0, "shown": 16},
}


def mlp(hidden: int) -> nn.Sequential:
    """The baseline: pixels -> hidden -> 10, no notion of neighbouring pixels or of translation."""
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def train(model: nn.Module, train_set, test_set, p: dict, seed: int, log=None, prefix: str = "") -> list[dict]:
    """AdamW with a one-cycle learning rate; the batch order comes from `seed`, the same for every model."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=p["max_lr"], weight_decay=p["weight_decay"])
    steps = p["epochs"] * -(-len(train_set[0]) // p["batch_size"])
    return fit(model, optimizer, train_set, test_set, p["epochs"], p["batch_size"], torch.Generator().manual_seed(seed),
               before_step=one_cycle(optimizer, p["max_lr"], steps), log=log, prefix=prefix)


def run(ctx: RunContext) -> None:
    p, impl = ctx.params, ctx.impl
    folder = ctx.input("cifar10")
    train_data, test_data = cifar10.load(folder, "train"), cifar10.load(folder, "test")
    source, classes = train_data["source"], train_data["classes"]
    real = source.startswith("CIFAR-10")
    data_name = "CIFAR-10" if real else "CIFAR-10 stand-in (generated)"
    test_uint8 = test_data["images"][:p["test_size"]]
    mean, std = impl.channel_stats(train_data["images"][:p["train_size"]])
    # channels_last: the convolutions' im2col reads each pixel's channels together
    layout = torch.channels_last
    x_train = impl.normalize(train_data["images"][:p["train_size"]], mean, std).contiguous(memory_format=layout)
    x_test = impl.normalize(test_uint8, mean, std).contiguous(memory_format=layout)
    train_set, test_set = (x_train, train_data["labels"][:p["train_size"]]), (x_test, test_data["labels"][:p["test_size"]])

    cnn = impl.CifarCNN(tuple(p["channels"]), p["depth"], stem=p["stem"]).to(memory_format=layout)
    baseline = mlp(p["mlp_hidden"])
    histories = {"CNN": train(cnn, train_set, test_set, p, ctx.seed, log=ctx.log),
                 "MLP baseline": train(baseline, train_set, test_set, p, ctx.seed, log=ctx.log, prefix="mlp_")}

    result = evaluate(cnn, *test_set)
    confusion = torch.bincount(test_set[1] * 10 + result["predictions"], minlength=100).reshape(10, 10)
    per_class = confusion.diag() / confusion.sum(dim=1).clamp(min=1)
    count = lambda model: sum(t.numel() for t in model.parameters())  # noqa: E731
    ctx.metrics.update(
        test_accuracy=result["accuracy"], test_loss=result["loss"],
        baseline_test_accuracy=histories["MLP baseline"][-1]["test_accuracy"],
        final_train_loss=histories["CNN"][-1]["train_loss"], epochs=p["epochs"], train_images=len(x_train),
        test_images=len(x_test), parameters=count(cnn), baseline_parameters=count(baseline), data=source,
        per_class_accuracy={class_key(c): a for c, a in zip(classes, per_class.tolist())})
    ctx.save_checkpoint({"state_dict": cnn.to(memory_format=torch.contiguous_format).state_dict(), "config": cnn.config,
                         "mean": mean, "std": std, "classes": classes, "data": source}, "model.pt")

    # throughput only: the CNN is built from native ops, so there is no native counterpart to take a ratio against
    cnn.eval()
    with torch.no_grad():
        forward_s = median_seconds(lambda: cnn(x_test[:256]), p["bench_seconds"])
    ctx.bench.update({f"train_seconds_{key}": sum(h["seconds"] for h in history)
                      for key, history in (("cnn", histories["CNN"]), ("mlp", histories["MLP baseline"]))})
    ctx.bench.update(forward_images_per_s=min(256, len(x_test)) / forward_s, threads=torch.get_num_threads())

    plot_histories(ctx, histories, f"b04-01 on {'CIFAR-10' if real else 'the stand-in'}")
    shown = min(p["shown"], len(test_uint8))  # test images shown with their predictions
    columns = min(shown, 8)
    fig = ctx.figure(figsize=(1.5 * columns, 2.2 * -(-shown // columns)))
    for i, ax in enumerate(fig.subplots(-(-shown // columns), columns, squeeze=False).flat):
        ax.axis("off")
        if i >= shown:
            continue
        ax.imshow(test_uint8[i].permute(1, 2, 0).numpy())
        truth, guess = int(test_set[1][i]), int(result["predictions"][i])
        ax.set_title(f"{classes[truth]}\npred. {classes[guess]}", fontsize=7,
                     color="black" if truth == guess else "red")
    fig.suptitle(f"b04-01: CNN predictions on {data_name} test images (red: wrong); "
                 f"test accuracy {result['accuracy']:.3f}", fontsize=9)
    ctx.save_figure(fig, "test_predictions")
