"""b04-05 experiment: Grad-CAM on b04-06's Fashion-MNIST CNN. Heatmaps of the last conv block overlaid on test
images, and Adebayo et al.'s (2018) cascading randomisation: re-initialise the layers from the head down and
measure how far the maps move (Spearman rank correlation with the trained model's maps)."""
from __future__ import annotations

import time

import torch

from torchkata.data import fashion_mnist
from torchkata.experiments.b04_06 import CHECKPOINT_KEYS
from torchkata.pipeline.runner import RunContext
from torchkata.training.loop import mean_std
from torchkata.vision import fashion_cnn

SCALES = {
    "smoke": {"images": 8, "shown": 4},
    "default": {"images": 500, "shown": 16},
    "full": {"images": 2000, "shown": 24},
}
# top first: the head, the hidden layer, the second conv block, the first (FashionCNN.features is conv, pool,
# batch norm, ReLU twice)
CASCADE = {"head": ["head"], "hidden layer": ["classifier.1"], "conv block 2": ["features.4", "features.6"],
           "conv block 1": ["features.0", "features.2"]}


def last_block(model):
    """The Grad-CAM layer: the last conv block's ReLU, 7 x 7 maps that still have a spatial layout."""
    return model.features[-1]


def run(ctx: RunContext) -> None:
    p, impl = ctx.params, ctx.impl
    checkpoint = ctx.load_checkpoint("b04-06", required_keys=CHECKPOINT_KEYS)
    model = fashion_cnn.FashionCNN(**checkpoint["config"])
    model.load_state_dict(checkpoint["state_dict"])
    test = fashion_mnist.load(ctx.input("fashion-mnist"), "test")
    order = torch.randperm(len(test["labels"]), generator=ctx.generator)[:p["images"]]
    images, labels = fashion_cnn.normalize(test["images"][order]), test["labels"][order]

    start = time.perf_counter()
    maps = impl.grad_cam(model, last_block(model), images, labels)  # for the true class
    cam_seconds = time.perf_counter() - start
    with torch.no_grad():
        predicted = model(images).argmax(1)

    cascade = impl.cascading_randomization(model, last_block, images, labels, CASCADE,
                                           torch.Generator().manual_seed(ctx.seed))
    # a map that randomisation made constant has no ranks (nan): left out of the mean
    correlations = {name: mean_std(values[~values.isnan()].tolist()) for name, values in cascade.items()}
    # a check of the check: the same model with nothing re-initialised gives the same maps
    again = impl.rank_correlation(maps, impl.grad_cam(model, last_block(model), images, labels))
    ctx.metrics.update(
        images=len(images), accuracy=float((predicted == labels).float().mean()),
        cascade_rank_correlation={name.replace(" ", "_"): {"mean": m, "std": s} for name, (m, s) in correlations.items()},
        fully_randomized_rank_correlation=correlations["conv block 1"][0],
        head_randomized_rank_correlation=correlations["head"][0],
        same_model_rank_correlation=float(again.nanmean()),
        map_mean_over_max=float((maps.mean(dim=(1, 2)) / maps.amax(dim=(1, 2)).clamp(min=1e-12)).mean()),
    )
    ctx.bench.update(grad_cam_seconds=cam_seconds, images_per_s=len(images) / cam_seconds,
                     threads=torch.get_num_threads())

    shown = min(p["shown"], len(images))
    columns = min(shown, 8)
    rows = -(-shown // columns)
    fig = ctx.figure(figsize=(1.6 * columns, 1.9 * rows))
    axes = fig.subplots(rows, columns, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= shown:
            continue
        ax.imshow(test["images"][order[i]].numpy(), cmap="gray")
        ax.imshow(maps[i].numpy(), cmap="jet", alpha=0.45)
        colour = "black" if predicted[i] == labels[i] else "red"
        ax.set_title(f"{fashion_mnist.CLASSES[labels[i]]}\npred. {fashion_mnist.CLASSES[predicted[i]]}",
                     fontsize=7, color=colour)
    fig.suptitle("b04-05: Grad-CAM of the true class at b04-06's last conv block (red title: misclassified)",
                 fontsize=9)
    ctx.save_figure(fig, "gradcam_overlays")

    fig = ctx.figure(figsize=(5.5, 3.6))
    ax = fig.subplots()
    names = ["trained", *CASCADE]
    means = [1.0] + [correlations[n][0] for n in CASCADE]
    stds = [0.0] + [correlations[n][1] for n in CASCADE]
    ax.errorbar(range(len(names)), means, yerr=stds, marker="o", capsize=3)
    ax.axhline(0, color="gray", ls=":")
    ax.set_xticks(range(len(names)), ["trained", *(f"+ {n}" for n in CASCADE)], rotation=20, ha="right")
    ax.set(ylabel="Spearman rank correlation\nwith the trained maps (±std)", ylim=(-0.5, 1.05),
           title=f"b04-05: cascading randomisation, {len(images)} test images")
    ctx.save_figure(fig, "randomization_sanity_check")
