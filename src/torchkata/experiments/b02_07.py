"""b02-07 experiment: a linear softmax classifier on scikit-learn's digits trained by the hand-written cross-entropy
(label smoothing, class weights); at every step autograd's gradient of F.cross_entropy for the same batch is
computed beside ours. A second run trained by F.cross_entropy is the baseline. Plus the forward and backward ratios
at 4096x1024."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from torchkata.autograd.timing import forward_backward
from torchkata.data import digits as digits_data
from torchkata.data.digits import MAX_VALUE
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"test_size": 400, "epochs": 2, "batch_size": 128, "lr": 0.5, "label_smoothing": 0.1,
              "bench_shape": [256, 256], "bench_seconds": 0.05},
    "default": {"test_size": 400, "epochs": 10, "batch_size": 256, "lr": 0.5, "label_smoothing": 0.1,
                "bench_shape": [4096, 1024], "bench_seconds": 0.3},
    "full": {"test_size": 400, "epochs": 200, "batch_size": 128, "lr": 0.5, "label_smoothing": 0.1,
             "bench_shape": [16384, 4096], "bench_seconds": 1.0},
}


def run(ctx: RunContext) -> None:
    p, g, cross_entropy = ctx.params, ctx.generator, ctx.impl.cross_entropy
    digits = digits_data.load(ctx.input("digits"))
    x, y = digits["images"].flatten(1).double() / MAX_VALUE, digits["labels"]
    order = torch.randperm(len(x), generator=g)
    test, train = order[:p["test_size"]], order[p["test_size"]:]
    # inverse class frequency of the training set, mean 1: every class weighs the same in the loss
    counts = torch.bincount(y[train], minlength=10).double()
    class_weight = (1 / counts) / (1 / counts).mean()
    options = dict(weight=class_weight, label_smoothing=p["label_smoothing"])
    init = torch.randn(65, 10, generator=g, dtype=torch.float64) * 0.01  # weights and, in the last row, the bias
    order_seed = int(torch.randint(2**31, (), generator=g))

    def logits(params, inputs):
        return inputs @ params[:-1] + params[-1]

    losses, grad_errors, accuracy = {}, [], {}
    for name, loss_fn in (("yours", cross_entropy), ("F.cross_entropy", F.cross_entropy)):
        params = init.clone().requires_grad_()
        batches = torch.Generator().manual_seed(order_seed)
        curve = []
        for epoch in range(p["epochs"]):
            total = 0.0
            for batch in train[torch.randperm(len(train), generator=batches)].split(p["batch_size"]):
                loss = loss_fn(logits(params, x[batch]), y[batch], **options)
                (grad,) = torch.autograd.grad(loss, params)
                if name == "yours":  # the gradient that autograd gets from PyTorch's own loss, same batch and weights
                    (want,) = torch.autograd.grad(F.cross_entropy(logits(params, x[batch]), y[batch], **options),
                                                  params)
                    grad_errors.append(float((grad - want).abs().max()))
                with torch.no_grad():
                    params -= p["lr"] * grad
                total += loss.item() * len(batch)
            curve.append(total / len(train))
            ctx.log(f"{name}_train_loss", curve[-1], epoch)
        losses[name] = curve
        with torch.no_grad():
            accuracy[name] = float((logits(params, x[test]).argmax(1) == y[test]).double().mean())

    ctx.metrics.update(
        grad_max_abs_error=max(grad_errors), steps=len(grad_errors),
        max_loss_difference=max(abs(a - b) for a, b in zip(losses["yours"], losses["F.cross_entropy"])),
        final_train_loss={k: v[-1] for k, v in losses.items()}, test_accuracy=accuracy,
        train_size=len(train), test_size=len(test))

    fig = ctx.figure(figsize=(9, 3.2))
    ax_loss, ax_err = fig.subplots(1, 2)
    for (name, curve), style in zip(losses.items(), ("o-", "x--")):
        ax_loss.plot(range(1, len(curve) + 1), curve, style, label=name, markersize=4)
    ax_loss.set(xlabel="epoch", ylabel="training loss (smoothed, weighted)",
                title=f"b02-07: digits, test accuracy {accuracy['yours']:.3f}")
    ax_loss.legend()
    ax_err.semilogy(range(1, len(grad_errors) + 1), [max(e, 1e-20) for e in grad_errors], ".", markersize=3)
    ax_err.set(xlabel="step", ylabel="max |your grad − autograd's|", title="float64 gradient difference per step")
    ctx.save_figure(fig, "training")

    x = torch.randn(*p["bench_shape"], generator=g).requires_grad_()
    target = torch.randint(0, p["bench_shape"][1], (p["bench_shape"][0],), generator=g)
    ctx.bench["cross_entropy"] = forward_backward(cross_entropy, F.cross_entropy, (x, target), p["bench_seconds"])
    ctx.bench["forward_ratio"] = ctx.bench["cross_entropy"]["forward"]["ratio"]
    ctx.bench["backward_ratio"] = ctx.bench["cross_entropy"]["backward"]["ratio"]
    ctx.bench["shape"] = p["bench_shape"]
