"""The training loop the trainings share, in the style of pytorch/examples: epochs over tensors held in
memory, in an order drawn from a seeded torch.Generator (repeatable without DataLoader workers).

    history = fit(model, optimizer, train=(x, y), test=(x_test, y_test), epochs=5, batch_size=64,
                  generator=ctx.generator, log=ctx.log)

An exercise changes what happens around a step through arguments, not a copy of the loop: `loss_fn`
(cross-entropy by default, MSE for regression), `before_step(model, step)` called after backward and before
the optimizer (clipping, recording gradient norms, a hand-made change), `accumulate` micro-batches per step,
and a scheduler stepped once per epoch.
"""
from __future__ import annotations

import math
import statistics
import time
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LossFn = Callable[[Tensor, Tensor], Tensor]


def batch_order(n: int, batch_size: int, generator: torch.Generator) -> list[Tensor]:
    """Index tensors of one epoch's batches, in an order drawn from `generator` (the last may be short)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = torch.randperm(n, generator=generator)
    return [order[start:start + batch_size] for start in range(0, n, batch_size)]


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, inputs: Tensor, targets: Tensor,
                batch_size: int, generator: torch.Generator, loss_fn: LossFn = F.cross_entropy,
                before_step: Callable[[nn.Module, int], None] | None = None, accumulate: int = 1,
                first_step: int = 0) -> dict:
    """One pass over (inputs, targets); returns {"loss": mean training loss over the samples, "steps": n}.

    With `accumulate` = k, each optimizer step follows k micro-batches of `batch_size`, their losses scaled
    so that the gradient is the mean over all k x batch_size samples (equal to one big batch's, but for
    batch-statistics layers). `before_step(model, step)` sees the gradients of every step; steps are counted
    from `first_step` so that a caller can number them across epochs.
    """
    if len(inputs) != len(targets):
        raise ValueError(f"inputs and targets differ in length: {len(inputs)} against {len(targets)}")
    if accumulate < 1:
        raise ValueError(f"accumulate must be at least 1, got {accumulate}")
    model.train()
    batches = batch_order(len(inputs), batch_size, generator)
    total, step = 0.0, first_step
    for group_start in range(0, len(batches), accumulate):
        group = batches[group_start:group_start + accumulate]
        samples = sum(len(idx) for idx in group)
        optimizer.zero_grad(set_to_none=True)
        for idx in group:
            loss = loss_fn(model(inputs[idx]), targets[idx])
            (loss * (len(idx) / samples)).backward()  # mean over the whole group, however the last is cut
            total += loss.item() * len(idx)
        if before_step is not None:
            before_step(model, step)
        optimizer.step()
        step += 1
    return {"loss": total / max(len(inputs), 1), "steps": step - first_step}


@torch.no_grad()
def evaluate(model: nn.Module, inputs: Tensor, targets: Tensor, loss_fn: LossFn = F.cross_entropy,
             batch_size: int = 1000) -> dict:
    """Mean loss over the samples in eval mode; for class targets also accuracy, correct and predictions."""
    model.eval()
    loss, outputs = 0.0, []
    for start in range(0, len(inputs), batch_size):
        out = model(inputs[start:start + batch_size])
        loss += loss_fn(out, targets[start:start + batch_size]).item() * len(out)
        outputs.append(out)
    result = {"loss": loss / max(len(inputs), 1)}
    if not targets.is_floating_point():
        predictions = torch.cat(outputs).argmax(dim=1) if outputs else torch.empty(0, dtype=torch.long)
        correct = int((predictions == targets).sum())
        result |= {"accuracy": correct / max(len(inputs), 1), "correct": correct, "predictions": predictions}
    return result


def fit(model: nn.Module, optimizer: torch.optim.Optimizer, train: tuple[Tensor, Tensor],
        test: tuple[Tensor, Tensor], epochs: int, batch_size: int, generator: torch.Generator,
        loss_fn: LossFn = F.cross_entropy, scheduler=None, log: Callable[[str, float, int], None] | None = None,
        before_step: Callable[[nn.Module, int], None] | None = None, accumulate: int = 1,
        prefix: str = "") -> list[dict]:
    """`epochs` of train_epoch, each followed by an evaluation on `test`; returns one record per epoch:
    {"epoch", "train_loss", "test_loss", ["test_accuracy"], "seconds" (training only)}. `log(key, value, epoch)`
    (a RunContext's log) receives each figure under `prefix` + its name."""
    history, step = [], 0
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        trained = train_epoch(model, optimizer, *train, batch_size, generator, loss_fn, before_step, accumulate,
                              first_step=step)
        seconds = time.perf_counter() - start
        step += trained["steps"]
        if scheduler is not None:
            scheduler.step()
        tested = evaluate(model, *test, loss_fn=loss_fn)
        record = {"epoch": epoch, "train_loss": trained["loss"], "test_loss": tested["loss"]}
        if "accuracy" in tested:
            record["test_accuracy"] = tested["accuracy"]
        if log is not None:
            for key, value in record.items():
                if key != "epoch":
                    log(prefix + key, value, epoch)
        history.append(record | {"seconds": seconds})
    return history


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; 0 for a single value) of a result over seeds. A diverged seed
    (inf or nan) makes the std nan: statistics.stdev fails on non-finite values, and no spread is meaningful."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean_std needs at least one value")
    if not all(math.isfinite(v) for v in values):
        return statistics.fmean(values), math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def over_seeds(runs: list[list[dict]]) -> tuple[list[dict], dict[str, list[float]]]:
    """Histories of the same training over several seeds -> (the per-epoch mean history, each key's per-epoch
    sample std): the curve and the `errors` band that plot_histories takes. Runs must have the same epochs."""
    if not runs or any(len(run) != len(runs[0]) for run in runs):
        raise ValueError(f"over_seeds needs runs of equal length, got lengths {[len(run) for run in runs]}")
    keys = [key for key in runs[0][0] if key != "epoch"] if runs[0] else []
    per_epoch = [{key: mean_std([run[e][key] for run in runs]) for key in keys} for e in range(len(runs[0]))]
    mean = [{"epoch": runs[0][e]["epoch"]} | {key: m for key, (m, _) in stats.items()}
            for e, stats in enumerate(per_epoch)]
    return mean, {key: [stats[key][1] for stats in per_epoch] for key in keys}


