"""b02-04 experiment: the hand-written SGD against torch.optim.SGD, step for step on a small MLP for every option
(parameter differences after N steps), the paths of plain, heavy-ball and Nesterov momentum on an ill-conditioned
quadratic, and the step time against torch.optim.SGD's per-tensor loop (foreach=False) and its foreach kernels."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"steps": 5, "batch": 16, "hidden": 16, "path_steps": 30, "bench_layers": 2, "bench_width": 64,
              "bench_seconds": 0.02},
    "default": {"steps": 100, "batch": 64, "hidden": 64, "path_steps": 60, "bench_layers": 8, "bench_width": 512,
                "bench_seconds": 0.3},
    "full": {"steps": 1000, "batch": 256, "hidden": 256, "path_steps": 100, "bench_layers": 16, "bench_width": 1024,
             "bench_seconds": 1.0},
}
CONFIGS = {  # every option of torch.optim.SGD, alone and together
    "plain": dict(lr=0.1),
    "momentum": dict(lr=0.05, momentum=0.9),
    "nesterov": dict(lr=0.05, momentum=0.9, nesterov=True),
    "dampening": dict(lr=0.05, momentum=0.9, dampening=0.5),
    "weight_decay": dict(lr=0.1, weight_decay=0.01),
    "all": dict(lr=0.05, momentum=0.8, dampening=0.2, weight_decay=0.01),
    "maximize": dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01, maximize=True),
}
# f(x, y) = (x² + 25 y²) / 2: curvatures 1 and 25, the valley momentum is meant for
CURVATURE = torch.tensor([1.0, 25.0], dtype=torch.float64)
PATHS = {"SGD lr 0.035": dict(lr=0.035), "momentum 0.9": dict(lr=0.035, momentum=0.9),
         "nesterov 0.9": dict(lr=0.035, momentum=0.9, nesterov=True)}


def mlp(width_in: int, hidden: int, seed: int, dtype) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(width_in, hidden), nn.Tanh(), nn.Linear(hidden, 10)).to(dtype)


def train_pair(ctx: RunContext, options: dict, dtype, p: dict) -> float:
    """Max |parameter difference| between ours and torch.optim.SGD after p["steps"] steps of the same batches."""
    data = torch.Generator().manual_seed(ctx.seed)
    batches = [(torch.randn(p["batch"], 20, generator=data, dtype=dtype),
                torch.randint(0, 10, (p["batch"],), generator=data)) for _ in range(p["steps"])]
    models = [mlp(20, p["hidden"], ctx.seed, dtype) for _ in range(2)]
    optimizers = [ctx.impl.SGD(models[0].parameters(), **options),
                  torch.optim.SGD(models[1].parameters(), **options, foreach=False)]
    for x, y in batches:
        for model, opt in zip(models, optimizers):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            (-loss if options.get("maximize") else loss).backward()
            opt.step()
    ours, theirs = models[0].state_dict().values(), models[1].state_dict().values()
    return max(float((a - b).abs().max()) for a, b in zip(ours, theirs))


def descend(make, steps: int) -> list[list[float]]:
    point = torch.tensor([-4.0, 1.0], dtype=torch.float64, requires_grad=True)
    opt, path = make([point]), [point.tolist()]
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * (CURVATURE * point**2).sum()).backward()
        opt.step()
        path.append(point.tolist())
    return path


def run(ctx: RunContext) -> None:
    p = ctx.params
    errors = {name: {"float64": train_pair(ctx, options, torch.float64, p),
                     "float32": train_pair(ctx, options, torch.float32, p)} for name, options in CONFIGS.items()}
    ctx.metrics.update(max_abs_error=max(e["float64"] for e in errors.values()),
                       max_abs_error_float32=max(e["float32"] for e in errors.values()),
                       max_abs_error_by_config=errors, steps=p["steps"])

    paths = {name: descend(lambda ps, o=options: ctx.impl.SGD(ps, **o), p["path_steps"])
             for name, options in PATHS.items()}
    reference = {name: descend(lambda ps, o=options: torch.optim.SGD(ps, **o), p["path_steps"])
                 for name, options in PATHS.items()}
    ctx.metrics["quadratic"] = {name: {"final_loss": 0.5 * float((CURVATURE * torch.tensor(path[-1]) ** 2).sum()),
                                       "max_abs_error": max(abs(a - b) for s, r in zip(path, reference[name])
                                                            for a, b in zip(s, r))}
                                for name, path in paths.items()}
    fig = ctx.figure(figsize=(10, 3.6))
    ax_path, ax_loss = fig.subplots(1, 2)
    grid_x, grid_y = torch.meshgrid(torch.linspace(-4.5, 4.5, 200), torch.linspace(-1.5, 1.5, 200), indexing="xy")
    ax_path.contour(grid_x, grid_y, 0.5 * (grid_x**2 + 25 * grid_y**2), levels=15, colors="0.8", linewidths=0.6)
    for name, path in paths.items():
        xs, ys = zip(*path)
        ax_path.plot(xs, ys, ".-", ms=3, lw=0.8, label=name)
        ax_loss.plot([0.5 * (CURVATURE * torch.tensor(s) ** 2).sum().item() + 1e-16 for s in path], label=name)
    ax_path.set(xlabel="x", ylabel="y", title="b02-04: paths on (x² + 25y²)/2 (your SGD)")
    ax_loss.set(yscale="log", xlabel="step", ylabel="loss", title="loss per step")
    ax_path.legend(fontsize=7)
    ax_loss.legend(fontsize=7)
    ctx.save_figure(fig, "momentum_paths")

    bench_steps(ctx, dict(lr=1e-3, momentum=0.9, weight_decay=1e-4), p["bench_layers"], p["bench_width"],
                p["bench_seconds"])


def bench_steps(ctx: RunContext, options: dict, layers: int, width: int, seconds: float) -> None:
    """Step time of ours against torch.optim.SGD's per-tensor loop (foreach=False) and its foreach kernels, on a
    deep MLP's parameters with gradients set once (each timed call is one step): ratios into ctx.bench."""
    model = nn.Sequential(*[nn.Linear(width, width) for _ in range(layers)])
    for param in model.parameters():
        param.grad = torch.randn_like(param) * 1e-3
    ours = ctx.impl.SGD(model.parameters(), **options)
    torch_options = {k: v for k, v in options.items() if k != "decoupled_weight_decay"}
    loop = torch.optim.SGD(model.parameters(), **torch_options, foreach=False)
    foreach = torch.optim.SGD(model.parameters(), **torch_options, foreach=True)
    ctx.bench["step_vs_foreach_false"] = compare(ours.step, loop.step, seconds)
    ctx.bench["step_vs_foreach_true"] = compare(ours.step, foreach.step, seconds)
    ctx.bench["ratio"] = ctx.bench["step_vs_foreach_false"]["ratio"]
    ctx.bench["ratio_foreach"] = ctx.bench["step_vs_foreach_true"]["ratio"]
    ctx.bench["bench_parameters"] = sum(t.numel() for t in model.parameters())
    ctx.bench["bench_tensors"] = len(list(model.parameters()))
