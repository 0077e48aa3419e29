"""a03 experiment: the hand-written broadcasting against torch's over random shapes, the proof that the expansion
copies nothing, and what an add over the stride-0 views costs against torch's own broadcasting add."""
from __future__ import annotations

import torch

from torchkata.pipeline.bench import median_compare
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"cases": 50, "bench_sizes": [16, 256], "bench_seconds": 0.02, "bench_repeats": 1},
    "default": {"cases": 2000, "bench_sizes": [16, 64, 256, 1024, 2048], "bench_seconds": 0.2, "bench_repeats": 3},
    "full": {"cases": 20000, "bench_sizes": [16, 64, 256, 1024, 2048, 4096, 8192], "bench_seconds": 1.0,
             "bench_repeats": 5},
}


def random_shapes(g: torch.Generator) -> list[tuple[int, ...]]:
    """2-3 shapes of rank 0-5 cut from one base shape, some sizes set to 1 and, rarely, one changed."""
    def draw(high: int) -> int:
        return int(torch.randint(high, (), generator=g))

    base = [draw(5) for _ in range(draw(6))]
    shapes = []
    for _ in range(2 + draw(2)):
        shape = [1 if draw(2) else size for size in base[len(base) - draw(len(base) + 1):]]
        if shape and draw(8) == 0:
            shape[draw(len(shape))] = draw(6)
        shapes.append(tuple(shape))
    return shapes


def compare_case(impl, shapes: list[tuple[int, ...]], g: torch.Generator) -> dict:
    """What differs from torch for one group of shapes: the shape (or the error), the values, copies made."""
    try:
        want = torch.broadcast_shapes(*shapes)
    except RuntimeError:
        try:
            impl.broadcast_shapes(*shapes)
        except RuntimeError as error:
            named = all(str(s) in str(error) for s in shapes) if len(shapes) == 2 else True
            return {"incompatible": 1, "mismatch": 0, "unnamed_error": int(not named)}
        return {"incompatible": 1, "mismatch": 1, "unnamed_error": 0}
    inputs = [torch.randn(s, generator=g) for s in shapes]
    got = impl.broadcast_tensors(*inputs)
    same = impl.broadcast_shapes(*shapes) == want and all(
        o.shape == want and torch.equal(o, w) for o, w in zip(got, torch.broadcast_tensors(*inputs)))
    copied = sum(o.untyped_storage().data_ptr() != x.untyped_storage().data_ptr() for o, x in zip(got, inputs))
    return {"compatible": 1, "mismatch": int(not same), "copies": copied,
            "elements_viewed": sum(o.numel() for o in got), "elements_stored": sum(x.numel() for x in inputs)}


def run(ctx: RunContext) -> None:
    p, g, impl = ctx.params, ctx.generator, ctx.impl
    totals: dict[str, int] = {}
    for case in range(p["cases"]):
        for key, value in compare_case(impl, random_shapes(g), g).items():
            totals[key] = totals.get(key, 0) + value
        ctx.log("mismatches_so_far", totals.get("mismatch", 0), case)
    ctx.metrics.update(mismatches=totals.get("mismatch", 0), cases=p["cases"],
                       compatible_cases=totals.get("compatible", 0), incompatible_cases=totals.get("incompatible", 0),
                       errors_not_naming_both_shapes=totals.get("unnamed_error", 0), copies=totals.get("copies", 0),
                       elements_viewed=totals.get("elements_viewed", 0),
                       elements_stored=totals.get("elements_stored", 0))

    # the op that broadcasting serves: (n, 1) + (1, n) through the stride-0 views, against torch's `a + b`
    ratios = []
    for n in p["bench_sizes"]:
        a, b = torch.randn(n, 1, generator=g), torch.randn(1, n, generator=g)
        timing = median_compare(lambda: torch.add(*impl.broadcast_tensors(a, b)), lambda: a + b,
                                p["bench_seconds"], p["bench_repeats"])
        ctx.bench[f"add_{n}x{n}"] = timing
        ratios.append(timing["ratio"])
    ctx.bench["ratio"] = ratios[-1]  # the largest size: the op's cost, not Python's call overhead
    ctx.bench["shape"] = [p["bench_sizes"][-1]] * 2
    a, b = torch.randn(64, 1, generator=g), torch.randn(1, 64, generator=g)
    ctx.bench["broadcast_tensors_alone"] = median_compare(lambda: impl.broadcast_tensors(a, b),
                                                          lambda: torch.broadcast_tensors(a, b),
                                                          p["bench_seconds"], p["bench_repeats"])

    fig = ctx.figure(figsize=(5, 3.2))
    ax = fig.subplots()
    sizes = [n * n for n in p["bench_sizes"]]
    ax.plot(sizes, ratios, "o-", label="add over your stride-0 views")
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.axhline(1.2, color="tab:red", ls="--", lw=0.8, label="bar: 1.2x")
    ax.set(xscale="log", yscale="log", xlabel="output elements ((n,1) + (1,n), float32)",
           ylabel="time / torch's a + b", title="a03: cost of broadcasting by hand")
    ax.legend()
    ctx.save_figure(fig, "ratio_vs_size")
