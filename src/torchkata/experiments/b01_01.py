"""b01-01 experiment: matmul without torch.mm. Errors against torch.mm, and the memory and time of the naive
broadcast-and-sum version, the blocked version and torch.mm as the matrices grow.

The naive version needs n^3 elements at once; it runs only where that fits under `naive_cap_bytes`, and for larger
sizes the bytes it would need are recorded, computed and marked as not run. Peak memory is measured two ways:
the largest temporary, computed from the shapes, and the process's resident memory: the peak RSS (VmHWM, reset
through /proc/self/clear_refs) minus the RSS before the call, after glibc returned its free memory (malloc_trim),
so the difference is the memory the call touched. tracemalloc does not see torch's allocations.
"""
from __future__ import annotations

import ctypes
import gc
import time
from pathlib import Path

import torch

from torchkata.pipeline.bench import keep_freed_memory, median_seconds
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"cases": 6, "max_side": 48, "sizes": [32, 64, 128], "naive_cap_bytes": 1 << 22,
              "block_bytes": 1 << 18, "bench_seconds": 0.05},
    "default": {"cases": 24, "max_side": 200, "sizes": [128, 256, 512, 1024, 2048], "naive_cap_bytes": 5 << 30,
                "block_bytes": 1 << 24, "bench_seconds": 0.3},
    "full": {"cases": 96, "max_side": 600, "sizes": [128, 256, 512, 1024, 2048, 4096], "naive_cap_bytes": 1 << 34,
             "block_bytes": 1 << 24, "bench_seconds": 1.0},
}
MIB = 1 << 20


