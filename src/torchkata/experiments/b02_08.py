"""b02-08 experiment: gradient flow. Two deep MLPs (10 linear layers) trained on scikit-learn's digits from the same
batch order: sigmoids with small weights (std 0.1), where the gradient vanishes on its way back, and ReLUs with He
initialisation, where it flows. Every step's per-layer gradient norms are recorded in the shared loop's before_step
and plotted over training and against depth; the metrics are the first-to-last layer ratios."""
from __future__ import annotations

import statistics

import torch

from torchkata.data import digits
from torchkata.pipeline.runner import RunContext
from torchkata.training.loop import fit, plot_histories

SCALES = {
    "smoke": {"test_size": 200, "train_size": 300, "depth": 10, "width": 32, "epochs": 1, "batch_size": 32,
              "lr": 0.01},
    "default": {"test_size": 400, "train_size": 1397, "depth": 10, "width": 64, "epochs": 12, "batch_size": 32,
                "lr": 0.01},
    "full": {"test_size": 400, "train_size": 1397, "depth": 20, "width": 128, "epochs": 50, "batch_size": 32,
             "lr": 0.01},
}
# key (as in metrics.json): (activation, initialisation, label in the plots)
SETUPS = {"vanishing": ("sigmoid", "small", "sigmoid, small init (std 0.1)"), "healthy": ("relu", "he", "ReLU, He init")}


def run(ctx: RunContext) -> None:
    p, flow = ctx.params, ctx.impl
    train, test = digits.split(ctx.input("digits"), p["test_size"], ctx.generator, p["train_size"])
    sizes = [64] + [p["width"]] * (p["depth"] - 1) + [10]
    init_seed, order_seed = (int(s) for s in torch.randint(2**31, (2,), generator=ctx.generator))

    norms, histories, ratios = {}, {}, {}
    for label, (activation, scheme, _) in SETUPS.items():
        model = flow.deep_mlp(sizes, activation)
        flow.init_weights(model, scheme, torch.Generator().manual_seed(init_seed))
        steps = norms[label] = []
        optimizer = torch.optim.SGD(model.parameters(), lr=p["lr"], momentum=0.9)
        histories[label] = fit(model, optimizer, train, test, p["epochs"], p["batch_size"],
                               torch.Generator().manual_seed(order_seed), log=ctx.log, prefix=f"{activation}.",
                               before_step=lambda model, step, steps=steps: steps.append(flow.gradient_norms(model)))
        ratios[label] = [flow.first_to_last_ratio(n) for n in steps]
        for step in range(0, len(steps), 10):
            ctx.log(f"{activation}.first_to_last_ratio", ratios[label][step], step)

    layers = list(norms["healthy"][0])
    ctx.metrics.update(
        first_to_last_ratio_vanishing=ratios["vanishing"][0], first_to_last_ratio_healthy=ratios["healthy"][0],
        median_first_to_last_ratio={label: statistics.median(r) for label, r in ratios.items()},
        first_step_norms={label: n[0] for label, n in norms.items()},
        test_accuracy={label: h[-1]["test_accuracy"] for label, h in histories.items()},
        final_train_loss={label: h[-1]["train_loss"] for label, h in histories.items()},
        steps=len(ratios["healthy"]), layers=len(layers), train_size=len(train[0]), test_size=len(test[0]))

    fig = ctx.figure(figsize=(15, 3.8), layout="constrained")
    axes = fig.subplots(1, 3)
    colours = [depth_colour(i, len(layers)) for i in range(len(layers))]
    for ax, label in zip(axes, SETUPS):
        for i, layer in enumerate(layers):
            ax.plot([n[layer] for n in norms[label]], color=colours[i], lw=0.7,
                    label=f"layer {i + 1}" if i in (0, len(layers) - 1) else None)
        ax.set(yscale="log", xlabel="step", ylabel="‖∂L/∂W‖", title=f"{SETUPS[label][2]}\ntest accuracy "
               f"{histories[label][-1]['test_accuracy']:.3f}, first/last layer {ratios[label][0]:.1e} at step 0")
        ax.legend(fontsize=7)
    depth = range(1, len(layers) + 1)
    for i, label in enumerate(SETUPS):
        per_layer = torch.tensor([[n[layer] for layer in layers] for n in norms[label]])
        ax = axes[2]
        ax.plot(depth, per_layer[0], "o--", color=f"C{i}", ms=3, label=f"{SETUPS[label][2]}, step 0")
        ax.plot(depth, per_layer.median(0).values, "o-", color=f"C{i}", ms=3,
                label=f"{SETUPS[label][2]}, median over steps")
    axes[2].set(yscale="log", xlabel="layer (1 = input side)", ylabel="‖∂L/∂W‖", title="gradient norm against depth")
    axes[2].legend(fontsize=7)
    fig.suptitle(f"b02-08: gradient flow through {len(layers)} linear layers (digits, colour: depth, dark = input "
                 "side)", fontsize=10)
    ctx.save_figure(fig, "gradient_flow")
    plot_histories(ctx, {SETUPS[k][2]: h for k, h in histories.items()}, "b02-08")


def depth_colour(i: int, n: int):
    from matplotlib import colormaps

    return colormaps["viridis"](i / max(n - 1, 1))
