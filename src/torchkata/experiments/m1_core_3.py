"""m1-core-3 experiment: values and gradients of the hand-broadcast ops against torch's autograd over random
broadcasting shapes, and their cost, forward and forward + backward, against torch's own ops."""
from __future__ import annotations

import torch

from torchkata.pipeline.bench import median_compare
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"cases": 20, "bench_shape": [256, 128], "bench_seconds": 0.02, "bench_repeats": 1},
    "default": {"cases": 400, "bench_shape": [4096, 1024], "bench_seconds": 0.2, "bench_repeats": 3},
    "full": {"cases": 4000, "bench_shape": [8192, 4096], "bench_seconds": 1.0, "bench_repeats": 5},
}
OPS = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div}


def random_pair(g: torch.Generator) -> tuple[list[int], list[int]]:
    """Two broadcastable shapes of rank 0-5 cut from one base shape, some sizes set to 1."""
    def draw(high: int) -> int:
        return int(torch.randint(high, (), generator=g))

    base = [1 + draw(4) for _ in range(draw(6))]
    return tuple([1 if draw(2) else s for s in base[len(base) - draw(len(base) + 1):]] for _ in range(2))


def max_abs_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got - want).abs().max()) if want.numel() else 0.0


def run(ctx: RunContext) -> None:
    p, g, impl = ctx.params, ctx.generator, ctx.impl
    value_error = {name: 0.0 for name in OPS}
    grad_error = {name: 0.0 for name in OPS}
    reduced = 0  # cases where a gradient had to be summed back to a smaller shape
    for case in range(p["cases"]):
        a_shape, b_shape = random_pair(g)
        name = list(OPS)[case % len(OPS)]
        a = torch.randn(a_shape, generator=g, dtype=torch.float64).requires_grad_()
        b = (torch.rand(b_shape, generator=g, dtype=torch.float64) + 0.5).requires_grad_()
        ours, want = getattr(impl, name)(a, b), OPS[name](a, b)
        weights = torch.randn(want.shape, generator=g, dtype=torch.float64)
        got_grads = torch.autograd.grad((ours * weights).sum(), (a, b))
        want_grads = torch.autograd.grad((want * weights).sum(), (a, b))
        value_error[name] = max(value_error[name], max_abs_error(ours.detach(), want.detach()))
        grad_error[name] = max(grad_error[name], *(max_abs_error(x, y) for x, y in zip(got_grads, want_grads)))
        reduced += int(tuple(a_shape) != tuple(want.shape)) + int(tuple(b_shape) != tuple(want.shape))
        ctx.log("grad_max_abs_error_so_far", max(grad_error.values()), case)
    ctx.metrics.update(max_abs_error=max(value_error.values()), grad_max_abs_error=max(grad_error.values()),
                       grad_max_abs_error_by_op=grad_error, cases=p["cases"], gradients_reduced=reduced)

    rows, cols = p["bench_shape"]
    a = torch.randn(rows, cols, generator=g).requires_grad_()
    b = (torch.rand(cols, generator=g) + 0.5).requires_grad_()  # a row broadcast over every row of a
    upstream = torch.randn(rows, cols, generator=g)

    def forward_backward(op):
        def step():
            with torch.enable_grad():  # compare times under no_grad
                torch.autograd.grad(op(a, b), (a, b), upstream)
        return step

    forward, both = {}, {}
    # median_compare times the op, not deterministic mode's NaN fill of the result b01-04 allocates
    for name, native in OPS.items():
        ours = getattr(impl, name)
        forward[name] = median_compare(lambda: ours(a, b), lambda: native(a, b), p["bench_seconds"],
                                       p["bench_repeats"])
        both[name] = median_compare(forward_backward(ours), forward_backward(native), p["bench_seconds"],
                                    p["bench_repeats"])
    ctx.bench.update(forward=forward, forward_backward=both, shape=[[rows, cols], [cols]])
    ctx.bench["ratio"] = max(t["ratio"] for t in [*forward.values(), *both.values()])

    fig = ctx.figure(figsize=(5.5, 3.2))
    ax = fig.subplots()
    x = torch.arange(len(OPS)).tolist()
    ax.bar([i - 0.2 for i in x], [forward[n]["ratio"] for n in OPS], width=0.4, label="forward")
    ax.bar([i + 0.2 for i in x], [both[n]["ratio"] for n in OPS], width=0.4, label="forward + backward")
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.axhline(1.2, color="tab:red", ls="--", lw=0.8, label="bar: 1.2x")
    ax.set_xticks(x, list(OPS))
    ax.set(ylabel="time / torch's op", title=f"m1-core-3: ({rows}, {cols}) op ({cols},), float32")
    ax.legend(fontsize=8, loc="lower right")
    ctx.save_figure(fig, "ratio_by_op")
