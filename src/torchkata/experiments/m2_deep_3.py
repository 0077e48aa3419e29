"""m2-deep-3 experiment: the tiny Transformer of a13 (torchkata.nn.transformer, scikit-learn's digits read as
sequences of 8 rows of 8 pixels) trained with the hand-written SGD (momentum 0.9) at a learning rate too large for
it, over several seeds: without clipping every seed diverges (the loss runs to inf/nan or above 10 times its first
value), and with the gradient norm clipped (a17's clip_grad_norm_, through the GradientClipper you write) every seed
trains. Reported: the clipped run's final train loss (the metric) and test accuracy, the step where each unclipped
seed diverged, the gradient norms before clipping and how often clipping was active."""
from __future__ import annotations

import math
import statistics

import torch

from torchkata.data import digits
from torchkata.nn.transformer import SequenceClassifier, digit_rows
from torchkata.optim.convergence import LossRecorder
from torchkata.optim.sgd import SGD
from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext
from torchkata.training.loop import fit, mean_std

SCALES = {
    "smoke": {"test_size": 100, "train_size": 96, "seeds": 2, "epochs": 1, "d_model": 16, "heads": 2, "layers": 1,
              "batch_size": 32, "lr": 0.5, "max_norm": 0.25, "bench_seconds": 0.02},
    "default": {"test_size": 497, "train_size": 800, "seeds": 3, "epochs": 8, "d_model": 32, "heads": 4, "layers": 2,
                "batch_size": 32, "lr": 0.5, "max_norm": 0.25, "bench_seconds": 0.3},
    "full": {"test_size": 497, "train_size": None, "seeds": 5, "epochs": 20, "d_model": 32, "heads": 4, "layers": 2,
             "batch_size": 32, "lr": 0.5, "max_norm": 0.25, "bench_seconds": 1.0},
}
MOMENTUM = 0.9
DIVERGENCE_FACTOR = 10.0  # a loss 10 times its first value (ln 10 ≈ 2.3 at the start) has blown up


def finite_or_none(value: float) -> float | None:
    """metrics.json holds numbers: a diverged run's inf or nan is written as null."""
    return value if math.isfinite(value) else None


def log_band(curves: list[list[float]]) -> tuple[list[float], list[float], list[float]]:
    """Per step over seeds: the geometric mean and the band exp(mean ± std of the log), nan where a seed is not
    finite (a log scale shows a blow-up over many decades; the arithmetic std of 1 and 1e17 is meaningless)."""
    centre, low, high = [], [], []
    for values in zip(*curves):
        if all(math.isfinite(v) and v > 0 for v in values):
            mean, std = mean_std([math.log(v) for v in values])
        else:
            mean, std = math.nan, math.nan
        centre.append(math.exp(mean))
        low.append(math.exp(mean - std))
        high.append(math.exp(mean + std))
    return centre, low, high


