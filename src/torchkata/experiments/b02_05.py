"""b02-05 experiment (a17 runs the same one): hand-written gradient clipping against torch.nn.utils' over random sets
of parameters and every norm type (the clipped gradients and the returned total norm); its effect on a training (an
MLP regressing scikit-learn's diabetes on its raw targets at a learning rate where the unclipped run diverges),
clipping in the shared loop's before_step hook; and the time of one clipping against torch's, as ratios."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from torchkata.data import tables
from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext
from torchkata.training.loop import fit, plot_histories

SCALES = {
    "smoke": {"cases": 3, "epochs": 1, "batch_size": 32, "lr": 1e-3, "max_norm": 10.0, "clip_value": 1.0,
              "hidden": 32, "bench_tensors": 8, "bench_size": 1000, "bench_seconds": 0.02},
    "default": {"cases": 30, "epochs": 30, "batch_size": 32, "lr": 1e-3, "max_norm": 10.0, "clip_value": 1.0,
                "hidden": 64, "bench_tensors": 40, "bench_size": 100000, "bench_seconds": 0.3},
    "full": {"cases": 100, "epochs": 100, "batch_size": 32, "lr": 1e-3, "max_norm": 10.0, "clip_value": 1.0,
             "hidden": 128, "bench_tensors": 160, "bench_size": 100000, "bench_seconds": 1.0},
}
NORM_TYPES = [1.0, 2.0, 3.5, math.inf]


def parameter_set(generator, count: int, max_size: int, dtype=torch.float64) -> list[torch.Tensor]:
    """`count` parameters of random shapes (1-D to 3-D), every third without a gradient, the others with one of
    random scale."""
    params = []
    for i in range(count):
        shape = tuple(int(s) for s in torch.randint(1, max_size + 1, (i % 3 + 1,), generator=generator))
        p = torch.randn(shape, generator=generator, dtype=dtype).requires_grad_()
        if i % 3 != 2:
            p.grad = torch.randn(shape, generator=generator, dtype=dtype) * float(10 ** torch.randint(-2, 3, ()))
        params.append(p)
    return params


def twins(params):
    """A copy of the parameters with copies of their gradients: one set for ours, one for torch's."""
    copies = [p.detach().clone().requires_grad_() for p in params]
    for p, c in zip(params, copies):
        c.grad = None if p.grad is None else p.grad.clone()
    return copies


def max_grad_difference(a, b) -> float:
    return max((float((p.grad - q.grad).abs().max()) for p, q in zip(a, b) if p.grad is not None and p.numel()),
               default=0.0)


def mlp(n_in: int, hidden: int) -> nn.Module:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))


