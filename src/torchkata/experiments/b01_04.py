"""b01-04 experiment: the hand-written elementwise ops against torch's over random shapes and dtype pairs (values
and result dtypes), and their cost against torch's own ops: same shapes, a broadcast row, and mixed dtypes."""
from __future__ import annotations


import torch

from torchkata.pipeline.bench import median_compare
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"cases": 30, "bench_shape": [256, 128], "bench_seconds": 0.02, "bench_repeats": 1},
    "default": {"cases": 600, "bench_shape": [4096, 1024], "bench_seconds": 0.2, "bench_repeats": 3},
    "full": {"cases": 6000, "bench_shape": [16384, 4096], "bench_seconds": 1.0, "bench_repeats": 5},
}
OPS = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "maximum": torch.maximum,
       "minimum": torch.minimum}
DTYPES = [torch.uint8, torch.int8, torch.int32, torch.int64, torch.float16, torch.bfloat16, torch.float32,
          torch.float64]


def sample(shape: list[int], dtype: torch.dtype, g: torch.Generator) -> torch.Tensor:
    if dtype.is_floating_point:
        return (torch.randn(shape, generator=g, dtype=torch.float64) * 3).to(dtype)
    return torch.randint(1, 50, shape, generator=g).to(dtype)  # no zeros: integer division by zero is not the point


def run(ctx: RunContext) -> None:
    p, g, impl = ctx.params, ctx.generator, ctx.impl

    def draw(high: int) -> int:
        return int(torch.randint(high, (), generator=g))

    worst = {name: 0.0 for name in OPS}
    dtype_mismatches = 0
    for case in range(p["cases"]):
        name = list(OPS)[case % len(OPS)]
        base = [1 + draw(5) for _ in range(draw(5))]
        shapes = [[1 if draw(2) else s for s in base[len(base) - draw(len(base) + 1):]] for _ in range(2)]
        dtypes = [DTYPES[draw(len(DTYPES))] for _ in range(2)]
        a, b = (sample(shape, dtype, g) for shape, dtype in zip(shapes, dtypes))
        got, want = getattr(impl, name)(a, b), OPS[name](a, b)
        dtype_mismatches += int(got.dtype != want.dtype)
        # relative error in units of the result dtype's eps (1 for integers, which must match exactly): one scale
        # for float64 and bfloat16 alike
        eps = torch.finfo(want.dtype).eps if want.dtype.is_floating_point else 1.0
        relative = (got.double() - want.double()).abs() / want.double().abs().clamp_min(1.0)
        worst[name] = max(worst[name], float(relative.max()) / eps if want.numel() else 0.0)
        ctx.log("max_error_eps_so_far", max(worst.values()), case)
    ctx.metrics.update(max_error_eps=max(worst.values()), max_error_eps_by_op=worst, dtype_mismatches=dtype_mismatches,
                       cases=p["cases"])

    rows, cols = p["bench_shape"]
    x, y = torch.randn(rows, cols, generator=g), torch.randn(rows, cols, generator=g) + 4.0
    row = torch.randn(cols, generator=g) + 4.0
    ints = torch.randint(1, 50, (rows, cols), generator=g, dtype=torch.int32)
    cases = {"same_shape": (x, y), "broadcast_row": (x, row), "int32_with_float32_row": (ints, row)}
    # median_compare times without deterministic mode's NaN fill of the result the hand-written op allocates
    timings = {case: {name: median_compare(lambda: getattr(impl, name)(a, b), lambda: OPS[name](a, b),
                                           p["bench_seconds"], p["bench_repeats"])
                      for name in ("add", "mul", "div", "maximum")}
               for case, (a, b) in cases.items()}
    ctx.bench.update(timings)
    ctx.bench["shape"] = [rows, cols]
    ctx.bench["ratio"] = max(t["ratio"] for case in ("same_shape", "broadcast_row") for t in timings[case].values())
    ctx.bench["ratio_mixed_dtypes"] = max(t["ratio"] for t in timings["int32_with_float32_row"].values())

    fig = ctx.figure(figsize=(6, 3.2))
    ax = fig.subplots()
    names = list(timings["same_shape"])
    for k, case in enumerate(cases):
        ax.bar([i + 0.27 * (k - 1) for i in range(len(names))], [timings[case][n]["ratio"] for n in names],
               width=0.27, label=case.replace("_", " "))
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.axhline(1.2, color="tab:red", ls="--", lw=0.8, label="bar: 1.2x")
    ax.set_xticks(range(len(names)), names)
    ax.set(ylabel="time / torch's op", title=f"b01-04: hand-written ops at ({rows}, {cols}), float32 result")
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "ratio_by_op")
