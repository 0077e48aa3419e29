"""b04-03 experiment: degradation. b04-08's small CNN (strided) with `depth` plain blocks after each downsampling
block, the same with residual blocks (the same depth, and the same layers but for the shortcuts), and a shallow
plain one (one block per stage), trained on a Fashion-MNIST subset with the same data, batch order and one-cycle
schedule. The deep plain network trains worse than both: higher training loss, not only lower test accuracy."""
from __future__ import annotations

import torch

from torchkata.experiments.b04_08 import fashion_data, train_variant
from torchkata.pipeline.runner import RunContext
from torchkata.training.loop import plot_histories
from torchkata.vision.small_cnn import small_cnn

SCALES = {
    "smoke": {"train_size": 64, "test_size": 64, "epochs": 1, "batch_size": 64, "max_lr": 4e-3,
              "weight_decay": 0.01, "channels": [2, 4], "depth": 2, "shallow_depth": 0, "hidden": 8,
              "dropout": 0.0, "bench_batch": 32, "bench_seconds": 0.02},
    "default": {"train_size": 1536, "test_size": 1000, "epochs": 4, "batch_size": 128, "max_lr": 4e-3,
                "weight_decay": 0.01, "channels": [8, 16], "depth": 5, "shallow_depth": 1, "hidden": 64,
                "dropout": 0.0, "bench_batch": 256, "bench_seconds": 0.2},
    "full": {"train_size": 60000, "test_size": 10000, "epochs": 10, "batch_size": 128, "max_lr": 4e-3,
             "weight_decay": 0.01, "channels": [16, 32, 64], "depth": 9, "shallow_depth": 1, "hidden": 128,
             "dropout": 0.0, "bench_batch": 256, "bench_seconds": 1.0},
}


def conv_layers(depth: int, widths: int) -> int:
    """3x3 convolutions on the main path: one downsampling conv and `depth` two-conv blocks per width."""
    return widths * (1 + 2 * depth)


def run(ctx: RunContext) -> None:
    p, impl = ctx.params, ctx.impl
    train, test = fashion_data(ctx)
    deep, shallow, widths = p["depth"], p["shallow_depth"], len(p["channels"])
    variants = {"shallow_plain": (impl.PlainBlock, shallow), "deep_plain": (impl.PlainBlock, deep),
                "deep_residual": (impl.ResidualBlock, deep)}
    histories = {}
    for name, (block, depth) in variants.items():
        def build():
            return small_cnn(p["channels"], "stride", hidden=p["hidden"], dropout=p["dropout"],
                             stage=lambda c: block(c, c), depth=depth)
        histories[name] = train_variant(ctx, name, build, train, test)[0]
        ctx.metrics[f"{name}_conv_layers"] = conv_layers(depth, widths)
        # the training loss of each epoch: degradation is a training result
        ctx.metrics[f"{name}_train_loss_by_epoch"] = [h["train_loss"] for h in histories[name]]
    m = ctx.metrics
    m.update(degradation_train_loss_gap=m["deep_plain_final_train_loss"] - m["deep_residual_final_train_loss"],
             epochs=p["epochs"], train_images=len(train[0]), test_images=len(test[0]), channels=p["channels"])
    ctx.bench["threads"] = torch.get_num_threads()
    plot_histories(ctx, {f"{name.replace('_', ' ')} ({conv_layers(depth, widths)} conv layers)": histories[name]
                         for name, (_, depth) in variants.items()},
                   f"b04-03: {len(train[0])} images", name="degradation")
