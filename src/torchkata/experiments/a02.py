"""a02 experiment: the hand-written cross-entropy against F.cross_entropy over random batches and every option
(class weights, ignore_index, label smoothing, reductions), its backward against softmax minus one-hot, what
happens as the logits grow to ±1e4 (beside a naive log(softmax)), and the forward and backward timed against
PyTorch's at 4096x1024."""
from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from torchkata.autograd.timing import forward_backward
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"cases": 2, "max_batch": 32, "max_classes": 16, "bench_shape": [256, 256], "bench_seconds": 0.05},
    "default": {"cases": 6, "max_batch": 256, "max_classes": 128, "bench_shape": [4096, 1024], "bench_seconds": 0.3},
    "full": {"cases": 40, "max_batch": 2048, "max_classes": 1024, "bench_shape": [16384, 4096], "bench_seconds": 1.0},
}
LOGIT_SCALES = [1.0, 10.0, 100.0, 1e3, 1e4]
OPTIONS = [dict(weight=w, ignore_index=i, reduction=r, label_smoothing=s) for w, i, r, s in
           itertools.product([False, True], [False, True], ["none", "mean", "sum"], [0.0, 0.1])]


def value_and_grad(fn, x, upstream):
    x = x.detach().requires_grad_()
    loss = fn(x)
    (grad,) = torch.autograd.grad(loss, x, upstream if loss.dim() else None)
    return loss.detach(), grad


def max_abs(t: torch.Tensor) -> float:
    return float(t.abs().max()) if t.numel() else 0.0


def naive_cross_entropy(x, target):
    return -(x.exp() / x.exp().sum(1, keepdim=True)).log().gather(1, target[:, None]).mean()


def run(ctx: RunContext) -> None:
    p, g, cross_entropy = ctx.params, ctx.generator, ctx.impl.cross_entropy
    value_error = grad_error = onehot_error = 0.0
    for case in range(p["cases"]):
        n = int(torch.randint(1, p["max_batch"] + 1, (), generator=g))
        c = int(torch.randint(2, p["max_classes"] + 1, (), generator=g))
        x = torch.randn(n, c, generator=g, dtype=torch.float64) * LOGIT_SCALES[case % 3]
        target = torch.randint(0, c, (n,), generator=g)
        weight = torch.rand(c, generator=g, dtype=torch.float64) + 0.1
        upstream = torch.randn(n, generator=g, dtype=torch.float64)
        ignored = target.masked_fill(torch.rand(n, generator=g) < 0.2, -100)  # a fifth of the rows ignored
        for o in OPTIONS:
            options = dict(weight=weight if o["weight"] else None, reduction=o["reduction"],
                           label_smoothing=o["label_smoothing"])
            t = ignored if o["ignore_index"] else target
            ours = value_and_grad(lambda z: cross_entropy(z, t, **options), x, upstream)
            want = value_and_grad(lambda z: F.cross_entropy(z, t, **options), x, upstream)
            value_error = max(value_error, max_abs(ours[0] - want[0]))
            grad_error = max(grad_error, max_abs(ours[1] - want[1]))
        _, grad = value_and_grad(lambda z: cross_entropy(z, target), x, None)
        onehot_error = max(onehot_error, max_abs(grad - (torch.softmax(x, 1) - F.one_hot(target, c)) / n))
        ctx.log("grad_max_abs_error_so_far", grad_error, case)

    small = torch.randn(6, 4, generator=g, dtype=torch.float64).requires_grad_()
    small_target = torch.randint(0, 4, (6,), generator=g)
    fn = lambda z: cross_entropy(z, small_target, weight=torch.arange(1.0, 5.0, dtype=torch.float64),  # noqa: E731
                                 label_smoothing=0.1)
    ctx.metrics.update(max_abs_error=value_error, grad_max_abs_error=grad_error, onehot_max_abs_error=onehot_error,
                       cases=p["cases"], option_combinations=len(OPTIONS),
                       gradcheck=torch.autograd.gradcheck(fn, (small,)),
                       gradgradcheck=torch.autograd.gradgradcheck(fn, (small,)))

    # large logits, float32: ours and PyTorch's stay finite, log(softmax) does not
    probe, probe_target = torch.randn(64, 10, generator=g), torch.randint(0, 10, (64,), generator=g)
    curves = {"yours": [], "F.cross_entropy": [], "naive log(softmax)": []}
    grad_norms, errors = [], {}
    for scale in LOGIT_SCALES:
        x = probe * scale
        ours, grad = value_and_grad(lambda z: cross_entropy(z, probe_target), x, None)
        want, want_grad = value_and_grad(lambda z: F.cross_entropy(z, probe_target), x, None)
        curves["yours"].append(float(ours))
        curves["F.cross_entropy"].append(float(want))
        curves["naive log(softmax)"].append(float(naive_cross_entropy(x, probe_target)))
        grad_norms.append(float(grad.norm()))
        errors[f"{scale:g}"] = {"loss": abs(float(ours - want)), "grad": max_abs(grad - want_grad)}
    ctx.metrics["float32_error_by_logit_scale"] = errors
    ctx.metrics["finite_at_every_scale"] = all(torch.isfinite(torch.tensor(curves["yours"] + grad_norms)).tolist())
    fig = ctx.figure(figsize=(9, 3.2))
    ax_loss, ax_grad = fig.subplots(1, 2)
    for (name, losses), style in zip(curves.items(), ("o-", "x--", "s:")):
        finite = [(s, v) for s, v in zip(LOGIT_SCALES, losses) if v == v and abs(v) != float("inf")]
        ax_loss.plot([s for s, _ in finite], [v for _, v in finite], style, label=name)
    ax_loss.set(xscale="log", yscale="log", xlabel="logit scale", ylabel="mean loss (float32)",
                title="a02: loss; the naive one's missing points are inf/nan")
    ax_loss.legend()
    ax_grad.plot(LOGIT_SCALES, grad_norms, "o-")
    ax_grad.set(xscale="log", xlabel="logit scale", ylabel="‖∂loss/∂logits‖", title="a02: gradient norm, at most √(2/N) for the mean")
    ctx.save_figure(fig, "loss_vs_logit_scale")

    x = torch.randn(*p["bench_shape"], generator=g).requires_grad_()
    target = torch.randint(0, p["bench_shape"][1], (p["bench_shape"][0],), generator=g)
    ctx.bench["cross_entropy"] = forward_backward(cross_entropy, F.cross_entropy, (x, target), p["bench_seconds"])
    ctx.bench["forward_ratio"] = ctx.bench["cross_entropy"]["forward"]["ratio"]
    ctx.bench["backward_ratio"] = ctx.bench["cross_entropy"]["backward"]["ratio"]
    ctx.bench["label_smoothing_0.1"] = forward_backward(lambda a, b: cross_entropy(a, b, label_smoothing=0.1),
                                                        lambda a, b: F.cross_entropy(a, b, label_smoothing=0.1),
                                                        (x, target), p["bench_seconds"])
    ctx.bench["shape"] = p["bench_shape"]
