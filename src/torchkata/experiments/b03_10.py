"""b03-10 experiment: an MLP trained on scikit-learn's digits through the shared loop, logged to TensorBoard by the
wrapper (epoch scalars, the gradient norm per step, weight and gradient histograms, a grid of test digits), and
the event files read back with TensorBoard's EventAccumulator: the curves and the weight distribution over
training are drawn from what was read, and the logging's cost is timed against the same epoch without it.

The event files go to <run>/tensorboard/ (`tensorboard --logdir results/b03-10/reference-default/runs/seed-0/
tensorboard`), not to artifacts/: their names and records carry the wall time and host, so no two runs give the
same bytes; what they hold is checked through metrics.json instead."""
from __future__ import annotations

import shutil

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from torchkata.data import digits
from torchkata.pipeline.bench import compare
from torchkata.training.loop import fit, train_epoch
from torchkata.training.models import mlp

SCALES = {
    "smoke": {"train_size": 96, "epochs": 1, "hidden": 32, "batch_size": 32, "lr": 0.1, "histogram_every": 4,
              "bench_seconds": 0.02},
    "default": {"train_size": None, "epochs": 15, "hidden": 128, "batch_size": 32, "lr": 0.1, "histogram_every": 9,
                "bench_seconds": 0.5},
    "full": {"train_size": None, "epochs": 40, "hidden": 256, "batch_size": 32, "lr": 0.1, "histogram_every": 9,
             "bench_seconds": 2.0},
}


def run(ctx) -> None:
    p = ctx.params
    (x_train, y_train), (x_test, y_test) = digits.split(ctx.input("digits"), 360, torch.Generator().manual_seed(0),
                                                        p["train_size"])
    torch.manual_seed(ctx.seed)
    model = mlp(p["hidden"], 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=p["lr"], momentum=0.9)
    folder = ctx.out / "tensorboard"
    # a rerun in the same run folder: the earlier run's event file would be read back beside this one's
    shutil.rmtree(folder, ignore_errors=True)
    with ctx.impl.TensorBoardLog(folder, histogram_every=p["histogram_every"]) as tb:
        history = fit(model, optimizer, (x_train, y_train), (x_test, y_test), p["epochs"], p["batch_size"],
                      torch.Generator().manual_seed(ctx.seed), log=tb.log, before_step=tb.before_step)
        wrong = model(x_test).argmax(1) != y_test
        tb.images("test digits", x_test[:16].view(-1, 1, 8, 8), step=p["epochs"])
        if wrong.any():
            tb.images("misclassified", x_test[wrong][:16].view(-1, 1, 8, 8), step=p["epochs"])

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0, "images": 0})
    events.Reload()
    tags = events.Tags()
    read = {key: [s.value for s in events.Scalars(key)] for key in ("train_loss", "test_loss", "test_accuracy")}
    readback_error = max(abs(v - h[key]) / max(abs(h[key]), 1e-12) for key, values in read.items()
                         for v, h in zip(values, history))
    weights = events.Histograms("weights/fc1.weight")
    ctx.metrics.update(final_test_accuracy=history[-1]["test_accuracy"], final_test_loss=history[-1]["test_loss"],
                       scalar_readback_max_rel_error=readback_error,
                       scalar_tags=sorted(tags["scalars"]), histogram_tags=len(tags["histograms"]),
                       histograms_per_tag=len(weights), images=sorted(tags["images"]),
                       grad_norm_points=len(events.Scalars("grad_norm")), epochs=p["epochs"],
                       train_size=len(x_train), test_size=len(x_test))

    fig = ctx.figure(figsize=(11, 3.6), layout="constrained")
    curves, norms, spread = fig.subplots(1, 3)
    for key, style in [("train_loss", "-"), ("test_loss", "--")]:
        curves.plot(range(1, len(read[key]) + 1), read[key], style, marker="o", ms=3, label=key)
    curves.set(xlabel="epoch", ylabel="loss", title="read back: loss per epoch")
    curves.legend(fontsize=7)
    grad_norm = events.Scalars("grad_norm")
    norms.plot([s.step for s in grad_norm], [s.value for s in grad_norm], lw=0.6)
    norms.set(xlabel="step", ylabel="‖gradient‖₂", yscale="log", title="read back: grad_norm per step")
    # the distribution of fc1's weights from each histogram: its mean ± std and its range, per logged step
    steps = [e.step for e in weights]
    mean = [e.histogram_value.sum / e.histogram_value.num for e in weights]
    std = [(e.histogram_value.sum_squares / e.histogram_value.num - m * m) ** 0.5 for e, m in zip(weights, mean)]
    spread.fill_between(steps, [e.histogram_value.min for e in weights], [e.histogram_value.max for e in weights],
                        alpha=0.2, label="min..max")
    spread.fill_between(steps, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)], alpha=0.5,
                        label="mean ± std")
    spread.set(xlabel="step", ylabel="fc1.weight", title="read back: weight histograms")
    spread.legend(fontsize=7)
    fig.suptitle(f"b03-10: digits MLP, {history[-1]['test_accuracy']:.3f} test accuracy, from the event files")
    ctx.save_figure(fig, "tensorboard_readback")

    # the cost of logging: one epoch with the hooks against the same epoch without them
    bench_dir = ctx.out / "bench-tensorboard"
    tb = ctx.impl.TensorBoardLog(bench_dir, histogram_every=p["histogram_every"])

    def epoch(before_step):
        def go():
            with torch.enable_grad():
                train_epoch(model, optimizer, x_train, y_train, p["batch_size"], torch.Generator().manual_seed(0),
                            before_step=before_step)
        return go

    ctx.bench["epoch_logged_vs_plain"] = compare(epoch(tb.before_step), epoch(None), min_run_time=p["bench_seconds"])
    tb.close()
    shutil.rmtree(bench_dir)  # the timing's events: not part of the result
    ctx.bench["ratio"] = ctx.bench["epoch_logged_vs_plain"]["ratio"]
