"""a14 experiment: the hand-written Adam, AdamW and RMSprop against torch.optim's, step for step on a small MLP for
each option (bias correction, L2 and decoupled decay, amsgrad, centered RMSprop with momentum, a parameter group with
its own learning rate): the parameters' largest difference after N steps in float64 and float32, the loss curves
of both, and the step time against torch.optim's per-tensor loop (foreach=False) and its foreach kernels."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from torchkata.experiments.b02_04 import mlp
from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"steps": 5, "batch": 16, "hidden": 16, "bench_layers": 2, "bench_width": 64, "bench_seconds": 0.02},
    "default": {"steps": 100, "batch": 64, "hidden": 64, "bench_layers": 8, "bench_width": 512, "bench_seconds": 0.3},
    "full": {"steps": 1000, "batch": 256, "hidden": 256, "bench_layers": 16, "bench_width": 1024,
             "bench_seconds": 1.0},
}
TORCH = {"Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW, "RMSprop": torch.optim.RMSprop}
CONFIGS = {  # name: (optimizer, options, the first layer's own learning rate or None)
    "adam": ("Adam", dict(lr=1e-3), None),
    "adam_l2": ("Adam", dict(lr=1e-3, weight_decay=0.05), None),
    "adamw": ("AdamW", dict(lr=1e-3, weight_decay=0.05), None),
    "adam_amsgrad": ("Adam", dict(lr=1e-3, betas=(0.8, 0.99), amsgrad=True), None),
    "adam_group_lr": ("Adam", dict(lr=1e-3), 1e-2),
    "rmsprop": ("RMSprop", dict(lr=1e-3), None),
    "rmsprop_centered_momentum": ("RMSprop", dict(lr=1e-3, momentum=0.9, centered=True, weight_decay=0.01), None),
    "rmsprop_group_lr": ("RMSprop", dict(lr=1e-3, alpha=0.9), 1e-4),
}


def groups(model: nn.Module, first_lr: float | None):
    if first_lr is None:
        return model.parameters()
    first, *rest = model.children()
    return [{"params": first.parameters(), "lr": first_lr}, {"params": [p for m in rest for p in m.parameters()]}]


def train_pair(ctx: RunContext, config: tuple, dtype, p: dict) -> tuple[float, list[list[float]]]:
    """Max |parameter difference| between ours and torch's after p["steps"] steps on the same batches, and each
    one's loss per step."""
    name, options, first_lr = config
    data = torch.Generator().manual_seed(ctx.seed)
    batches = [(torch.randn(p["batch"], 20, generator=data, dtype=dtype),
                torch.randint(0, 10, (p["batch"],), generator=data)) for _ in range(p["steps"])]
    models = [mlp(20, p["hidden"], ctx.seed, dtype) for _ in range(2)]
    optimizers = [getattr(ctx.impl, name)(groups(models[0], first_lr), **options),
                  TORCH[name](groups(models[1], first_lr), **options, foreach=False)]
    losses = [[], []]
    for x, y in batches:
        for model, opt, curve in zip(models, optimizers, losses):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            curve.append(loss.item())
    ours, theirs = models[0].state_dict().values(), models[1].state_dict().values()
    return max(float((a - b).abs().max()) for a, b in zip(ours, theirs)), losses


def run(ctx: RunContext) -> None:
    p = ctx.params
    errors, curves = {}, {}
    for key, config in CONFIGS.items():
        error64, curves[key] = train_pair(ctx, config, torch.float64, p)
        errors[key] = {"float64": error64, "float32": train_pair(ctx, config, torch.float32, p)[0]}
    ctx.metrics.update(max_abs_error=max(e["float64"] for e in errors.values()),
                       max_abs_error_float32=max(e["float32"] for e in errors.values()),
                       max_abs_error_by_config=errors, steps=p["steps"],
                       final_loss={key: losses[0][-1] for key, losses in curves.items()})

    fig = ctx.figure(figsize=(6.5, 4))
    ax = fig.subplots()
    for i, (key, (ours, theirs)) in enumerate(curves.items()):
        ax.plot(ours, color=f"C{i}", lw=2.5, alpha=0.45, label=key)
        ax.plot(theirs, color=f"C{i}", lw=0.8, ls="--")
    ax.set(xlabel="step", ylabel="training loss (float64)",
           title="a14: yours (thick) and torch.optim's (dashed) on the same batches")
    ax.legend(fontsize=7, ncol=2)
    ctx.save_figure(fig, "loss_ours_vs_torch")

    # step time on a deep MLP's parameters with gradients set once (each timed call is one step)
    model = nn.Sequential(*[nn.Linear(p["bench_width"], p["bench_width"]) for _ in range(p["bench_layers"])])
    for param in model.parameters():
        param.grad = torch.randn_like(param) * 1e-3
    for key, (name, options) in {"adam": ("Adam", dict(lr=1e-4)), "adamw_amsgrad": ("AdamW", dict(lr=1e-4, amsgrad=True)),
                                 "rmsprop": ("RMSprop", dict(lr=1e-4, momentum=0.9, centered=True))}.items():
        ours = getattr(ctx.impl, name)(model.parameters(), **options)
        loop = TORCH[name](model.parameters(), **options, foreach=False)
        foreach = TORCH[name](model.parameters(), **options, foreach=True)
        ctx.bench[key] = {"vs_foreach_true": compare(ours.step, foreach.step, p["bench_seconds"]),
                          "vs_foreach_false": compare(ours.step, loop.step, p["bench_seconds"])}
        ctx.bench[f"ratio_{key}"] = ctx.bench[key]["vs_foreach_true"]["ratio"]
    ctx.bench["ratio"] = ctx.bench["ratio_adam"]
    ctx.bench["bench_parameters"] = sum(t.numel() for t in model.parameters())
    ctx.bench["bench_tensors"] = len(list(model.parameters()))
