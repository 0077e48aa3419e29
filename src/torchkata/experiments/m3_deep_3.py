"""m3-deep-3 experiment: the table of every hand-written kernel (kernel_registry.KERNELS: a41-a47's, a49's, m3-deep-1's and
m3-deep-2's, and m4-deep-2's Triton matmul where there is a GPU) against its native PyTorch op, on the CPU and, where
there is a GPU, on CUDA: each row checked, then timed in this process on the run's threads. benchmark.csv (beside
bench.json: times are not artifacts) and bench.json's `table` hold the rows; plots/ratios.png draws ours / native on
a log axis, plots/table.png the table itself for the report. metrics.json: the CPU rows' errors and counts."""
from __future__ import annotations

import dataclasses
import math

import torch

from torchkata.extensions.kernel_bench import devices
from torchkata.extensions.kernel_registry import KERNELS
from torchkata.pipeline import extensions
from torchkata.pipeline.runner import RunContext

# sizes: each kernel's "smoke" sizes, or its sizes for the device ("cpu", "cuda")
SCALES = {
    "smoke": {"sizes": "smoke", "bench_seconds": 0.02, "repeats": 1},
    "default": {"sizes": "device", "bench_seconds": 0.08, "repeats": 1},
    "full": {"sizes": "device", "bench_seconds": 1.0, "repeats": 3},
}


def run(ctx: RunContext) -> None:
    p, impl = ctx.params, ctx.impl
    paths = {name: str(ctx.input(name)) for name in ctx.exercise.extensions}
    with_cuda = {name: built_with_cuda(name, path) for name, path in paths.items()} if torch.cuda.is_available() else {}
    rows = []
    for device in devices(ctx, any(with_cuda.values())):
        for kernel in KERNELS:
            if device.type == "cuda" and kernel.extension and not with_cuda[kernel.extension]:
                kernel = dataclasses.replace(kernel, skip=kernel.skip | {"cuda": "its library was built without CUDA"})
            sizes = kernel.sizes[p["sizes"] if p["sizes"] == "smoke" else device.type]
            rows += impl.benchmark(kernel, device, sizes, ctx.generator, paths.get(kernel.extension),
                                   p["bench_seconds"], p["repeats"])
    impl.write_csv(rows, ctx.out / "benchmark.csv")
    ctx.metrics.update(correctness([r for r in rows if r["device"] == "cpu"]))
    gpu_rows = [r for r in rows if r["device"] == "cuda"]
    if gpu_rows:
        ctx.metrics["cuda_rows"] = len(gpu_rows)
        ctx.metrics["cuda_failed_rows"] = sum(failed(r) for r in gpu_rows)
    ctx.bench["table"] = rows
    for device in {r["device"] for r in rows}:  # "ratio" for the summary, "cuda_ratio" beside it
        key = "ratio" if device == "cpu" else f"{device}_ratio"
        ctx.bench[key] = largest_size_geomean([r for r in rows if r["device"] == device])
    plot_ratios(ctx, rows)
    plot_table(ctx, rows)


def built_with_cuda(name: str, path: str) -> bool:
    """Whether the library took its CUDA half: an op library's `<name>_has_cuda` operator, a pybind11 module's
    `has_cuda` (a42); False for a CPU-only extension (a41)."""
    library = extensions.load(name, path)
    probe = getattr(library, f"{name}_has_cuda", None) or getattr(library, "has_cuda", None)
    return bool(probe is not None and probe())


def failed(row: dict) -> bool:
    return row["status"] != "ok" and not row["status"].startswith("skipped")


def correctness(rows: list[dict]) -> dict:
    """The deterministic part of the table: each kernel's worst error per pass, the worst error over its tolerance
    (the key metric: below 1, every row passed its check), the counts, and what was skipped and why."""
    checked = [r for r in rows if "max_rel_error" in r]
    errors = {}
    for r in checked:
        worst = errors.setdefault(r["kernel"], {})
        worst[r["pass"]] = max(worst.get(r["pass"], 0.0), r["max_rel_error"])
    return {"max_error_over_tolerance": max(r["max_rel_error"] / r["tolerance"] for r in checked),
            "max_rel_error": errors, "rows": len(checked), "failed_rows": sum(failed(r) for r in rows),
            "failed": sorted({f"{r['kernel']} {r['pass']} {r['size']}: {r['status']}" for r in rows if failed(r)}),
            "skipped": {r["kernel"]: r["status"] for r in rows if r["status"].startswith("skipped")}}