def plot_histories(ctx, histories: dict[str, list[dict]], title: str, name: str = "training_curves",
                   errors: dict[str, dict[str, list[float]]] | None = None):
    """Loss (train solid, test dashed) and, where recorded, test accuracy per epoch, one colour per label:
    the comparison plot of a training exercise. `errors[label][key]` adds a per-epoch error band (e.g. the
    std over seeds). Saved through ctx as `name`.png."""
    accuracy = any("test_accuracy" in h[0] for h in histories.values() if h)
    fig = ctx.figure(figsize=(9.5 if accuracy else 5.5, 3.6))
    axes = fig.subplots(1, 2 if accuracy else 1, squeeze=False)[0]
    for i, (label, history) in enumerate(histories.items()):
        colour, epochs = f"C{i}", [h["epoch"] for h in history]
        panels = [(axes[0], "train_loss", "-"), (axes[0], "test_loss", "--")]
        if accuracy and "test_accuracy" in history[0]:
            panels.append((axes[1], "test_accuracy", "-"))
        for ax, key, style in panels:
            values = [h[key] for h in history]
            ax.plot(epochs, values, style, color=colour, marker="o", ms=3,
                    label=f"{label} ({key.split('_')[0]})" if key != "test_accuracy" else label)
            band = (errors or {}).get(label, {}).get(key)
            if band is not None:
                ax.fill_between(epochs, [v - e for v, e in zip(values, band)],
                                [v + e for v, e in zip(values, band)], color=colour, alpha=0.2)
    axes[0].set(xlabel="epoch", ylabel="loss", title=f"{title}: loss")
    axes[0].legend(fontsize=7)
    if accuracy:
        axes[1].set(xlabel="epoch", ylabel="test accuracy", title=f"{title}: test accuracy")
        axes[1].legend(fontsize=7)
    return ctx.save_figure(fig, name)


def one_cycle(optimizer: torch.optim.Optimizer, max_lr: float, total_steps: int):
    """A `before_step` for training.loop that runs torch's OneCycleLR once per optimizer step: warm up to max_lr
    over the first quarter, then anneal to near zero. Step 0 uses the schedule's initial rate; before step s > 0
    the scheduler advances once, as it would after step s - 1."""
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=total_steps,
                                                   pct_start=0.25)

    def before_step(model, step: int) -> None:
        if step > 0:
            schedule.step()
    return before_step
