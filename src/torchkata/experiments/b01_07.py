"""b01-07 experiment: the hand-written reshape against torch.reshape over random strided inputs (same values, and
a view exactly where torch makes one), how often each kind of input can stay a view, and what a copy costs."""
from __future__ import annotations

import math

import torch

from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"cases": 40, "bench_side": 256, "bench_seconds": 0.02},
    "default": {"cases": 2000, "bench_side": 1024, "bench_seconds": 0.3},
    "full": {"cases": 20000, "bench_side": 2048, "bench_seconds": 1.0},
}
KINDS = ["contiguous", "permuted", "stepped", "expanded"]


def randint(g: torch.Generator, low: int, high: int) -> int:
    return int(torch.randint(low, high + 1, (), generator=g))


def strided_input(kind: str, g: torch.Generator) -> torch.Tensor:
    """A 2-4-D view of an arange: as is, with its dims permuted, sliced with a step, or with a stride-0 dim."""
    shape = [randint(g, 1, 4) for _ in range(randint(g, 2, 4))]
    x = torch.arange(math.prod(shape), dtype=torch.float64).view(shape)
    if kind == "permuted":
        x = x.permute(*torch.randperm(x.dim(), generator=g).tolist())
    elif kind == "stepped":
        dim = randint(g, 0, x.dim() - 1)
        start = randint(g, 0, x.shape[dim] - 1)
        x = x.narrow(dim, start, x.shape[dim] - start)[(slice(None),) * dim + (slice(None, None, 2),)]
    elif kind == "expanded":
        dim = randint(g, 0, x.dim())
        x = x.unsqueeze(dim).expand(*x.shape[:dim], randint(g, 2, 3), *x.shape[dim:])
    return x


def random_shape(numel: int, g: torch.Generator) -> list[int]:
    """A shape of rank 1-4 that holds numel elements (numel >= 1)."""
    sizes, left = [], numel
    for _ in range(randint(g, 0, 3)):
        divisors = [d for d in range(1, left + 1) if left % d == 0]
        sizes.append(divisors[randint(g, 0, len(divisors) - 1)])
        left //= sizes[-1]
    sizes.append(left)
    return [sizes[i] for i in torch.randperm(len(sizes), generator=g).tolist()]


def shares_storage(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def run(ctx: RunContext) -> None:
    p, g, impl = ctx.params, ctx.generator, ctx.impl
    mismatches = 0
    views = {kind: 0 for kind in KINDS}
    for case in range(p["cases"]):
        kind = KINDS[case % len(KINDS)]
        x = strided_input(kind, g)
        shape = random_shape(x.numel(), g)
        got, want = impl.reshape(x, shape), torch.reshape(x, shape)
        is_view = shares_storage(want, x)
        same = torch.equal(got, want) and shares_storage(got, x) == is_view
        if is_view:
            same = same and got.data_ptr() == want.data_ptr() and all(
                n <= 1 or a == b for n, a, b in zip(want.shape, got.stride(), want.stride()))
        mismatches += not same
        views[kind] += is_view
        ctx.log("mismatches_so_far", mismatches, case)
    per_kind = p["cases"] // len(KINDS)
    view_fraction = {kind: views[kind] / per_kind for kind in KINDS}
    ctx.metrics.update(mismatches=mismatches, cases=p["cases"], view_fraction=view_fraction)

    fig = ctx.figure(figsize=(5, 3.2))
    ax = fig.subplots()
    ax.bar(KINDS, [view_fraction[k] for k in KINDS], color="tab:blue", label="view (no data moved)")
    ax.bar(KINDS, [1 - view_fraction[k] for k in KINDS], bottom=[view_fraction[k] for k in KINDS], color="tab:orange",
           label="copy")
    ax.set(ylabel="fraction of random reshapes", ylim=(0, 1), title="b01-07: when can a reshape stay a view?")
    ax.legend(loc="lower left")
    ctx.save_figure(fig, "view_or_copy_by_input")

    # a view costs only Python's bookkeeping; a copy costs a pass over the data, like torch's
    n = p["bench_side"]
    x = torch.randn(n, n, generator=g)
    ctx.bench["reshape_view"] = compare(lambda: impl.reshape(x, (n // 2, 2 * n)), lambda: x.reshape(n // 2, 2 * n),
                                        min_run_time=p["bench_seconds"])
    xt = x.t()
    ctx.bench["reshape_copy"] = compare(lambda: impl.reshape(xt, (-1,)), lambda: xt.reshape(-1),
                                        min_run_time=p["bench_seconds"])
    ctx.bench["ratio"] = ctx.bench["reshape_copy"]["ratio"]
    ctx.bench["shape"] = [n, n]
