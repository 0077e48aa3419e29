"""a19 experiment: does mixing help? A small CNN on scikit-learn's 8x8 digits (a few hundred training images, where
a regulariser has something to do) trained without mixing, with your Mixup and with your CutMix, over seeds; for a
given seed all three start from the same weights. Each epoch the training images are mixed afresh, batch by batch,
and the shared loop trains on them with your soft cross-entropy as its loss_fn. Test accuracy as curves with the
seeds' spread and as mean ± std; a figure of mixed images; the cost of mixing against torch's own lerp and copy."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from torchkata.data import digits
from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext
from torchkata.training.loop import fit, mean_std, over_seeds, plot_histories

SCALES = {
    "smoke": {"train_size": 128, "test_size": 200, "seeds": 1, "epochs": 1, "channels": [4, 8], "alpha": 1.0,
              "bench_batch": 32, "bench_seconds": 0.02},
    "default": {"train_size": 400, "test_size": 797, "seeds": 3, "epochs": 20, "channels": [16, 32], "alpha": 1.0,
                "bench_batch": 256, "bench_seconds": 0.2},
    "full": {"train_size": 1000, "test_size": 797, "seeds": 10, "epochs": 60, "channels": [32, 64], "alpha": 1.0,
             "bench_batch": 1024, "bench_seconds": 1.0},
}
CLASSES, BATCH_SIZE, LR, WEIGHT_DECAY = 10, 32, 2e-3, 1e-4
VARIANTS = ("none", "mixup", "cutmix")


def cnn(channels: list[int]) -> nn.Sequential:
    """[N, 1, 8, 8] -> two 3x3 convolutions -> 2x2 max pool -> linear: 10 logits."""
    first, second = channels
    return nn.Sequential(nn.Conv2d(1, first, 3, padding=1), nn.ReLU(), nn.Conv2d(first, second, 3, padding=1),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(second * 16, CLASSES))


def mixed_epoch(impl, variant: str, images, labels, alpha: float, generator: torch.Generator):
    """The training set once over, shuffled and mixed in batches of BATCH_SIZE (each its own λ and partners):
    (inputs, target probabilities). Without mixing: the images and one-hot targets."""
    if variant == "none":
        return images, F.one_hot(labels, CLASSES).to(images.dtype)
    mix = impl.mixup if variant == "mixup" else impl.cutmix
    order = torch.randperm(len(images), generator=generator)
    batches = [mix(images[idx], labels[idx], CLASSES, alpha, generator) for idx in order.split(BATCH_SIZE)]
    return torch.cat([b.inputs for b in batches]), torch.cat([b.targets for b in batches])


def train(ctx: RunContext, variant: str, seed: int, train_set, test_set) -> list[dict]:
    p = ctx.params
    torch.manual_seed(seed)  # the same initial weights for every variant of this seed
    model = cnn(p["channels"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    generator, history = torch.Generator().manual_seed(seed), []
    for epoch in range(1, p["epochs"] + 1):
        inputs, targets = mixed_epoch(ctx.impl, variant, *train_set, p["alpha"], generator)
        (record,) = fit(model, optimizer, (inputs, targets), test_set, 1, BATCH_SIZE, generator,
                        loss_fn=ctx.impl.soft_cross_entropy)
        history.append(record | {"epoch": epoch})
    return history


def run(ctx: RunContext) -> None:
    p = ctx.params
    (x_train, y_train), (x_test, y_test) = digits.split(ctx.input("digits"), p["test_size"], ctx.generator,
                                                        p["train_size"])
    train_set, test_set = (x_train.view(-1, 1, 8, 8), y_train), (x_test.view(-1, 1, 8, 8), y_test)
    histories, bands, finals = {}, {}, {}
    for variant in VARIANTS:
        runs = [train(ctx, variant, ctx.seed * 1000 + k, train_set, test_set) for k in range(p["seeds"])]
        histories[variant], bands[variant] = over_seeds(runs)
        finals[variant] = {key: mean_std([run[-1][key] for run in runs]) for key in ("test_accuracy", "train_loss")}
        for h in histories[variant]:
            ctx.log(f"{variant}.test_accuracy", h["test_accuracy"], h["epoch"])

    accuracy = {variant: f["test_accuracy"] for variant, f in finals.items()}
    ctx.metrics.update(
        test_accuracy={variant: mean for variant, (mean, _) in accuracy.items()},
        test_accuracy_std={variant: std for variant, (_, std) in accuracy.items()},
        mixup_gain=accuracy["mixup"][0] - accuracy["none"][0], cutmix_gain=accuracy["cutmix"][0] - accuracy["none"][0],
        train_loss={variant: f["train_loss"][0] for variant, f in finals.items()},
        seeds=p["seeds"], epochs=p["epochs"], alpha=p["alpha"], train_size=len(y_train), test_size=len(y_test))
    plot_histories(ctx, histories, f"a19: ±std of {p['seeds']} seeds",
                   errors=bands)
    plot_final(ctx, accuracy, p)
    plot_examples(ctx, train_set)
    bench(ctx)


def plot_final(ctx: RunContext, accuracy: dict, p: dict) -> None:
    fig = ctx.figure(figsize=(4.8, 3.4))
    ax = fig.subplots()
    means, stds = zip(*accuracy.values())
    ax.bar(list(accuracy), means, yerr=stds, capsize=4, color=[f"C{i}" for i in range(len(accuracy))])
    ax.set(ylim=(min(means) - 0.05, min(1.0, max(means) + 0.03)), ylabel="test accuracy",
           title=f"a19: after {p['epochs']} epochs, mean ± std of {p['seeds']} seeds")
    ctx.save_figure(fig, "final_accuracy")


def plot_examples(ctx: RunContext, train_set) -> None:
    """Four training images mixed both ways, titled with their two largest label weights."""
    images, labels = train_set[0][:4], train_set[1][:4]
    fig = ctx.figure(figsize=(7, 3.8))
    axes = fig.subplots(2, 4)
    for row, mix in zip(axes, (ctx.impl.mixup, ctx.impl.cutmix)):
        mixed = mix(images, labels, CLASSES, 1.0, torch.Generator().manual_seed(ctx.seed))
        for ax, image, target in zip(row, mixed.inputs, mixed.targets):
            weights, classes = target.topk(2)
            ax.imshow(image[0], cmap="gray_r", vmin=0, vmax=1)
            ax.set_title(" + ".join(f"{w:.2f}·{c}" for w, c in zip(weights.tolist(), classes.tolist()) if w > 0),
                         fontsize=8)
            ax.axis("off")
        row[0].text(-0.3, 0.5, mix.__name__, transform=row[0].transAxes, rotation=90, va="center")
    ctx.save_figure(fig, "mixed_examples")


def bench(ctx: RunContext) -> None:
    """Yours against the same arithmetic in torch's own ops (a lerp; a clone and a slice copy), on a CIFAR-sized
    batch: the cost of the bookkeeping around it (sampling, permutation, one-hot targets)."""
    p, g = ctx.params, ctx.generator
    x, y = torch.randn(p["bench_batch"], 3, 32, 32, generator=g), torch.randint(CLASSES, (p["bench_batch"],), generator=g)
    perm = torch.randperm(len(x), generator=g)

    def paste():
        out = x.clone()
        out[:, :, 8:24, 8:24] = x[perm, :, 8:24, 8:24]
        return out

    ctx.bench["mixup"] = compare(lambda: ctx.impl.mixup(x, y, CLASSES, 1.0, g), lambda: torch.lerp(x[perm], x, 0.7),
                                 min_run_time=p["bench_seconds"])
    ctx.bench["cutmix"] = compare(lambda: ctx.impl.cutmix(x, y, CLASSES, 1.0, g), paste, min_run_time=p["bench_seconds"])
    ctx.bench["ratio"] = max(ctx.bench["mixup"]["ratio"], ctx.bench["cutmix"]["ratio"])
    ctx.bench["shape"] = list(x.shape)