def run(ctx: RunContext) -> None:
    p = ctx.params
    (x_train, y_train), (x_test, y_test) = digits.split(ctx.input("digits"), p["test_size"],
                                                        torch.Generator().manual_seed(0), p["train_size"])
    train, test = (digit_rows(x_train), y_train), (digit_rows(x_test), y_test)
    variants = {"unclipped": None, "clipped": p["max_norm"]}
    results = {name: [] for name in variants}
    for k in range(p["seeds"]):
        seed = ctx.seed * 1000 + k
        for name, max_norm in variants.items():
            torch.manual_seed(seed)  # the same initial weights and batches for both variants of a seed
            model = SequenceClassifier(8, 10, 8, d_model=p["d_model"], heads=p["heads"], layers=p["layers"],
                                       dim_feedforward=2 * p["d_model"])
            clipper, recorder = ctx.impl.GradientClipper(max_norm), LossRecorder()
            history = fit(model, SGD(model.parameters(), lr=p["lr"], momentum=MOMENTUM), train, test, p["epochs"],
                          p["batch_size"], torch.Generator().manual_seed(seed), loss_fn=recorder, before_step=clipper)
            results[name].append({"history": history, "losses": recorder.losses, "clipper": clipper,
                                  "diverged_at": ctx.impl.first_divergence(recorder.losses, DIVERGENCE_FACTOR)})
    for step, loss in enumerate(log_band([r["losses"] for r in results["clipped"]])[0]):
        ctx.log("clipped_train_loss", loss, step)

    clipped, unclipped = results["clipped"], results["unclipped"]
    loss_mean, loss_std = mean_std([r["history"][-1]["train_loss"] for r in clipped])
    accuracy = {name: dict(zip(("mean", "std"), mean_std([r["history"][-1]["test_accuracy"] for r in runs])))
                for name, runs in results.items()}
    ctx.metrics.update(
        clipped_final_train_loss=loss_mean, clipped_final_train_loss_std=loss_std, test_accuracy=accuracy,
        unclipped_diverged_seeds=sum(r["diverged_at"] is not None for r in unclipped),
        clipped_diverged_seeds=sum(r["diverged_at"] is not None for r in clipped),
        unclipped_diverged_at_step=[r["diverged_at"] for r in unclipped],
        unclipped_final_train_loss=[finite_or_none(r["history"][-1]["train_loss"]) for r in unclipped],
        clip_active_fraction=statistics.fmean(r["clipper"].active_fraction for r in clipped),
        clipped_median_grad_norm=statistics.median(n for r in clipped for n in r["clipper"].norms),
        unclipped_grad_norm_before_divergence=statistics.median(
            n for r in unclipped for n in r["clipper"].norms[:r["diverged_at"]]),
        seeds=p["seeds"], epochs=p["epochs"], steps=len(clipped[0]["losses"]), lr=p["lr"], max_norm=p["max_norm"],
        divergence_factor=DIVERGENCE_FACTOR, train_size=len(train[0]), test_size=len(test[0]),
        parameters=sum(t.numel() for t in model.parameters()))

    # the clipper's step (record + clip, the hand-written norm) against torch's clip_grad_norm_ on the same grads
    clipper = ctx.impl.GradientClipper(p["max_norm"])
    ctx.bench["clip_step"] = compare(lambda: clipper(model, 0), lambda: torch.nn.utils.clip_grad_norm_(
        model.parameters(), p["max_norm"], foreach=False), min_run_time=p["bench_seconds"])
    ctx.bench["ratio"] = ctx.bench["clip_step"]["ratio"]
    ctx.bench["train_seconds"] = {name: sum(h["seconds"] for r in runs for h in r["history"])
                                  for name, runs in results.items()}
    plot(ctx, p, results)


def plot(ctx: RunContext, p: dict, results: dict) -> None:
    title = f"lr {p['lr']:g}, ±std of {p['seeds']} seeds"
    labels = {"unclipped": "no clipping", "clipped": f"clipped to ‖g‖ ≤ {p['max_norm']:g}"}
    fig = ctx.figure(figsize=(10, 3.6))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for i, (name, runs) in enumerate(results.items()):
        centre, low, high = log_band([r["losses"] for r in runs])
        ax_loss.plot(centre, color=f"C{i}", lw=1, label=labels[name])
        ax_loss.fill_between(range(len(centre)), low, high, color=f"C{i}", alpha=0.2)
        for r in runs:  # each seed's divergence: where its curve leaves the band
            if r["diverged_at"] is not None:
                ax_loss.axvline(r["diverged_at"], color=f"C{i}", ls=":", lw=1)
        # not over_seeds: its std of the diverged losses (inf, nan) fails; accuracy stays finite
        mean, std = zip(*(mean_std(epoch) for epoch in zip(*([h["test_accuracy"] for h in r["history"]]
                                                              for r in runs))))
        ax_acc.errorbar(range(1, len(mean) + 1), mean, yerr=std, color=f"C{i}", marker="o", ms=3, capsize=3,
                        label=labels[name])
    ax_loss.set(yscale="log", xlabel="step", ylabel="training loss (batch)",
                title=f"m2-deep-3: Transformer on digits, {title}\n(dotted: a seed diverges)")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy", ylim=(0, 1), title="test accuracy")
    ax_loss.legend(fontsize=7)
    ax_acc.legend(fontsize=7)
    ctx.save_figure(fig, "loss_curves")

    fig = ctx.figure(figsize=(5.5, 3.6))
    ax = fig.subplots()
    for i, (name, runs) in enumerate(results.items()):
        centre, low, high = log_band([r["clipper"].norms for r in runs])
        active = f", clipping active at {statistics.fmean(r['clipper'].active_fraction for r in runs):.0%} of steps"
        ax.plot(centre, color=f"C{i}", lw=1, label=labels[name] + (active if name == "clipped" else ""))
        ax.fill_between(range(len(centre)), low, high, color=f"C{i}", alpha=0.2)
    ax.axhline(p["max_norm"], color="black", ls=":", lw=0.8)
    ax.set(yscale="log", xlabel="step", ylabel="‖gradient‖₂ before clipping",
           title=f"m2-deep-3: gradient norms, {title}")
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "grad_norms")
