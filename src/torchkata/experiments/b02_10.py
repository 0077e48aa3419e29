"""b02-10 experiment: training with and without gradient accumulation at the same effective batch. An MLP on
scikit-learn's digits, and the same MLP with batch norm, each trained from one initialisation and one batch order
twice: batches of 64, and micro-batches of 16 accumulated 4 at a time (the shared loop's `accumulate`). Before
training, your accumulated_gradients is compared with the big batch's gradient for both."""
from __future__ import annotations

import copy
import time

import torch
import torch.nn.functional as F
from torch import nn

from torchkata.data import digits
from torchkata.training.models import mlp
from torchkata.pipeline.runner import RunContext
from torchkata.training.loop import fit, plot_histories

SCALES = {
    "smoke": {"test_size": 200, "train_size": 256, "hidden": 32, "epochs": 1, "batch_size": 64, "micro_batches": 4,
              "lr": 0.05},
    "default": {"test_size": 400, "train_size": 1397, "hidden": 64, "epochs": 12, "batch_size": 64,
                "micro_batches": 4, "lr": 0.05},
    "full": {"test_size": 400, "train_size": 1397, "hidden": 256, "epochs": 60, "batch_size": 64, "micro_batches": 4,
             "lr": 0.05},
}


def bn_mlp(hidden: int) -> nn.Sequential:
    """a06's MLP with batch norm before each ReLU."""
    return nn.Sequential(nn.Linear(64, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                         nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, 10))


def run(ctx: RunContext) -> None:
    p, k = ctx.params, ctx.params["micro_batches"]
    train, test = digits.split(ctx.input("digits"), p["test_size"], ctx.generator, p["train_size"])
    models = {"MLP": mlp(p["hidden"]), "MLP with batch norm": bn_mlp(p["hidden"])}
    inits = {name: copy.deepcopy(model.state_dict()) for name, model in models.items()}  # not the live tensors
    order_seed = int(torch.randint(2**31, (), generator=ctx.generator))

    # one batch's gradient, whole and in k micro-batches, through your accumulated_gradients
    x, y = train[0][:p["batch_size"]], train[1][:p["batch_size"]]
    gradient_difference = {}
    for name, model in models.items():
        whole = ctx.impl.accumulated_gradients(model, F.cross_entropy, x, y, 1)
        model.load_state_dict(inits[name])  # batch norm's running statistics moved
        parts = ctx.impl.accumulated_gradients(model, F.cross_entropy, x, y, k)
        gradient_difference[name] = ctx.impl.max_difference(whole, parts)

    histories, finals, seconds = {}, {}, {}
    for name, model in models.items():
        # labels are MLflow metric names too: letters, digits, _ - . space : /
        for label, batch_size, accumulate in ((f"{name} batch {p['batch_size']}", p["batch_size"], 1),
                                              (f"{name} {k} x {p['batch_size'] // k} accumulated",
                                               p["batch_size"] // k, k)):
            model.load_state_dict(inits[name])
            optimizer = torch.optim.SGD(model.parameters(), lr=p["lr"], momentum=0.9)
            start = time.perf_counter()
            histories[label] = fit(model, optimizer, train, test, p["epochs"], batch_size,
                                   torch.Generator().manual_seed(order_seed), accumulate=accumulate)
            seconds[label] = time.perf_counter() - start
            finals[label] = torch.cat([t.flatten() for t in model.state_dict().values() if t.is_floating_point()])
    labels = list(histories)
    param_difference = {name: float((finals[a] - finals[b]).abs().max())
                        for name, a, b in zip(models, labels[::2], labels[1::2])}
    loss_difference = {name: max(abs(ha["train_loss"] - hb["train_loss"]) for ha, hb in
                                 zip(histories[a], histories[b])) for name, a, b in zip(models, labels[::2], labels[1::2])}

    ctx.metrics.update(
        grad_max_abs_error=gradient_difference["MLP"],
        batch_norm_grad_max_abs_difference=gradient_difference["MLP with batch norm"],
        max_param_difference_after_training=param_difference, max_train_loss_difference=loss_difference,
        test_accuracy={label: h[-1]["test_accuracy"] for label, h in histories.items()},
        effective_batch=p["batch_size"], micro_batches=k, epochs=p["epochs"], train_size=len(train[0]))
    ctx.bench.update(threads=torch.get_num_threads(), train_s=seconds,
                     accumulation_time_ratio={name: seconds[b] / seconds[a]
                                              for name, a, b in zip(models, labels[::2], labels[1::2])})
    for label, history in histories.items():
        for record in history:
            ctx.log(f"{label}.train_loss", record["train_loss"], record["epoch"])
    plot_histories(ctx, histories, f"b02-10: effective batch {p['batch_size']}")
