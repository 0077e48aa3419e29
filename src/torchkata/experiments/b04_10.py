"""b04-10 experiment: fine-tune b04-06's Fashion-MNIST CNN on a few hundred handwritten digits and compare it
with the same network trained from scratch on the same images for the same number of epochs."""
from __future__ import annotations

import time

import torch

from torchkata.data import digits as digits_data
from torchkata.data import fashion_mnist
from torchkata.experiments.b04_06 import CHECKPOINT_KEYS
from torchkata.pipeline.runner import RunContext
from torchkata.training.loop import evaluate, train_epoch
from torchkata.vision import fashion_cnn

# Transfer buys speed here: with a short budget (8 epochs of 100 digits) fine-tuning beats training from scratch
# by ~0.02-0.045 on every seed we tried; with many more epochs (full) the scratch network catches up.
SCALES = {
    "smoke": {"train_size": 100, "test_size": 300, "epochs": 3, "head_epochs": 1, "batch_size": 16,
              "lr": 1e-3, "full_lr": 1e-3, "source_test_size": 256},
    "default": {"train_size": 100, "test_size": 797, "epochs": 8, "head_epochs": 2, "batch_size": 16,
                "lr": 1e-3, "full_lr": 1e-3, "source_test_size": 10000},
    "full": {"train_size": 100, "test_size": 797, "epochs": 30, "head_epochs": 2, "batch_size": 16,
             "lr": 1e-3, "full_lr": 1e-3, "source_test_size": 10000},
}


def run(ctx: RunContext) -> None:
    p, impl = ctx.params, ctx.impl
    checkpoint = ctx.load_checkpoint("b04-06", required_keys=CHECKPOINT_KEYS)

    # sanity check of the upstream model on its own task: its Fashion-MNIST test accuracy
    source = fashion_mnist.load(ctx.input("fashion-mnist"), "test")
    pretrained = fashion_cnn.FashionCNN(**checkpoint["config"])
    pretrained.load_state_dict(checkpoint["state_dict"])
    source_accuracy = evaluate(pretrained, fashion_cnn.normalize(source["images"][:p["source_test_size"]]),
                                           source["labels"][:p["source_test_size"]])["accuracy"]

    # the held-out test digits and the small labelled training budget, drawn with the seed
    digits = digits_data.load(ctx.input("digits"))
    x, y = impl.digits_to_fashion(digits["images"]), digits["labels"]
    order = torch.randperm(len(x), generator=ctx.generator)
    test, train = order[:p["test_size"]], order[p["test_size"]:p["test_size"] + p["train_size"]]
    x_train, y_train, x_test, y_test = x[train], y[train], x[test], y[test]
    # both models see the same batches in the same order
    order_seed = int(torch.randint(2**31, (), generator=ctx.generator))

    curves = {"finetune": [], "scratch": []}

    def record(kind: str, model, epoch: int, train_loss: float) -> None:
        accuracy = evaluate(model, x_test, y_test)["accuracy"]
        curves[kind].append((train_loss, accuracy))
        ctx.log(f"{kind}_train_loss", train_loss, epoch)
        ctx.log(f"{kind}_test_accuracy", accuracy, epoch)

    start = time.perf_counter()
    finetuned = impl.from_pretrained(checkpoint, num_classes=10)
    impl.fine_tune(finetuned, x_train, y_train, epochs=p["epochs"], head_epochs=p["head_epochs"], lr=p["lr"],
                   full_lr=p["full_lr"], batch_size=p["batch_size"],
                   generator=torch.Generator().manual_seed(order_seed),
                   on_epoch=lambda epoch, loss: record("finetune", finetuned, epoch, loss))
    finetune_seconds = time.perf_counter() - start

    # baseline: same architecture, random weights, every layer at the new layers' learning rate throughout
    start = time.perf_counter()
    scratch = fashion_cnn.FashionCNN(**checkpoint["config"])
    optimizer = torch.optim.Adam(scratch.parameters(), lr=p["lr"], fused=True)
    generator = torch.Generator().manual_seed(order_seed)
    for epoch in range(1, p["epochs"] + 1):
        loss = train_epoch(scratch, optimizer, x_train, y_train, p["batch_size"], generator)["loss"]
        record("scratch", scratch, epoch, loss)
    scratch_seconds = time.perf_counter() - start

    final = {kind: evaluate(model, x_test, y_test) for kind, model in
             (("finetune", finetuned), ("scratch", scratch))}
    ctx.metrics.update(
        finetuned_accuracy=final["finetune"]["accuracy"], scratch_accuracy=final["scratch"]["accuracy"],
        gain=final["finetune"]["accuracy"] - final["scratch"]["accuracy"],
        finetuned_loss=final["finetune"]["loss"], scratch_loss=final["scratch"]["loss"],
        finetuned_final_train_loss=curves["finetune"][-1][0], scratch_final_train_loss=curves["scratch"][-1][0],
        source_test_accuracy=source_accuracy, train_images=len(x_train), test_images=len(x_test),
        epochs=p["epochs"], head_epochs=p["head_epochs"],
    )
    ctx.bench.update(finetune_seconds=finetune_seconds, scratch_seconds=scratch_seconds,
                     train_images_per_s=2 * len(x_train) * p["epochs"] / (finetune_seconds + scratch_seconds),
                     threads=torch.get_num_threads())

    epochs = range(1, p["epochs"] + 1)
    fig = ctx.figure(figsize=(9, 3.4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for kind, label in (("finetune", "fine-tuned from b04-06"), ("scratch", "from scratch")):
        ax_loss.plot(epochs, [c[0] for c in curves[kind]], label=label)
        ax_acc.plot(epochs, [c[1] for c in curves[kind]], label=label)
    for ax in (ax_loss, ax_acc):
        ax.axvline(p["head_epochs"] + 0.5, color="gray", ls=":", label="unfreeze all layers")
    ax_loss.set(xlabel="epoch", ylabel="training cross-entropy", yscale="log", title="b04-10: training loss")
    ax_acc.set(xlabel="epoch", ylabel="held-out accuracy",
               title=f"b04-10: digits, {len(x_train)} labelled training images")
    ax_acc.legend()
    ctx.save_figure(fig, "finetune_vs_scratch")
