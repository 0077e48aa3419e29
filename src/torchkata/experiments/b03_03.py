"""b03-03 experiment: your dropout against nn.Dropout. First the statistics: the keep rate and the mean output
over a million units for several p, each error in binomial standard deviations, and whether your mask is
F.dropout's under the same seed. Then an MLP on scikit-learn's digits trained three times from one
initialisation and one batch order: without dropout, with your Dropout and with nn.Dropout; the generalisation
gap (train against test, both in eval mode) of each."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from torchkata.data import digits
from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext
from torchkata.training.loop import evaluate, fit, plot_histories

SCALES = {
    "smoke": {"units": 20_000, "test_size": 200, "train_size": 192, "hidden": 64, "p": 0.5, "epochs": 1,
              "batch_size": 64, "lr": 1e-3, "bench_shape": [256, 256], "bench_seconds": 0.02},
    "default": {"units": 1_000_000, "test_size": 400, "train_size": 1397, "hidden": 256, "p": 0.5, "epochs": 20,
                "batch_size": 64, "lr": 1e-3, "bench_shape": [1024, 1024], "bench_seconds": 0.3},
    "full": {"units": 10_000_000, "test_size": 400, "train_size": 1397, "hidden": 1024, "p": 0.5, "epochs": 100,
             "batch_size": 64, "lr": 1e-3, "bench_shape": [4096, 1024], "bench_seconds": 1.0},
}
PROBABILITIES = [0.1, 0.3, 0.5, 0.8]


def dropout_mlp(hidden: int, make_dropout=None) -> nn.Sequential:
    """64 -> hidden -> hidden -> 10 with ReLUs, each followed by make_dropout() where it is given."""
    drop = lambda: [] if make_dropout is None else [make_dropout()]  # noqa: E731
    return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), *drop(), nn.Linear(hidden, hidden), nn.ReLU(), *drop(),
                         nn.Linear(hidden, 10))


def statistics(ctx: RunContext, units: int) -> dict:
    """Keep rate and mean output of yours and of nn.Dropout on `units` ones, errors in standard deviations."""
    x, seed = torch.ones(units), int(torch.randint(2**31, (), generator=ctx.generator))
    rows = {}
    for p in PROBABILITIES:
        torch.manual_seed(seed + 1)  # not your seed: two independent samples (the same seed gives the same mask)
        outputs = {"yours": ctx.impl.Dropout(p, torch.Generator().manual_seed(seed))(x), "nn.Dropout": nn.Dropout(p)(x)}
        keep_sigma, mean_sigma = math.sqrt(p * (1 - p) / units), math.sqrt(p / (1 - p) / units)
        rows[f"{p:g}"] = {}
        for name, out in outputs.items():
            keep_rate = float((out != 0).double().mean())
            rows[f"{p:g}"][name] = {"keep_rate": keep_rate,
                                    "keep_rate_error_sigmas": abs(keep_rate - (1 - p)) / keep_sigma,
                                    "mean_error_sigmas": abs(float(out.double().mean()) - 1) / mean_sigma}
    return rows


def run(ctx: RunContext) -> None:
    p = ctx.params
    stats = statistics(ctx, p["units"])
    x = torch.randn(64, 128, generator=ctx.generator)
    torch.manual_seed(1)
    theirs = F.dropout(x, 0.3)
    mask_equal = torch.equal(ctx.impl.dropout(x, 0.3, True, torch.Generator().manual_seed(1)), theirs)

    train, test = digits.split(ctx.input("digits"), p["test_size"], ctx.generator, p["train_size"])
    order_seed = int(torch.randint(2**31, (), generator=ctx.generator))
    yours = torch.Generator().manual_seed(order_seed)
    makers = {"no dropout": None, "your dropout": lambda: ctx.impl.Dropout(p["p"], yours),
              "nn.Dropout": lambda: nn.Dropout(p["p"])}
    histories, gap = {}, {}
    for label, make_dropout in makers.items():
        torch.manual_seed(order_seed)  # one initialisation for all three (dropout has no parameters), and
        model = dropout_mlp(p["hidden"], make_dropout)  # nn.Dropout's masks from the default generator
        optimizer = torch.optim.Adam(model.parameters(), lr=p["lr"])
        histories[label] = fit(model, optimizer, train, test, p["epochs"], p["batch_size"],
                               torch.Generator().manual_seed(order_seed), log=ctx.log, prefix=f"{label}.")
        on_train, on_test = evaluate(model, *train), evaluate(model, *test)
        gap[label] = {"train_accuracy": on_train["accuracy"], "test_accuracy": on_test["accuracy"],
                      "accuracy_gap": on_train["accuracy"] - on_test["accuracy"],
                      "train_loss": on_train["loss"], "test_loss": on_test["loss"],
                      "loss_gap": on_test["loss"] - on_train["loss"]}

    ctx.metrics.update(
        keep_rate_error_sigmas=max(row["yours"]["keep_rate_error_sigmas"] for row in stats.values()),
        mean_error_sigmas=max(row["yours"]["mean_error_sigmas"] for row in stats.values()),
        statistics=stats, mask_equals_F_dropout_under_same_seed=mask_equal, generalisation=gap,
        test_accuracy={label: g["test_accuracy"] for label, g in gap.items()},
        p=p["p"], units=p["units"], epochs=p["epochs"], train_size=len(train[0]))
    y = torch.randn(*p["bench_shape"], generator=ctx.generator)
    g = torch.Generator().manual_seed(0)
    ctx.bench["dropout"] = compare(lambda: ctx.impl.dropout(y, 0.5, True, g), lambda: F.dropout(y, 0.5),
                                   min_run_time=p["bench_seconds"])
    ctx.bench.update(ratio=ctx.bench["dropout"]["ratio"], shape=p["bench_shape"], threads=torch.get_num_threads(),
                     train_s={label: sum(h["seconds"] for h in history) for label, history in histories.items()})
    plot_histories(ctx, histories, f"b03-03: digits MLP, dropout p={p['p']}")