def largest_size_geomean(rows: list[dict]) -> float | None:
    """The geometric mean of ours / native over the kernels' largest sizes (both passes): one figure for the
    summary, where the table has the rest."""
    largest = {}
    for r in rows:
        if r["status"] == "ok":
            largest[r["kernel"]] = max(largest.get(r["kernel"], 0), r["size"])
    ratios = [r["ratio"] for r in rows if r["status"] == "ok" and r["size"] == largest[r["kernel"]]]
    return math.exp(sum(map(math.log, ratios)) / len(ratios)) if ratios else None


def label(row: dict) -> str:
    return f"{row['kernel']} {row['size']}{' fwd+bwd' if row['pass'] == 'forward_backward' else ''}"


def plot_ratios(ctx: RunContext, rows: list[dict]) -> None:
    """One horizontal bar a measured row, from 1 to ours / native on a log axis: left of the line ours is faster."""
    from matplotlib.patches import Patch

    by_device = {d: [r for r in rows if r["device"] == d and r["status"] == "ok"] for d in dict.fromkeys(
        r["device"] for r in rows)}
    height = max(len(measured) for measured in by_device.values())
    fig = ctx.figure(figsize=(6.4 * len(by_device), 1.2 + 0.24 * height))
    axes = fig.subplots(1, len(by_device), squeeze=False, gridspec_kw={"wspace": 0.5})[0]
    colours = {"forward": "tab:blue", "forward_backward": "tab:orange"}
    for ax, (device, measured) in zip(axes, by_device.items()):
        ys = range(len(measured))[::-1]
        ratios = [r["ratio"] for r in measured]
        ax.barh(ys, [x - 1 for x in ratios], left=1, color=[colours[r["pass"]] for r in measured])
        for y, x in zip(ys, ratios):
            ax.text(x, y, f" {x:.2f}x ", va="center", ha="left" if x >= 1 else "right", fontsize=7)
        ax.axvline(1.0, color="black", linewidth=1)
        ax.set_xscale("log")
        ax.set_yticks(list(ys), [label(r) for r in measured], fontsize=7)
        low, high = min(ratios + [1.0]), max(ratios + [1.0])
        ax.set_xlim(low / 4, high * 4)  # room for the labels at the bars' ends
        threads = measured[0]["threads"] if measured else "?"
        ax.set(xlabel="ours / native time (log; left of 1: ours is faster)", title=f"{device}, threads: {threads}")
        ax.legend(handles=[Patch(color=colour, label=name.replace("_", " + ")) for name, colour in colours.items()],
                  fontsize=7, loc="lower right")
        ax.grid(axis="x", alpha=0.3, which="both")
    ctx.save_figure(fig, "ratios")


TABLE_COLUMNS = (("device", "{}"), ("kernel", "{}"), ("pass", "{}"), ("size", "{}"), ("ours_ms", "{:.3g}"),
                 ("native_ms", "{:.3g}"), ("ratio", "{:.2f}"), ("unit", "{}"), ("ours_throughput", "{:.3g}"),
                 ("native_throughput", "{:.3g}"), ("max_rel_error", "{:.1e}"), ("status", "{:.60}"))


def plot_table(ctx: RunContext, rows: list[dict]) -> None:
    """The table as a picture, for the report, which shows PNGs (benchmark.csv has every column): one block of
    monospaced text, where a matplotlib table of as many cells takes seconds to lay out."""
    if not ctx.figures:
        return
    cells = [[key for key, _ in TABLE_COLUMNS]]
    cells += [[fmt.format(r[key]) if key in r else "" for key, fmt in TABLE_COLUMNS] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(TABLE_COLUMNS))]
    lines = ["  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip() for line in cells]
    lines.insert(1, "-" * len(lines[0]))
    lines += ["", *(f"{r['kernel']} on {r['device']}: {r['status']}" for r in rows if "pass" not in r)]
    fig = ctx.figure(figsize=(0.062 * max(map(len, lines)), 0.3 + 0.145 * len(lines)))
    fig.text(0.01, 0.99, "\n".join(lines), family="monospace", fontsize=8, va="top")
    ctx.save_figure(fig, "table")
