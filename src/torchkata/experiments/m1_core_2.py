"""m1-core-2 experiment: gradient hooks that change training. The digits MLP of a06 is trained from one
initialisation over one batch order with each modifying hook (scale every gradient, clip every entry, zero the first
layer's), and again with the same change made by hand on .grad before the optimizer step: the two must be the same
run. Hooks registered and removed leave plain training; hooks removed after the first epoch give the run whose
change stops there. A MaxGradientLog after the modifiers logs the gradients as changed."""
from __future__ import annotations

import time

import torch

from torchkata.data import digits
from torchkata.training.models import mlp
from torchkata.pipeline.runner import RunContext
from torchkata.training.loop import fit, plot_histories

SCALES = {
    "smoke": {"test_size": 200, "train_size": 200, "hidden": 32, "epochs": 2, "batch_size": 32, "lr": 0.05,
              "factor": 0.25, "limit": 0.01},
    "default": {"test_size": 400, "train_size": 1397, "hidden": 64, "epochs": 8, "batch_size": 32, "lr": 0.05,
                "factor": 0.25, "limit": 0.01},
    "full": {"test_size": 400, "train_size": 1397, "hidden": 256, "epochs": 60, "batch_size": 32, "lr": 0.05,
             "factor": 0.25, "limit": 0.01},
}


def run(ctx: RunContext) -> None:
    p, hooks = ctx.params, ctx.impl
    train, test = digits.split(ctx.input("digits"), p["test_size"], ctx.generator, p["train_size"])
    init = mlp(p["hidden"]).state_dict()
    order_seed = int(torch.randint(2**31, (), generator=ctx.generator))
    # name (an MLflow metric name: letters, digits, _ - . space : /): (the hook on a model, the same change by hand on a gradient, the module it applies to)
    changes = {
        f"scale {p['factor']:g}": (lambda m: hooks.scale_gradients(m, p["factor"]), lambda g: g.mul_(p["factor"]),
                                    lambda model: model),
        f"clip {p['limit']:g}": (lambda m: hooks.clip_gradients(m, p["limit"]),
                                  lambda g: g.clamp_(-p["limit"], p["limit"]), lambda model: model),
        "fc1 zeroed": (hooks.zero_gradients, lambda g: g.zero_(), lambda model: model.fc1),
    }

    def trained(register=None, by_hand=None, target=None, epochs=p["epochs"], hand_steps=None, logged=False):
        """The MLP from `init`, trained with `register(target(model))`'s hooks or `by_hand` on target's .grad
        (for the first `hand_steps` steps; all if None); with a MaxGradientLog registered after the hooks."""
        model = mlp(p["hidden"])
        model.load_state_dict(init)
        handles = register(target(model)) if register else []
        log = hooks.MaxGradientLog(model) if logged else None
        changed = list(target(model).parameters()) if by_hand else []

        def before_step(model, step):
            if hand_steps is None or step < hand_steps:
                for param in changed:
                    by_hand(param.grad)
            if log is not None:
                log.end_step(step)

        optimizer = torch.optim.SGD(model.parameters(), lr=p["lr"], momentum=0.9)
        generator = torch.Generator().manual_seed(order_seed)
        start = time.perf_counter()
        history = fit(model, optimizer, train, test, epochs, p["batch_size"], generator, before_step=before_step)
        return model, history, log, handles, generator, optimizer, time.perf_counter() - start

    def difference(a, b):
        return max(float((x - y).abs().max()) for x, y in zip(a.state_dict().values(), b.state_dict().values()))

    plain, plain_history, plain_log, *_, plain_s = trained(logged=True)
    histories, logs = {"plain": plain_history}, {"plain": plain_log}
    differences, accuracy, seconds = {}, {"plain": plain_history[-1]["test_accuracy"]}, {}
    for name, (register, by_hand, target) in changes.items():
        hooked, histories[name], logs[name], *_, hooked_s = trained(register, target=target, logged=True)
        hand, _, _, _, _, _, hand_s = trained(by_hand=by_hand, target=target, logged=True)  # the same log: time the change
        differences[name] = difference(hooked, hand)
        accuracy[name] = histories[name][-1]["test_accuracy"]
        seconds[name] = {"hooks_s": hooked_s, "by_hand_s": hand_s, "ratio": hooked_s / hand_s}
        for epoch, record in enumerate(histories[name], 1):
            ctx.log(f"{name}.train_loss", record["train_loss"], epoch)
            ctx.log(f"{name}.test_accuracy", record["test_accuracy"], epoch)

    def all_hooks(model):
        return hooks.scale_gradients(model, 3.0) + hooks.clip_gradients(model, 1e-4) + hooks.zero_gradients(model.fc1)

    removed = mlp(p["hidden"])
    removed.load_state_dict(init)
    handles = all_hooks(removed)
    hooks.remove(handles)
    fit(removed, torch.optim.SGD(removed.parameters(), lr=p["lr"], momentum=0.9), train, test, p["epochs"],
        p["batch_size"], torch.Generator().manual_seed(order_seed))

    # clip for one epoch, remove the hooks, train on: the run clipped by hand in the first epoch's steps only
    register, by_hand, target = changes[f"clip {p['limit']:g}"]
    first, _, _, handles, generator, optimizer, _ = trained(register, target=target, epochs=1)
    hooks.remove(handles)
    fit(first, optimizer, train, test, p["epochs"] - 1, p["batch_size"], generator)
    steps_per_epoch = -(-len(train[0]) // p["batch_size"])
    hand_first, *_ = trained(by_hand=by_hand, target=target, hand_steps=steps_per_epoch)

    ctx.metrics.update(
        max_param_difference=max([*differences.values(), difference(removed, plain), difference(first, hand_first)]),
        hooks_against_by_hand=differences, removed_against_plain=difference(removed, plain),
        removed_after_first_epoch_against_by_hand=difference(first, hand_first),
        test_accuracy=accuracy, final_train_loss={k: h[-1]["train_loss"] for k, h in histories.items()},
        largest_logged_weight_gradient={k: max(max(v) for v in log.series("weight").values())
                                        for k, log in logs.items()},
        train_size=len(train[0]), test_size=len(test[0]), epochs=p["epochs"])
    ctx.bench.update(threads=torch.get_num_threads(), plain_train_s=plain_s, trainings=seconds,
                     hook_over_hand_ratio=max(s["ratio"] for s in seconds.values()))

    plot_histories(ctx, histories, "m1-core-2, digits MLP")
    fig = ctx.figure(figsize=(13, 3.5), layout="constrained")
    for ax, layer in zip(fig.subplots(1, 3), ("fc1", "fc2", "fc3")):
        for i, (name, log) in enumerate(logs.items()):
            values = log.series("weight")[layer]
            ax.plot(range(len(values)), [max(v, 1e-6) for v in values], color=f"C{i}", lw=0.6, label=name)
        ax.set(yscale="log", xlabel="step", ylabel="max |∂L/∂W| as it reached .grad", title=f"{layer}.weight")
        ax.legend(fontsize=7)
    fig.suptitle("m1-core-2: the gradients after the hooks, logged by a MaxGradientLog registered after them "
                 "(zeros drawn at 1e-6)", fontsize=10)
    ctx.save_figure(fig, "max_gradients")
