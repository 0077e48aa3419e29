"""a08 experiment: the tied MLP (one first layer used twice) against the untied baseline of the same width on
scikit-learn's digits: parameters and test accuracy over several initialisations, the training curves with their
spread, and on real data the shared layer's gradient against the sum of the untied copy's two gradients."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from torchkata.data import digits
from torchkata.pipeline.runner import RunContext
from torchkata.training.loop import fit, mean_std, over_seeds, plot_histories

SCALES = {
    "smoke": {"train_size": 300, "epochs": 1, "repeats": 1, "batch_size": 32, "lr": 3e-3},
    # ~0.97 test accuracy for both
    "default": {"train_size": None, "epochs": 30, "repeats": 3, "batch_size": 32, "lr": 3e-3},
    "full": {"train_size": None, "epochs": 100, "repeats": 20, "batch_size": 32, "lr": 1e-3},
}
TEST_FRACTION = 0.2


def run(ctx: RunContext) -> None:
    p, g, impl = ctx.params, ctx.generator, ctx.impl
    (x_train, y_train), (x_test, y_test) = digits.standardized_split(ctx.input("digits"), TEST_FRACTION, g,
                                                                     p["train_size"])
    features, classes = x_train.shape[1], 10

    # on real data: the shared layer's gradient is the sum of the untied copy's two
    tied = impl.TiedMLP(features, classes).double()
    untied = impl.untie(tied)
    for model in (tied, untied):
        F.cross_entropy(model(x_train.double()), y_train).backward()
    ctx.metrics["shared_grad_max_abs_error"] = max(
        float((getattr(tied.shared, n).grad - getattr(untied.first, n).grad - getattr(untied.second, n).grad).abs().max())
        for n in ("weight", "bias"))

    histories = {"tied": [], "untied": []}
    for repeat, seed in enumerate(torch.randint(0, 2**31, (p["repeats"],), generator=g).tolist()):
        for name, build in (("tied", impl.TiedMLP), ("untied", impl.UntiedMLP)):
            torch.manual_seed(seed)  # the same initial head and batch order for both
            model = build(features, classes)
            optimizer = torch.optim.Adam(model.parameters(), lr=p["lr"])
            histories[name].append(fit(model, optimizer, (x_train, y_train), (x_test, y_test), p["epochs"],
                                       p["batch_size"], torch.Generator().manual_seed(seed),
                                       log=ctx.log if repeat == 0 else None, prefix=f"{name}/"))
            ctx.metrics[f"{name}_parameters"] = impl.parameter_count(model)
            ctx.metrics[f"{name}_optimizer_tensors"] = sum(len(group["params"]) for group in optimizer.param_groups)
    summary = {name: over_seeds(runs) for name, runs in histories.items()}
    for name, runs in histories.items():
        accuracies = [run[-1]["test_accuracy"] for run in runs]
        ctx.metrics[f"{name}_test_accuracy"], ctx.metrics[f"{name}_test_accuracy_std"] = mean_std(accuracies)
        ctx.metrics[f"{name}_test_accuracies"] = accuracies
    ctx.metrics.update(test_accuracy=ctx.metrics["tied_test_accuracy"], repeats=p["repeats"], epochs=p["epochs"],
                       train_samples=len(x_train), test_samples=len(x_test))
    ctx.bench["train_seconds"] = {name: sum(h["seconds"] for run in runs for h in run) for name, runs in histories.items()}
    labels = {name: f"{name} ({ctx.metrics[f'{name}_parameters']} parameters)" for name in histories}
    plot_histories(ctx, {labels[n]: mean for n, (mean, _) in summary.items()},
                   f"a08 digits, ±std of {p['repeats']} inits",
                   errors={labels[n]: std for n, (_, std) in summary.items()})
