"""b04-04 experiment: b04-06's Fashion-MNIST CNN trained with and without augmentation (random crop with padding and
horizontal flip, from torchkata.vision.augment) on the same images, over several seeds: test accuracy of each with
its spread over the seeds, the curves with their error bands, and a grid of what each transform does to a few
training images. The training set is small on purpose: augmentation is a regulariser, it pays where a model would
learn its training images by heart."""
from __future__ import annotations

import time

import torch
from torch import nn

from torchkata.data import fashion_mnist
from torchkata.pipeline.runner import RunContext
from torchkata.training.loop import fit, mean_std, one_cycle, over_seeds, plot_histories
from torchkata.vision import fashion_cnn

SCALES = {
    "smoke": {"train_size": 128, "test_size": 128, "epochs": 1, "batch_size": 16, "seeds": 2, "max_lr": 4e-3,
              "weight_decay": 0.01, "channels": [4, 8], "hidden": 16, "padding": 2, "flip": 0.5, "shown": 4},
    "default": {"train_size": 2000, "test_size": 1000, "epochs": 6, "batch_size": 64, "seeds": 3, "max_lr": 4e-3,
                "weight_decay": 0.01, "channels": [16, 32], "hidden": 128, "padding": 2, "flip": 0.5, "shown": 8},
    "full": {"train_size": 60000, "test_size": 10000, "epochs": 30, "batch_size": 128, "seeds": 5, "max_lr": 4e-3,
             "weight_decay": 0.01, "channels": [32, 64], "hidden": 256, "padding": 2, "flip": 0.5, "shown": 8},
}
CONDITIONS = ("no augmentation", "crop + flip")
KEYS = {name: name.replace(" + ", "_and_").replace(" ", "_") for name in CONDITIONS}  # metric names


class Standardize(nn.Module):
    """Pixels in [0, 1] -> zero mean and unit std with the Fashion-MNIST training set's statistics."""

    def forward(self, x):
        return (x - fashion_cnn.MEAN) / fashion_cnn.STD


def pixels(images):
    """uint8 images [N, 28, 28] -> float [N, 1, 28, 28] in [0, 1]."""
    return images.float().div(255).unsqueeze(1)


def train_cnn(ctx: RunContext, augmented: bool, seed: int, train_set, test_set) -> list[dict]:
    """One training from `seed` (initial weights, batch order and augmentation draws), AdamW with a one-cycle rate."""
    p = ctx.params
    torch.manual_seed(seed)
    cnn = fashion_cnn.FashionCNN(channels=tuple(p["channels"]), hidden=p["hidden"])
    steps = p["epochs"] * -(-len(train_set[0]) // p["batch_size"])
    # the augmentation is a layer in front of the CNN: fit's training batches pass through it, evaluation does not.
    # It sees pixels in [0, 1], so that the zeros it pads with are the images' black background
    model = nn.Sequential(ctx.impl.Augment(seed, padding=p["padding"], flip=p["flip"]) if augmented else nn.Identity(),
                          Standardize(), cnn)
    optimizer = torch.optim.AdamW(model.parameters(), lr=p["max_lr"], weight_decay=p["weight_decay"])
    return fit(model, optimizer, train_set, test_set, p["epochs"], p["batch_size"], torch.Generator().manual_seed(seed),
               before_step=one_cycle(optimizer, p["max_lr"], steps))


def run(ctx: RunContext) -> None:
    p, impl = ctx.params, ctx.impl
    folder = ctx.input("fashion-mnist")
    train, test = fashion_mnist.load(folder, "train"), fashion_mnist.load(folder, "test")
    # the first N of each split: the official files are already in random order
    train_set = (pixels(train["images"][:p["train_size"]]), train["labels"][:p["train_size"]])
    test_set = (pixels(test["images"][:p["test_size"]]), test["labels"][:p["test_size"]])

    seeds = [ctx.seed * 1000 + i for i in range(p["seeds"])]  # the run's seed picks its own set of seeds
    runs, seconds = {}, {}
    for name in CONDITIONS:
        start = time.perf_counter()
        runs[name] = [train_cnn(ctx, name != "no augmentation", seed, train_set, test_set) for seed in seeds]
        seconds[name] = time.perf_counter() - start
    final = {name: [h[-1]["test_accuracy"] for h in histories] for name, histories in runs.items()}
    (plain_mean, plain_std), (aug_mean, aug_std) = (mean_std(final[name]) for name in CONDITIONS)
    ctx.metrics.update(
        augmented_test_accuracy=aug_mean, augmented_test_accuracy_std=aug_std,
        plain_test_accuracy=plain_mean, plain_test_accuracy_std=plain_std,
        accuracy_gain=aug_mean - plain_mean, per_seed_test_accuracy={KEYS[k]: v for k, v in final.items()},
        final_train_loss={KEYS[k]: mean_std([h[-1]["train_loss"] for h in v])[0] for k, v in runs.items()},
        seeds=seeds, epochs=p["epochs"], train_images=len(train_set[0]), test_images=len(test_set[0]))
    ctx.bench.update({f"train_seconds_{KEYS[k]}": v for k, v in seconds.items()})
    ctx.bench["augmented_over_plain_time"] = seconds[CONDITIONS[1]] / seconds[CONDITIONS[0]]

    curves, bands = zip(*(over_seeds(runs[name]) for name in CONDITIONS))
    plot_histories(ctx, dict(zip(CONDITIONS, curves)),
                   f"b04-04: Fashion-MNIST, {len(train_set[0])} training images, mean ± std over {len(seeds)} seeds",
                   errors=dict(zip(CONDITIONS, bands)))

    fig = ctx.figure(figsize=(6.5, 3.4))
    ax = fig.subplots()
    for i, name in enumerate(CONDITIONS):
        m, s = mean_std(final[name])
        ax.errorbar([i], [m], yerr=[s], marker="o", capsize=4)
        ax.scatter([i] * len(final[name]), final[name], color="gray", s=10, zorder=3)
    ax.set_xticks(range(len(CONDITIONS)), CONDITIONS)
    ax.set(xlim=(-0.5, len(CONDITIONS) - 0.5), ylabel=f"test accuracy ({len(test_set[0])} images)",
           title=f"b04-04: with against without augmentation (mean ± std, dots: {len(seeds)} seeds)")
    ctx.save_figure(fig, "accuracy_with_without")

    shown = train_set[0][:p["shown"]]
    g = torch.Generator().manual_seed(ctx.seed)
    rows = {"original": shown, f"crop (padding {p['padding']})": impl.random_crop(shown, p["padding"], g),
            "flip (p = 1)": impl.random_flip(shown, g, 1.0), "affine (±10°, ±10%, zoom 0.9-1.1)": impl.random_affine(shown, g),
            "erasing (p = 1)": impl.random_erasing(shown, g, 1.0)}
    fig = ctx.figure(figsize=(1.2 * len(shown) + 1.5, 1.3 * len(rows)))
    axes = fig.subplots(len(rows), len(shown), squeeze=False)
    for row, (label, images) in zip(axes, rows.items()):
        for ax, image in zip(row, images):
            ax.imshow(image[0].numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set(xticks=[], yticks=[])
        row[0].set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    fig.suptitle("b04-04: each transform on the same training images", fontsize=9)
    ctx.save_figure(fig, "augmentations")