def run(ctx: RunContext) -> None:
    p, g, impl = ctx.params, ctx.generator, ctx.impl

    # 1. equal to torch.nn.utils: the gradients and the returned total norm, every norm type and max_norm, and value
    norm_error = grad_error = value_error = 0.0
    for case in range(p["cases"]):
        params = parameter_set(g, 3 + case % 5, 6)
        max_norm = float(torch.rand((), generator=g, dtype=torch.float64)) * 20
        for norm_type in NORM_TYPES:
            ours, theirs = twins(params), twins(params)
            norm = impl.clip_grad_norm_(ours, max_norm, norm_type)
            want = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type, foreach=False)
            norm_error = max(norm_error, abs(float(norm - want)) / max(float(want), 1e-300))
            grad_error = max(grad_error, max_grad_difference(ours, theirs))
        ours, theirs = twins(params), twins(params)
        impl.clip_grad_value_(ours, max_norm / 10)
        torch.nn.utils.clip_grad_value_(theirs, max_norm / 10, foreach=False)
        value_error = max(value_error, max_grad_difference(ours, theirs))
    ctx.metrics.update(total_norm_max_rel_error=norm_error, grad_max_abs_error=grad_error,
                       value_clip_max_abs_error=value_error, cases=p["cases"], norm_types=[str(n) for n in NORM_TYPES])

    # 2. the effect on a training: raw targets (mean 152) make the first gradients huge; the same start and batches
    table = tables.load(ctx.input("sklearn-tables"), "diabetes")
    train, test = tables.split(table, 0.2, g)
    x_train, x_test = (x.float() for x in tables.standardize(train["features"], test["features"]))
    y_train, y_test = train["targets"][:, None].float(), test["targets"][:, None].float()
    init_seed, order_seed = (int(s) for s in torch.randint(2**62, (2,), generator=g))
    norms: dict[str, list[float]] = {}

    def clipping(name, clip):
        norms[name] = []

        def before_step(model, step):
            norms[name].append(float(clip(model.parameters())))
        return before_step

    variants = [  # (key, label, before_step)
        ("none", "no clipping", None),
        ("norm", f"norm ≤ {p['max_norm']:g} (yours)",
         clipping("norm", lambda ps: impl.clip_grad_norm_(ps, p["max_norm"]))),
        ("norm_torch", f"norm ≤ {p['max_norm']:g} (torch)",
         clipping("norm_torch", lambda ps: torch.nn.utils.clip_grad_norm_(ps, p["max_norm"], foreach=False))),
        ("value", f"value ≤ {p['clip_value']:g} (yours)",
         lambda model, step: impl.clip_grad_value_(model.parameters(), p["clip_value"])),
    ]
    histories = {}
    for key, label, before_step in variants:
        torch.manual_seed(init_seed)
        model = mlp(x_train.shape[1], p["hidden"])
        optimizer = torch.optim.SGD(model.parameters(), lr=p["lr"], momentum=0.9)
        histories[key] = fit(model, optimizer, (x_train, y_train), (x_test, y_test), p["epochs"], p["batch_size"],
                             torch.Generator().manual_seed(order_seed), loss_fn=F.mse_loss, before_step=before_step,
                             log=ctx.log, prefix=f"{key}_")
    diverged = {key for key, h in histories.items() if not math.isfinite(h[-1]["train_loss"])}
    ctx.metrics["training"] = {key: {"final_test_mse": None if key in diverged else h[-1]["test_loss"],
                                     "final_train_mse": None if key in diverged else h[-1]["train_loss"],
                                     "diverged": key in diverged} for key, h in histories.items()}
    ctx.metrics["clipped_like_torch_max_abs_diff"] = max(
        abs(a[k] - b[k]) for a, b in zip(histories["norm"], histories["norm_torch"])
        for k in ("train_loss", "test_loss"))
    ctx.metrics["steps_clipped_share"] = sum(n > p["max_norm"] for n in norms["norm"]) / len(norms["norm"])
    ctx.metrics["first_grad_norm"] = norms["norm"][0]
    labels = {key: label for key, label, _ in variants}
    plot_histories(ctx, {labels[k]: h for k, h in histories.items() if k not in diverged},
                   f"diabetes MLP, SGD lr {p['lr']:g}" + (f" ({', '.join(labels[k] for k in sorted(diverged))}: "
                                                          "diverged to nan)" if diverged else ""), name="training")
    fig = ctx.figure(figsize=(6, 3.6))
    ax = fig.subplots()
    ax.plot(range(1, len(norms["norm"]) + 1), norms["norm"], lw=1, label="total grad norm before clipping")
    ax.axhline(p["max_norm"], color="k", ls="--", lw=1, label=f"max_norm {p['max_norm']:g}")
    ax.set(yscale="log", xlabel="step", ylabel="‖g‖₂", title="gradient norm per step, clipped training")
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "grad_norms")

    # 3. time of one clipping against torch's (per tensor, and its foreach kernels)
    params = [torch.randn(p["bench_size"] + i, generator=g).requires_grad_() for i in range(p["bench_tensors"])]
    for q in params:
        q.grad = torch.randn(q.shape, generator=g)
    seconds = p["bench_seconds"]
    for norm_type in (2.0, math.inf):
        key = "inf" if norm_type == math.inf else f"{norm_type:g}"
        ours = lambda: impl.clip_grad_norm_(params, 1.0, norm_type)  # noqa: E731
        ctx.bench[f"norm_{key}"] = compare(ours, lambda: torch.nn.utils.clip_grad_norm_(params, 1.0, norm_type,
                                                                                         foreach=False), seconds)
        ctx.bench[f"norm_{key}_vs_foreach"] = compare(ours, lambda: torch.nn.utils.clip_grad_norm_(
            params, 1.0, norm_type, foreach=True), seconds)
    ctx.bench["value"] = compare(lambda: impl.clip_grad_value_(params, 0.5),
                                 lambda: torch.nn.utils.clip_grad_value_(params, 0.5, foreach=False), seconds)
    ctx.bench.update(norm_2_ratio=ctx.bench["norm_2"]["ratio"], norm_inf_ratio=ctx.bench["norm_inf"]["ratio"],
                     value_ratio=ctx.bench["value"]["ratio"], tensors=p["bench_tensors"],
                     elements=sum(q.numel() for q in params))