def rss_field(key: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    return next(int(line.split()[1]) * 1024 for line in text.splitlines() if line.startswith(key))


def peak_rss_and_seconds(fn) -> tuple[int | None, float]:
    """Resident bytes the call added at its peak (None without Linux's /proc), and its wall time."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        before = rss_field("VmRSS:")
    except OSError:
        before = None
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    return (None if before is None else rss_field("VmHWM:") - before), seconds


def run(ctx: RunContext) -> None:
    p, g, impl = ctx.params, ctx.generator, ctx.impl
    error = naive_error = 0.0
    for case in range(p["cases"]):
        n, k, m = (int(s) for s in torch.randint(1, p["max_side"] + 1, (3,), generator=g))
        a = torch.randn(n, k, generator=g, dtype=torch.float64)
        b = torch.randn(k, m, generator=g, dtype=torch.float64)
        if case % 2:
            b = torch.randn(m, k, generator=g, dtype=torch.float64).t()  # non-contiguous
        want = torch.mm(a, b)
        block = max(8, p["block_bytes"] >> (case % 8))  # budgets from below one row to the whole product
        error = max(error, float((impl.matmul(a, b, block_bytes=block) - want).abs().max()))
        naive_error = max(naive_error, float((impl.matmul_naive(a, b) - want).abs().max()))
        ctx.log("max_abs_error_so_far", error, case)
    ctx.metrics.update(max_abs_error=error, naive_max_abs_error=naive_error, cases=p["cases"])

    keep_freed_memory()  # the bench's allocator settings, for the times as for the ratios of other exercises
    warm = torch.randn(8, 8, generator=g)
    impl.matmul(warm, warm), impl.matmul_naive(warm, warm), torch.mm(warm, warm)  # the first call's setup, not timed
    sizes, rows = p["sizes"], []
    for n in sizes:
        a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
        need = n * n * n * a.element_size()  # the naive version's n x n x n products
        row = {"n": n, "naive_bytes": need, "output_bytes": n * n * a.element_size()}
        row["mm_peak_rss_bytes"], _ = peak_rss_and_seconds(lambda: torch.mm(a, b))
        row["mm_s"] = median_seconds(lambda: torch.mm(a, b), p["bench_seconds"])
        row["blocked_peak_rss_bytes"], row["blocked_s"] = peak_rss_and_seconds(
            lambda: impl.matmul(a, b, block_bytes=p["block_bytes"]))
        if need <= p["naive_cap_bytes"]:
            row["naive_peak_rss_bytes"], row["naive_s"] = peak_rss_and_seconds(lambda: impl.matmul_naive(a, b))
            row["naive"] = "run"
        else:
            row["naive"] = f"not run: needs {need / MIB:.0f} MiB, over the cap of {p['naive_cap_bytes'] / MIB:.0f} MiB"
        row["blocked_over_mm"] = row["blocked_s"] / row["mm_s"]
        rows.append(row)
    ctx.metrics["naive_bytes_by_size"] = {str(r["n"]): r["naive_bytes"] for r in rows}
    ctx.metrics["naive_run_by_size"] = {str(r["n"]): r["naive"] == "run" for r in rows}
    ctx.bench["sizes"] = rows
    ctx.bench["ratio"] = rows[-1]["blocked_over_mm"]  # blocked against torch.mm at the largest size
    ctx.bench["naive_cap_bytes"] = p["naive_cap_bytes"]
    ctx.bench["block_bytes"] = p["block_bytes"]  # the blocked version's bound on a temporary (the tests check it)
    ctx.bench["peak_memory_method"] = ("naive: its n^3 products computed from the shapes; all three: resident "
                                       "memory, VmHWM after clear_refs minus VmRSS before, after malloc_trim "
                                       "(/proc/self/status)")
    plot(ctx, rows, p["naive_cap_bytes"])


def plot(ctx: RunContext, rows: list[dict], cap: int) -> None:
    fig = ctx.figure(figsize=(10, 3.8))
    memory, seconds = fig.subplots(1, 2)
    sizes = [r["n"] for r in rows]
    ran = [r for r in rows if r["naive"] == "run"]
    memory.plot(sizes, [r["naive_bytes"] / MIB for r in rows], ":", color="tab:red",
                label="naive: n³ products (computed)")
    memory.plot([r["n"] for r in ran], [r["naive_peak_rss_bytes"] / MIB for r in ran], "o", color="tab:red",
                label="naive: peak RSS (run)")
    for r in rows:
        if r["naive"] != "run":
            memory.plot(r["n"], r["naive_bytes"] / MIB, "x", color="tab:red")
            memory.annotate(f"not run\n{r['naive_bytes'] / (1 << 30):g} GiB", (r["n"], r["naive_bytes"] / MIB),
                            textcoords="offset points", xytext=(-6, 4), ha="right", fontsize=7)
    memory.plot(sizes, [max(r["blocked_peak_rss_bytes"] or 0, 1) / MIB for r in rows], "s-", label="blocked: peak RSS")
    memory.plot(sizes, [max(r["mm_peak_rss_bytes"] or 0, 1) / MIB for r in rows], "^-", label="torch.mm: peak RSS")
    memory.plot(sizes, [r["output_bytes"] / MIB for r in rows], "--", color="grey", label="the output, n² floats")
    memory.axhline(cap / MIB, color="tab:red", alpha=0.3)
    memory.annotate("the naive version's cap", (sizes[0], cap / MIB), textcoords="offset points", xytext=(0, 3),
                    fontsize=7, color="tab:red")
    memory.set(xscale="log", yscale="log", xlabel="n (n×n float32 matrices)", ylabel="MiB",
               title="peak memory of one product")
    memory.legend(fontsize=7)
    seconds.plot([r["n"] for r in ran], [r["naive_s"] for r in ran], "o-", color="tab:red", label="naive")
    seconds.plot(sizes, [r["blocked_s"] for r in rows], "s-", label="blocked")
    seconds.plot(sizes, [r["mm_s"] for r in rows], "^-", label="torch.mm")
    seconds.set(xscale="log", yscale="log", xlabel="n (n×n float32 matrices)", ylabel="seconds",
                title=f"time of one product ({torch.get_num_threads()} threads)")
    seconds.legend(fontsize=7)
    for ax in (memory, seconds):
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.minorticks_off()
    ctx.save_figure(fig, "memory_and_time")
