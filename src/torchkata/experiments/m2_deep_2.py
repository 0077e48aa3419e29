"""m2-deep-2 experiment: float16 training needs loss scaling. The MLP of m2-deep-1 on Fashion-MNIST under the
hand-written autocast in float16 (the CUDA dtype, run here on the CPU), without loss scaling and with the dynamic
scaler, next to float32: the curves, the scale's history (grown every growth_interval clean steps, halved at each
real float16 overflow), the steps skipped, and how far the float16 gradients are from float32's with and without
the scale."""
from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F

from torchkata.data import fashion_mnist
from torchkata.experiments.m2_deep_1 import Autocast, mlp
from torchkata.pipeline.bench import median_seconds
from torchkata.training import amp
from torchkata.training.loop import fit, plot_histories
from torchkata.vision.fashion_cnn import normalize

SCALES = {
    "smoke": {"train_size": 128, "test_size": 128, "epochs": 1, "hidden": 32, "batch_size": 64, "lr": 1e-3,
              "init_scale": 2.0 ** 16, "growth_interval": 1, "bench_seconds": 0.02},
    "default": {"train_size": 8000, "test_size": 5000, "epochs": 3, "hidden": 128, "batch_size": 128, "lr": 1e-3,
                "init_scale": 2.0 ** 16, "growth_interval": 20, "bench_seconds": 0.3},
    "full": {"train_size": 60000, "test_size": 10000, "epochs": 10, "hidden": 512, "batch_size": 128, "lr": 1e-3,
             "init_scale": 2.0 ** 16, "growth_interval": 200, "bench_seconds": 1.0},
}
SHRINKS = [1.0, 2.0 ** -8, 2.0 ** -16, 2.0 ** -24]  # the loss multiplied by these: gradients moved down the range


def float16():
    return amp.autocast(torch.float16)


def relative_error(got: list[torch.Tensor], want: list[torch.Tensor]) -> float:
    """|got - want| / |want| over all gradients taken as one vector."""
    diff = sum(float((g - w).double().pow(2).sum()) for g, w in zip(got, want))
    return (diff / sum(float(w.double().pow(2).sum()) for w in want)) ** 0.5


def gradients(model, make_context, x, y, shrink: float, scale: float) -> list[torch.Tensor]:
    """The gradients of shrink * loss on one batch, backpropagated as shrink * loss * scale and divided by both
    (powers of two: exact in float32)."""
    model.zero_grad(set_to_none=True)
    with make_context():
        loss = F.cross_entropy(model(x), y) * shrink
    (loss * scale).backward()
    return [p.grad / scale / shrink for p in model.parameters()]


