"""b02-09 experiment: what weight decay does to a training. An MLP with far more weights than a small slice of
scikit-learn's digits needs is trained with the hand-written SGD (momentum 0.9) without decay, with L2 decay in the
gradient, and with decoupled decay of the same equilibrium strength, over a few seeds: train/test curves with the
seeds' spread, the weight norm along the training, and the final numbers (mean and std over the seeds)."""
from __future__ import annotations

import statistics

import torch
from torch import nn

from torchkata.data import digits
from torchkata.experiments.b02_04 import bench_steps
from torchkata.training.loop import fit, mean_std, over_seeds, plot_histories

SCALES = {
    "smoke": {"train_size": 200, "seeds": 1, "epochs": 1, "hidden": 64, "batch_size": 32, "lr": 0.05,
              "weight_decay": 2e-3, "bench_layers": 2, "bench_width": 64, "bench_seconds": 0.02},
    "default": {"train_size": 300, "seeds": 3, "epochs": 30, "hidden": 256, "batch_size": 32, "lr": 0.05,
                "weight_decay": 2e-3, "bench_layers": 8, "bench_width": 512, "bench_seconds": 0.3},
    "full": {"train_size": 300, "seeds": 10, "epochs": 100, "hidden": 512, "batch_size": 32, "lr": 0.05,
             "weight_decay": 2e-3, "bench_layers": 16, "bench_width": 1024, "bench_seconds": 1.0},
}
MOMENTUM = 0.9


def variants(p: dict) -> dict[str, tuple[str, dict]]:
    """key: (label, optimizer options). With momentum an L2 gradient term is summed into the buffer, so its pull on
    the weights is 1/(1 - momentum) times that of the same coefficient applied directly: the decoupled run gets the
    coefficient scaled up by it, for the same equilibrium strength."""
    wd, scaled = p["weight_decay"], p["weight_decay"] / (1 - MOMENTUM)
    return {"none": ("no decay", dict(weight_decay=0.0)),
            "l2": (f"L2 in the gradient, wd {wd:g}", dict(weight_decay=wd)),
            "decoupled": (f"decoupled, wd {scaled:g}", dict(weight_decay=scaled, decoupled_weight_decay=True))}


def weight_norm(model: nn.Module) -> float:
    return float(torch.sqrt(sum(m.weight.detach().pow(2).sum() for m in model if isinstance(m, nn.Linear))))


def run(ctx) -> None:
    p = ctx.params
    data = digits.load(ctx.input("digits"))
    images, labels = data["images"].flatten(1).float() / digits.MAX_VALUE, data["labels"]
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))  # one split for every seed
    train_idx, test_idx = order[:p["train_size"]], order[p["train_size"]:]
    train, test = (images[train_idx], labels[train_idx]), (images[test_idx], labels[test_idx])

    histories, errors, norms, finals = {}, {}, {}, {}
    for name, (label, options) in variants(p).items():
        runs, curves = [], []
        for k in range(p["seeds"]):
            torch.manual_seed(ctx.seed * 1000 + k)  # the same initial weights for every variant of seed k
            model = nn.Sequential(nn.Linear(64, p["hidden"]), nn.ReLU(), nn.Linear(p["hidden"], p["hidden"]),
                                  nn.ReLU(), nn.Linear(p["hidden"], 10))
            optimizer = ctx.impl.SGD(model.parameters(), lr=p["lr"], momentum=MOMENTUM, **options)
            curve = [weight_norm(model)]
            runs.append(fit(model, optimizer, train, test, p["epochs"], p["batch_size"],
                            torch.Generator().manual_seed(ctx.seed * 1000 + k),
                            before_step=lambda m, step, curve=curve: curve.append(weight_norm(m))))
            curve.append(weight_norm(model))
            curves.append(curve)
        histories[name], errors[name] = over_seeds(runs)
        norms[name] = [statistics.fmean(c[i] for c in curves) for i in range(len(curves[0]))]
        finals[name] = {key: mean_std(v) for key, v in {
            "test_accuracy": [r[-1]["test_accuracy"] for r in runs], "test_loss": [r[-1]["test_loss"] for r in runs],
            "train_loss": [r[-1]["train_loss"] for r in runs], "weight_norm": [c[-1] for c in curves]}.items()}

    ctx.metrics.update(
        weight_norm_ratio=finals["l2"]["weight_norm"][0] / finals["none"]["weight_norm"][0],
        decoupled_weight_norm_ratio=finals["decoupled"]["weight_norm"][0] / finals["none"]["weight_norm"][0],
        final={name: {f"{key}_{stat}": value for key, pair in f.items() for stat, value in zip(("mean", "std"), pair)}
               for name, f in finals.items()},
        seeds=p["seeds"], epochs=p["epochs"], train_size=p["train_size"], test_size=len(test_idx))

    labels = {name: label for name, (label, _) in variants(p).items()}
    plot_histories(ctx, {labels[name]: histories[name] for name in labels},
                   f"b02-09: digits ({p['train_size']} train), ±std of {p['seeds']} seeds",
                   errors={labels[name]: errors[name] for name in labels})
    fig = ctx.figure(figsize=(5.5, 3.6))
    ax = fig.subplots()
    for name, norm in norms.items():
        ax.plot(norm, label=f"{labels[name]}: {finals[name]['test_accuracy'][0]:.3f} test acc.")
    ax.set(xlabel="step", ylabel="‖W‖ (all weight matrices)", title="b02-09: weight norm during training")
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "weight_norm")

    # the decoupled step against torch's L2 step: the same work but for where the decay goes
    bench_steps(ctx, dict(lr=p["lr"], momentum=MOMENTUM, weight_decay=p["weight_decay"], decoupled_weight_decay=True),
                p["bench_layers"], p["bench_width"], p["bench_seconds"])
