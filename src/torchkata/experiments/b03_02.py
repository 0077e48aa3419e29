"""b03-02 experiment: MNIST without torchvision. Your IDX reader reads the raw files (gzip as they ship) and
an MLP is trained on them with the shared loop, beside a linear softmax classifier on the same data and batch
order: Fashion-MNIST's raw files (config data.fashion_mnist) by default, real MNIST where data.mnist names a folder
of its four IDX files. On Fashion-MNIST the tensors read are checked against the prepared copy the project made with its own
reader, and your reader is timed against that one."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from torchkata.data import fashion_mnist, idx
from torchkata.nn.fashion_mlp import flat, mlp
from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext
from torchkata.training.loop import fit, plot_histories

SCALES = {
    # smoke reads only the 10k test files: a few hundred of them train, the rest test
    "smoke": {"train_size": 300, "epochs": 1, "widths": [32], "batch_size": 64, "lr": 1e-3,
              "bench_file": "t10k-labels-idx1-ubyte", "bench_seconds": 0.02},
    "default": {"train_size": None, "epochs": 10, "widths": [256, 128], "batch_size": 128, "lr": 1e-3,
                "bench_file": "t10k-images-idx3-ubyte", "bench_seconds": 0.3},
    "full": {"train_size": None, "epochs": 40, "widths": [1024, 512], "batch_size": 128, "lr": 1e-3,
             "bench_file": "t10k-images-idx3-ubyte", "bench_seconds": 1.0},
}


def splits(ctx: RunContext, folder: Path) -> tuple[tuple, tuple]:
    """(train, test) as (flat normalised images, labels) read with your reader."""
    test = ctx.impl.load_split(folder, "test")
    size = ctx.params["train_size"]
    train = ctx.impl.load_split(folder, "train") if size is None else (test[0][:size], test[1][:size])
    if size is not None:
        test = (test[0][size:], test[1][size:])
    return (flat(train[0]), train[1]), (flat(test[0]), test[1])


def run(ctx: RunContext) -> None:
    p = ctx.params
    dataset, folder = ("mnist", ctx.input("mnist")) if "mnist" in ctx.inputs else ("fashion-mnist",
                                                                                   ctx.input("fashion_mnist"))
    if dataset == "fashion-mnist":  # the same tensors as the project's own reader prepared
        prepared = fashion_mnist.load(ctx.input("fashion-mnist"), "test")
        images, labels = ctx.impl.load_split(folder, "test")
        ctx.metrics["reader_matches_prepared"] = (torch.equal(images, prepared["images"])
                                                  and torch.equal(labels, prepared["labels"]))
    train, test = splits(ctx, folder)

    seed = int(torch.randint(2**31, (), generator=ctx.generator))
    models = {f"MLP {'-'.join(map(str, [784, *p['widths'], 10]))}": lambda: mlp(tuple(p["widths"])),
              "linear softmax": lambda: nn.Linear(784, 10)}
    histories = {}
    for label, build in models.items():
        torch.manual_seed(seed)
        model = build()
        optimizer = torch.optim.Adam(model.parameters(), lr=p["lr"])
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, p["epochs"])
        histories[label] = fit(model, optimizer, train, test, p["epochs"], p["batch_size"],
                               torch.Generator().manual_seed(seed), scheduler=schedule, log=ctx.log,
                               prefix="mlp." if label.startswith("MLP") else "linear.")
    (mlp_label, mlp_history), (_, linear_history) = histories.items()
    ctx.metrics.update(
        dataset=dataset, source=str(folder), test_accuracy=mlp_history[-1]["test_accuracy"],
        test_loss=mlp_history[-1]["test_loss"], linear_test_accuracy=linear_history[-1]["test_accuracy"],
        train_images=len(train[0]), test_images=len(test[0]), epochs=p["epochs"], model=mlp_label)
    plot_histories(ctx, histories, f"b03-02: {dataset} read with your IDX reader")

    path = ctx.impl.find(folder, p["bench_file"])
    ctx.bench["read_idx"] = compare(lambda: ctx.impl.read_idx(path), lambda: idx.read_idx(path), p["bench_seconds"])
    ctx.bench.update(ratio=ctx.bench["read_idx"]["ratio"], bench_file=path.name,
                     train_s={label: sum(h["seconds"] for h in history) for label, history in histories.items()})