def run(ctx) -> None:
    p, scaling = ctx.params, ctx.impl
    folder = ctx.input("fashion-mnist")
    train_set, test_set = fashion_mnist.load(folder, "train"), fashion_mnist.load(folder, "test")
    data = ((normalize(train_set["images"][:p["train_size"]]), train_set["labels"][:p["train_size"]]),
            (normalize(test_set["images"][:p["test_size"]]), test_set["labels"][:p["test_size"]]))

    def train(make_context, scaler=None):
        torch.manual_seed(ctx.seed)
        model = Autocast(mlp(p["hidden"]), make_context)
        optimizer = torch.optim.Adam(model.parameters(), lr=p["lr"])

        def loss_fn(out, target):
            with make_context():
                return F.cross_entropy(out, target)

        hooks = {} if scaler is None else {"loss_fn": scaler.loss_fn(loss_fn), "before_step": scaler.before_step(optimizer)}
        history = fit(model, optimizer, *data, epochs=p["epochs"], batch_size=p["batch_size"],
                      generator=torch.Generator().manual_seed(ctx.seed), **({"loss_fn": loss_fn} | hooks))
        return model, history

    scaler = scaling.DynamicLossScaler(init_scale=p["init_scale"], growth_interval=p["growth_interval"])
    runs = {"float32": ("float32", train(contextlib.nullcontext)),
            "unscaled": ("float16, no loss scaling", train(float16)),
            "scaled": ("float16, dynamic loss scaling", train(float16, scaler))}
    history = {key: h for key, (_, (_, h)) in runs.items()}

    # gradient fidelity: the trained float32 model's gradients of one batch, recomputed in float16 for a loss made
    # smaller and smaller (as a deeper net or a bigger batch makes them), without a scale and with the scaler's
    # last one, against float32's own
    model = runs["float32"][1][0]
    x, y = data[0][0][:p["batch_size"]], data[0][1][:p["batch_size"]]
    exact = gradients(model, contextlib.nullcontext, x, y, 1.0, 1.0)
    error, zeros = {}, {}
    for shrink in SHRINKS:
        for key, scale in {"unscaled": 1.0, "scaled": scaler.scale_value}.items():
            got = gradients(model, float16, x, y, shrink, scale)
            error.setdefault(key, {})[f"loss_times_2_to_{round(math.log2(shrink))}"] = relative_error(got, exact)
            zeros.setdefault(key, {})[f"loss_times_2_to_{round(math.log2(shrink))}"] = sum(
                int(((g == 0) & (e != 0)).sum()) for g, e in zip(got, exact))

    ctx.metrics.update(
        scaled_test_accuracy=history["scaled"][-1]["test_accuracy"],
        unscaled_test_accuracy=history["unscaled"][-1]["test_accuracy"],
        float32_test_accuracy=history["float32"][-1]["test_accuracy"],
        skipped_steps=scaler.skipped, steps=len(scaler.history), final_scale=scaler.scale_value,
        max_scale=max(scaler.history), scale_history=scaler.history,
        gradient_relative_error=error, flushed_to_zero=zeros, gradient_entries=sum(e.numel() for e in exact),
        final={key: {k: v for k, v in h[-1].items() if k != "seconds"} for key, h in history.items()},
        train_size=p["train_size"], test_size=p["test_size"], epochs=p["epochs"])

    # the cost of scaling: one training step with and without the scaler (float16 on the CPU is slow: no fp16 units)
    steps = {}
    for key, scaled in [("unscaled", False), ("scaled", True)]:
        model, timing_scaler = Autocast(mlp(p["hidden"]), float16), scaling.DynamicLossScaler(enabled=scaled)
        optimizer = torch.optim.Adam(model.parameters(), lr=p["lr"])

        def step(model=model, optimizer=optimizer, timing_scaler=timing_scaler):
            optimizer.zero_grad(set_to_none=True)
            with float16():
                loss = F.cross_entropy(model(x), y)
            timing_scaler.scale(loss).backward()
            timing_scaler.step(optimizer)
            timing_scaler.update()
        steps[key] = median_seconds(step, p["bench_seconds"])
    ctx.bench.update(train_step_s=steps, scaling_overhead_ratio=steps["scaled"] / steps["unscaled"],
                     epoch_seconds={key: [r["seconds"] for r in h] for key, h in history.items()})
    ctx.half("cuda", skipped="no CUDA device: the float16 CUDA path is not run" if not torch.cuda.is_available()
             else "graded by tests/exercises/test_m2_deep_2.py on a GPU, not re-run here")

    plot_histories(ctx, {label: h for label, (_, h) in runs.values()},
                   f"m2-deep-2: Fashion-MNIST MLP ({p['train_size']} train), float16 with and without loss scaling")
    fig = ctx.figure(figsize=(6, 3.4))
    ax = fig.subplots()
    ax.step(range(1, len(scaler.history) + 1), scaler.history, where="post")
    ax.set_yscale("log", base=2)
    ax.set(xlabel="optimizer step", ylabel="loss scale",
           title=f"m2-deep-2: the scale ({scaler.skipped} overflows skipped, growth every {p['growth_interval']} steps)")
    ctx.save_figure(fig, "scale_history")

    fig = ctx.figure(figsize=(5.5, 3.4))
    ax = fig.subplots()
    for key, label in [("unscaled", "float16, no scale"), ("scaled", f"float16, scale {scaler.scale_value:g}")]:
        ax.plot(SHRINKS, [max(e, 1e-6) for e in error[key].values()], "o-", label=label)
    ax.set(xscale="log", yscale="log", xlabel="loss multiplied by", ylabel="gradient error relative to float32",
           title="m2-deep-2: small gradients flush to zero in float16")
    ax.legend()
    ctx.save_figure(fig, "gradient_error")
