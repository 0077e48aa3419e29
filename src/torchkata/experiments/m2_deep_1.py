"""m2-deep-1 experiment: an MLP on Fashion-MNIST trained in float32, under the hand-written autocast (bfloat16 on
CPU, float16 on CUDA) and under torch.autocast, from the same initial weights and batch order: the curves, the final
accuracies, whether the hand-written AMP reproduces torch.autocast's training bit for bit, and the step times."""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from torchkata.data import fashion_mnist
from torchkata.pipeline.bench import compare, median_seconds
from torchkata.training.loop import fit, plot_histories
from torchkata.vision.fashion_cnn import normalize

SCALES = {
    "smoke": {"train_size": 128, "test_size": 128, "epochs": 1, "hidden": 32, "batch_size": 64, "lr": 1e-3,
              "bench_batch": 64, "bench_seconds": 0.02},
    "default": {"train_size": 8000, "test_size": 5000, "epochs": 3, "hidden": 128, "batch_size": 128, "lr": 1e-3,
                "bench_batch": 128, "bench_seconds": 0.3},
    "full": {"train_size": 60000, "test_size": 10000, "epochs": 10, "hidden": 512, "batch_size": 128, "lr": 1e-3,
             "bench_batch": 256, "bench_seconds": 1.0},
}


class Autocast(nn.Module):
    """`model` whose forward runs inside the context that `make_context()` opens (an AMP region)."""

    def __init__(self, model: nn.Module, make_context):
        super().__init__()
        self.model, self.make_context = model, make_context

    def forward(self, x):
        with self.make_context():
            return self.model(x)


def mlp(hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, 10))


def contexts(amp, device: str) -> dict[str, tuple[str, callable]]:
    dtype = amp.low_precision_dtype(device)
    name = str(dtype).removeprefix("torch.")
    return {"float32": ("float32", contextlib.nullcontext),
            "amp": (f"hand-written autocast ({name})", lambda: amp.autocast(dtype)),
            "torch": (f"torch.autocast ({name})", lambda: torch.autocast(device, dtype=dtype))}


def train(p, make_context, data, seed: int, device: str = "cpu"):
    torch.manual_seed(seed)
    model = Autocast(mlp(p["hidden"]).to(device), make_context)
    optimizer = torch.optim.Adam(model.parameters(), lr=p["lr"])

    def loss_fn(out, target):  # the loss inside the region too: its float32 rule applies
        with make_context():
            return F.cross_entropy(out, target)

    history = fit(model, optimizer, *data, epochs=p["epochs"], batch_size=p["batch_size"],
                  generator=torch.Generator().manual_seed(seed), loss_fn=loss_fn)
    return model, optimizer, loss_fn, history


def step_seconds(model, optimizer, loss_fn, x, y, seconds: float) -> float:
    def step():
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()
    return median_seconds(step, seconds)


def run(ctx) -> None:
    p, amp = ctx.params, ctx.impl
    folder = ctx.input("fashion-mnist")
    train_set, test_set = fashion_mnist.load(folder, "train"), fashion_mnist.load(folder, "test")
    data = ((normalize(train_set["images"][:p["train_size"]]), train_set["labels"][:p["train_size"]]),
            (normalize(test_set["images"][:p["test_size"]]), test_set["labels"][:p["test_size"]]))

    runs, steps = {}, {}
    x, y = data[0][0][:p["bench_batch"]], data[0][1][:p["bench_batch"]]
    for key, (label, make_context) in contexts(amp, "cpu").items():
        model, optimizer, loss_fn, history = train(p, make_context, data, ctx.seed)
        runs[key] = (label, history)
        steps[key] = step_seconds(model, optimizer, loss_fn, x, y, p["bench_seconds"])
    history = {key: h for key, (_, h) in runs.items()}
    gap = max(abs(a[k] - b[k]) for a, b in zip(history["amp"], history["torch"]) for k in ("train_loss", "test_loss"))

    table = {}  # what each op of the model returns under the hand-written rules and under torch.autocast
    probe = data[0][0][:4].flatten(1)
    layer = nn.Linear(784, 10)
    for name, call in {"linear": lambda: layer(probe), "relu": lambda: F.relu(layer(probe)),
                       "cross_entropy": lambda: F.cross_entropy(layer(probe), y[:4]),
                       "log_softmax": lambda: F.log_softmax(layer(probe), 1)}.items():
        with amp.autocast(torch.bfloat16):
            ours = call().dtype
        with torch.autocast("cpu", dtype=torch.bfloat16):
            theirs = call().dtype
        table[name] = {"hand_written": str(ours), "torch_autocast": str(theirs)}

    ctx.metrics.update(
        amp_test_accuracy=history["amp"][-1]["test_accuracy"], float32_test_accuracy=history["float32"][-1]["test_accuracy"],
        torch_autocast_test_accuracy=history["torch"][-1]["test_accuracy"],
        accuracy_gap_to_float32=history["amp"][-1]["test_accuracy"] - history["float32"][-1]["test_accuracy"],
        max_loss_gap_to_torch_autocast=gap, bitwise_equal_to_torch_autocast=gap == 0.0, output_dtypes=table,
        final={key: {k: v for k, v in h[-1].items() if k != "seconds"} for key, h in history.items()},
        train_size=p["train_size"], test_size=p["test_size"], epochs=p["epochs"])

    model = mlp(p["hidden"])
    with torch.no_grad():
        forward = compare(lambda: Autocast(model, contexts(amp, "cpu")["amp"][1])(x),
                          lambda: Autocast(model, contexts(amp, "cpu")["torch"][1])(x), p["bench_seconds"])
    ctx.bench.update(train_step_s=steps, step_ratio_amp_to_float32=steps["amp"] / steps["float32"],
                     step_ratio_amp_to_torch_autocast=steps["amp"] / steps["torch"], forward_amp_vs_torch=forward,
                     epoch_seconds={key: [r["seconds"] for r in h] for key, h in history.items()})

    if torch.cuda.is_available():  # the CUDA path: float16, its first loss under each context (bench: not bitwise)
        ctx.half("cuda")
        for key, (_, make_context) in contexts(amp, "cuda").items():
            torch.manual_seed(ctx.seed)
            model = Autocast(mlp(p["hidden"]).cuda(), make_context)
            with make_context():
                ctx.bench.setdefault("cuda_first_loss", {})[key] = float(F.cross_entropy(model(x.cuda()), y.cuda()))
    else:
        ctx.half("cuda", skipped="no CUDA device: the float16 CUDA path is not run")

    plot_histories(ctx, {label: h for label, h in runs.values()},
                   f"m2-deep-1: Fashion-MNIST MLP ({p['train_size']} train), float32 vs AMP")
