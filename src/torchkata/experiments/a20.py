"""a20 experiment: what the step logger costs. The same CNN training (b04-06's FashionCNN) on Fashion-MNIST (same weights, same batches)
with and without the logger plugged into training.loop's hooks, alternated so that a slow spell of the machine
hits both: the histories must be equal bit for bit (the logger only reads), the time it adds is measured two ways
(the trainings' wall times, and the logger's own summed time), and the log it wrote is plotted."""
from __future__ import annotations

import torch

from torchkata.data import fashion_mnist
from torchkata.training.loop import fit
from torchkata.vision.fashion_cnn import FashionCNN, normalize

SCALES = {
    "smoke": {"train_size": 192, "test_size": 128, "epochs": 1, "channels": [4, 8], "hidden": 32, "batch_size": 64,
              "lr": 2e-3, "repeats": 1},
    "default": {"train_size": 3200, "test_size": 2000, "epochs": 1, "channels": [16, 32], "hidden": 128,
                "batch_size": 64, "lr": 2e-3, "repeats": 3},
    "full": {"train_size": 60000, "test_size": 10000, "epochs": 5, "channels": [32, 64], "hidden": 256,
             "batch_size": 64, "lr": 2e-3, "repeats": 3},
}


def run(ctx) -> None:
    p, steplog = ctx.params, ctx.impl
    folder = ctx.input("fashion-mnist")
    train_set, test_set = fashion_mnist.load(folder, "train"), fashion_mnist.load(folder, "test")
    data = ((normalize(train_set["images"][:p["train_size"]]), train_set["labels"][:p["train_size"]]),
            (normalize(test_set["images"][:p["test_size"]]), test_set["labels"][:p["test_size"]]))
    steps = p["epochs"] * -(-p["train_size"] // p["batch_size"])
    path = ctx.out / "logs" / "steps.jsonl"  # timings: beside the results, not an artifact (not bitwise)

    def train(logged: bool):
        torch.manual_seed(ctx.seed)
        model = FashionCNN(channels=tuple(p["channels"]), hidden=p["hidden"])
        optimizer = torch.optim.Adam(model.parameters(), lr=p["lr"])
        logger = steplog.StepLogger(path, total=steps) if logged else None
        hooks = {"loss_fn": logger.loss_fn(torch.nn.functional.cross_entropy),
                 "before_step": logger.before_step} if logged else {}
        history = fit(model, optimizer, *data, epochs=p["epochs"], batch_size=p["batch_size"],
                      generator=torch.Generator().manual_seed(ctx.seed), **hooks)
        if logger is not None:
            logger.close()
        return history, logger

    seconds = {"plain": [], "logged": []}
    for _ in range(p["repeats"]):  # alternated: plain, logged, plain, logged, ...
        plain, _ = train(False)
        logged, logger = train(True)
        seconds["plain"].append(sum(h["seconds"] for h in plain))
        seconds["logged"].append(sum(h["seconds"] for h in logged))
    records = steplog.read_log(path)

    gap = max(abs(a[k] - b[k]) for a, b in zip(plain, logged) for k in ("train_loss", "test_loss", "test_accuracy"))
    ctx.metrics.update(max_loss_gap_with_logger=gap, logged_steps=len(records), steps=steps,
                       final_test_accuracy=logged[-1]["test_accuracy"], train_size=p["train_size"], epochs=p["epochs"])
    best = {key: min(v) for key, v in seconds.items()}
    ctx.bench.update(train_seconds=seconds, overhead_by_wall_time=best["logged"] / best["plain"] - 1,
                     overhead_by_own_time=logger.overhead_s / sum(r["step_s"] for r in records),
                     logger_us_per_step=logger.overhead_s / len(records) * 1e6,
                     median_step_ms=sorted(r["step_s"] for r in records)[len(records) // 2] * 1e3,
                     peak_cpu_mb=max(r["cpu_mb"] for r in records))
    if torch.cuda.is_available():
        ctx.half("cuda")
        ctx.bench["gpu_mb_at_end"] = records[-1]["gpu_mb"]
    else:
        ctx.half("cuda", skipped="no CUDA device: gpu_mb is logged as null")

    fig = ctx.figure(figsize=(11, 3.2))
    axes = fig.subplots(1, 3)
    step = [r["step"] for r in records]
    axes[0].plot(step, [r["loss"] for r in records], lw=0.8)
    axes[0].set(xlabel="step", ylabel="training loss", title="a20: loss per step")
    axes[1].plot(step, [r["step_s"] * 1e3 for r in records], lw=0.8)
    axes[1].set(xlabel="step", ylabel="ms", title="step time", yscale="log")
    axes[2].plot(step, [r["cpu_mb"] for r in records], lw=0.8)
    axes[2].set(xlabel="step", ylabel="MiB", title="resident CPU memory")
    ctx.save_figure(fig, "step_log")
