"""b03-06 experiment: early stopping on an over-fitting run. A wide MLP trained on 300 of scikit-learn's digits
for many epochs while the validation loss (300 other digits) turns up; one EarlyStopping per patience watches
the same run (so each stop is a prefix of the full run), keeps a copy of the best weights, and the test accuracy
of those restored weights is compared with the last epoch's."""
from __future__ import annotations

import copy
import time

import torch

from torchkata.data import digits
from torchkata.pipeline.runner import RunContext
from torchkata.training.loop import evaluate, plot_histories, train_epoch
from torchkata.training.models import mlp

SCALES = {
    "smoke": {"test_size": 100, "train_size": 128, "validation_size": 64, "hidden": 32, "epochs": 3,
              "patience": [1, 2], "min_delta": 0.0, "batch_size": 32, "lr": 3e-3},
    "default": {"test_size": 400, "train_size": 300, "validation_size": 300, "hidden": 256, "epochs": 40,
                "patience": [3, 5, 10], "min_delta": 0.0, "batch_size": 32, "lr": 3e-3},
    "full": {"test_size": 400, "train_size": 300, "validation_size": 300, "hidden": 1024, "epochs": 200,
             "patience": [3, 5, 10, 20], "min_delta": 0.0, "batch_size": 32, "lr": 3e-3},
}


def run(ctx: RunContext) -> None:
    p = ctx.params
    (x, y), test = digits.split(ctx.input("digits"), p["test_size"], ctx.generator,
                                p["train_size"] + p["validation_size"])
    train, validation = (x[:p["train_size"]], y[:p["train_size"]]), (x[p["train_size"]:], y[p["train_size"]:])
    model = mlp(p["hidden"])
    optimizer = torch.optim.Adam(model.parameters(), lr=p["lr"])
    order = torch.Generator().manual_seed(int(torch.randint(2**31, (), generator=ctx.generator)))
    stoppers = {patience: ctx.impl.EarlyStopping(patience, p["min_delta"], "min") for patience in p["patience"]}

    history, test_accuracy, train_s = [], [], 0.0
    for epoch in range(1, p["epochs"] + 1):
        start = time.perf_counter()
        trained = train_epoch(model, optimizer, *train, p["batch_size"], order)
        train_s += time.perf_counter() - start
        checked, tested = evaluate(model, *validation), evaluate(model, *test)
        history.append({"epoch": epoch, "train_loss": trained["loss"], "test_loss": checked["loss"],
                        "test_accuracy": checked["accuracy"]})  # fit's keys: the held-out set is validation
        test_accuracy.append(tested["accuracy"])
        for key, value in (("train_loss", trained["loss"]), ("validation_loss", checked["loss"]),
                           ("validation_accuracy", checked["accuracy"]), ("test_accuracy", tested["accuracy"])):
            ctx.log(key, value, epoch)
        for stopper in stoppers.values():
            if not stopper.stopped:  # a stopped run would end here: its stopper sees no later epoch
                stopper.step(checked["loss"], model)

    last_state = copy.deepcopy(model.state_dict())
    stops = {}
    for patience, stopper in stoppers.items():
        stopper.restore(model)
        stops[str(patience)] = {"stop_epoch": stopper.epoch if stopper.stopped else None,
                                "best_epoch": stopper.best_epoch,
                                "best_validation_loss": stopper.best, "epochs_run": stopper.epoch,
                                "restored_test_accuracy": evaluate(model, *test)["accuracy"],
                                "test_accuracy_at_stop": test_accuracy[stopper.epoch - 1]}
    model.load_state_dict(last_state)
    lowest = min(range(len(history)), key=lambda i: history[i]["test_loss"])
    chosen = stops[str(p["patience"][len(p["patience"]) // 2])]
    ctx.metrics.update(
        restored_test_accuracy=chosen["restored_test_accuracy"], last_epoch_test_accuracy=test_accuracy[-1],
        stops=stops, lowest_validation_loss_epoch=lowest + 1, epochs=p["epochs"],
        final_validation_loss=history[-1]["test_loss"], lowest_validation_loss=history[lowest]["test_loss"],
        train_size=p["train_size"], validation_size=p["validation_size"])
    ctx.bench.update(threads=torch.get_num_threads(), train_s=train_s)
    plot_histories(ctx, {"full run (validation as held-out)": history}, "b03-06: over-fitting MLP on digits")
    plot_stops(ctx, history, test_accuracy, stops)


def plot_stops(ctx: RunContext, history: list[dict], test_accuracy: list[float], stops: dict) -> None:
    """Validation loss and test accuracy over the full run, each patience's stop and best epoch marked."""
    epochs = [h["epoch"] for h in history]
    fig = ctx.figure(figsize=(9.5, 3.6))
    loss_ax, acc_ax = fig.subplots(1, 2)
    loss_ax.plot(epochs, [h["train_loss"] for h in history], "-", color="0.5", label="train loss")
    loss_ax.plot(epochs, [h["test_loss"] for h in history], "-", color="k", label="validation loss")
    acc_ax.plot(epochs, test_accuracy, "-", color="k", label="test accuracy (last epoch's weights)")
    for i, (patience, stop) in enumerate(stops.items()):
        colour = f"C{i}"
        if stop["stop_epoch"] is not None:
            loss_ax.axvline(stop["stop_epoch"], color=colour, ls="--", label=f"patience {patience}: stop")
        loss_ax.axvline(stop["best_epoch"], color=colour, ls=":", label=f"patience {patience}: best (restored)")
        acc_ax.plot([stop["epochs_run"]], [stop["restored_test_accuracy"]], "o", color=colour,
                    label=f"patience {patience}: restored weights")
    loss_ax.set(xlabel="epoch", ylabel="loss", yscale="log", title="b03-06: where early stopping stops")
    acc_ax.set(xlabel="epoch", ylabel="test accuracy", title="restored best weights against the full run")
    loss_ax.legend(fontsize=6)
    acc_ax.legend(fontsize=6)
    ctx.save_figure(fig, "early_stopping")
