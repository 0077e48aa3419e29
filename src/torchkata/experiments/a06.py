"""a06 experiment: an MLP trained on scikit-learn's digits with your MaxGradientLog on it. Every step the logged
per-layer maxima are checked against the parameters' .grad, the log is written as a CSV artifact and plotted, and
the same training without hooks shows that logging hooks change nothing (and what they cost in time)."""
from __future__ import annotations

import time

import torch
from torch import nn

from torchkata.data import digits
from torchkata.pipeline.runner import RunContext
from torchkata.training.loop import fit
from torchkata.training.models import mlp

SCALES = {
    "smoke": {"test_size": 400, "train_size": 400, "hidden": 32, "epochs": 1, "batch_size": 32, "lr": 0.05},
    "default": {"test_size": 400, "train_size": 1397, "hidden": 64, "epochs": 20, "batch_size": 32, "lr": 0.05},
    "full": {"test_size": 400, "train_size": 1397, "hidden": 256, "epochs": 100, "batch_size": 32, "lr": 0.05},
}


def run(ctx: RunContext) -> None:
    p = ctx.params
    train, test = digits.split(ctx.input("digits"), p["test_size"], ctx.generator, p["train_size"])
    init = mlp(p["hidden"]).state_dict()
    order_seed = int(torch.randint(2**31, (), generator=ctx.generator))
    errors = [0.0]

    def close_step(log, model, step):
        # the hooks' maxima against autograd's .grad, read after backward: the log must be what training saw
        for name, layer in log.layers.items():
            for param_name, param in layer.named_parameters(recurse=False):
                errors.append(abs(log.current[name][param_name] - param.grad.abs().max().item()))
        log.end_step(step)
        for name, values in log.series("weight").items():
            ctx.log(f"max_grad.{name}.weight", values[-1], step)

    def trained(logged: bool):
        """The MLP from `init` trained over the same batches, with your log on it or without hooks."""
        model = mlp(p["hidden"])
        model.load_state_dict(init)
        log = ctx.impl.MaxGradientLog(model) if logged else None
        optimizer = torch.optim.SGD(model.parameters(), lr=p["lr"], momentum=0.9)
        start = time.perf_counter()
        history = fit(model, optimizer, train, test, p["epochs"], p["batch_size"],
                      torch.Generator().manual_seed(order_seed), log=ctx.log if logged else None,
                      before_step=(lambda model, step: close_step(log, model, step)) if logged else None)
        return model, log, history, time.perf_counter() - start

    model, log, history, hooked_s = trained(logged=True)
    csv_path = log.write_csv(ctx.out / "artifacts" / "max_gradients.csv")
    log.remove()  # removed hooks record nothing more
    rows = len(log.rows)
    nn.functional.cross_entropy(model(train[0][:8]), train[1][:8]).backward()
    log.end_step(-1)
    plain, _, plain_history, plain_s = trained(logged=False)
    same = all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), plain.state_dict().values()))

    for step in (log.rows[0]["step"], log.rows[-1]["step"]):
        print(f"step {step}: " + ", ".join(f"{r['layer']} max |grad| weight {r['weight']:.3g} output {r['output']:.3g}"
                                          for r in log.rows if r["step"] == step))
    steps = rows // len(log.layers)
    ctx.metrics.update(
        max_abs_error=max(errors), steps=steps, rows=rows, layers=list(log.layers), csv=csv_path.name,
        rows_after_remove=len(log.rows), same_training_without_hooks=same,
        test_accuracy=history[-1]["test_accuracy"], plain_test_accuracy=plain_history[-1]["test_accuracy"],
        first_step={r["layer"]: {k: r[k] for k in ("output", "weight", "bias")} for r in log.rows[:len(log.layers)]},
        last_step={r["layer"]: {k: r[k] for k in ("output", "weight", "bias")} for r in log.rows[-len(log.layers):]},
        train_size=len(train[0]), test_size=len(test[0]), epochs=p["epochs"])
    ctx.bench.update(threads=torch.get_num_threads(), hooked_train_s=hooked_s, plain_train_s=plain_s, hook_overhead_ratio=hooked_s / plain_s)

    fig = ctx.figure(figsize=(14, 3.6), layout="constrained")
    per_epoch = steps // p["epochs"]
    for ax, column in zip(fig.subplots(1, 3), ("weight", "bias", "output")):
        for i, (name, values) in enumerate(log.series(column).items()):
            ax.plot(range(len(values)), values, color=f"C{i}", lw=0.5, alpha=0.35)
            means = torch.tensor(values[:per_epoch * p["epochs"]]).reshape(p["epochs"], per_epoch).mean(1)
            ax.plot([per_epoch * (e + 0.5) for e in range(p["epochs"])], means, "o-", color=f"C{i}", ms=3,
                    label=f"{name} (epoch mean)")
        ax.set(yscale="log", xlabel="step", ylabel=f"max |grad|",
               title="∂L/∂(layer output)" if column == "output" else f"∂L/∂{column}")
        ax.legend(fontsize=7)
    fig.suptitle(f"a06: per-layer max |gradient| logged by backward hooks ({steps} steps of batch {p['batch_size']}, "
                 f"test accuracy {history[-1]['test_accuracy']:.3f})", fontsize=10)
    ctx.save_figure(fig, "max_gradients")
