"""m3-core-2 experiment: how busy the compute engine is when chunks of data are copied in and computed on one stream
(serial) and on two streams with two slots (overlapped), against the analytical bounds, over the ratio of copy to
compute time.

On a CPU the streams are worker threads (torchkata.profiling.streams) and the compute is an MLP on each chunk. The
copy stands in for a host-to-device transfer: a memcpy into the slot, then the rest of the time the link would
take held on the copy stream (a sleep: on a GPU the DMA engine moves the bytes and costs no compute), set to a
ratio of the measured compute time. The schedules: serial, overlapped with two slots, overlapped with one slot
(every copy must wait for the compute before it: no overlap), and m3-core-1's Prefetcher (a producer thread)
feeding the compute. Every schedule's outputs are checked bitwise against the eager computation, and the
timelines for the two orderings the events enforce. Where there is a CUDA device the same pipeline runs with
torch.cuda streams, pinned chunks, non_blocking copies and torch.cuda.Event timings (its CUDA half)."""
from __future__ import annotations

import functools
import hashlib
import math
import statistics
import time

import torch

from torchkata.data.prefetch import Prefetcher
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"chunks": 4, "rows": 64, "width": 128, "hidden": 256, "ratios": [1.0], "cuda_rows": 1024},
    "default": {"chunks": 12, "rows": 256, "width": 512, "hidden": 1024, "ratios": [0.25, 0.5, 1.0, 2.0],
                "cuda_rows": 8192},
    "full": {"chunks": 32, "rows": 512, "width": 1024, "hidden": 2048, "ratios": [0.125, 0.25, 0.5, 1.0, 2.0, 4.0],
             "cuda_rows": 16384},
}
SCHEDULES = ("serial", "overlapped", "one slot", "prefetcher")


def run(ctx: RunContext) -> None:
    p, impl = ctx.params, ctx.impl
    g = ctx.generator
    weights = [torch.randn(p["width"], p["hidden"], generator=g) / p["width"] ** 0.5,
               torch.randn(p["hidden"], p["width"], generator=g) / p["hidden"] ** 0.5]
    chunks = [torch.randn(p["rows"], p["width"], generator=g) for _ in range(p["chunks"])]
    compute = functools.partial(mlp, weights)
    expected = [compute(chunk) for chunk in chunks]  # eager, no streams

    results, mismatched, raw, war = {}, 0, 0, 0
    with impl.Stream("copy") as copy_stream, impl.Stream("compute") as compute_stream:
        for stream in (copy_stream, compute_stream):  # a thread's first op pays for its setup (~0.1 s): not timed
            stream.launch(compute, chunks[0])
            stream.synchronize()
        # the compute per chunk where it runs, on the compute stream, to set the copies' times from
        _, timeline = run_schedule(impl, "serial", chunks, link_copy(0.0), compute, copy_stream, compute_stream)
        compute_ms = statistics.median(s.compute_end - s.compute_start for s in timeline)
        for ratio in p["ratios"]:
            copy = link_copy(ratio * compute_ms / 1000)
            results[ratio] = {}
            for schedule in SCHEDULES:
                outputs, timeline = run_schedule(impl, schedule, chunks, copy, compute, copy_stream,
                                                 compute_stream)
                mismatched += sum(not torch.equal(a, b) for a, b in zip(outputs, expected, strict=True))
                if schedule != "prefetcher":  # which copies into a slot of its own, and clones it
                    slots = 1 if schedule == "one slot" else 2
                    raw += sum(s.compute_start < s.copy_end for s in timeline)
                    war += sum(s.copy_start < earlier.compute_end for earlier, s in zip(timeline, timeline[slots:]))
                results[ratio][schedule] = (impl.utilization(timeline), timeline)

    ctx.metrics.update(
        mismatched_chunks=mismatched, chunks=p["chunks"], ratios=p["ratios"], schedules=list(SCHEDULES),
        # the two orders the events enforce, read from every schedule's timeline: compute after its copy (read
        # after write), a copy into a slot after the compute that last read it (write after read)
        read_after_write_violations=raw, write_after_read_violations=war,
        outputs_sha256=hashlib.sha256(b"".join(t.numpy().tobytes() for t in expected)).hexdigest(),
        stand_in="CPU streams (a worker thread each); a copy is a memcpy, then a sleep for the rest of the link's "
                 "time (no DMA engine); random chunks and weights")
    ctx.bench.update(compute_ms_calibrated=compute_ms, threads=torch.get_num_threads(), by_ratio={
        str(ratio): {schedule: stats for schedule, (stats, _) in by_schedule.items()}
        | {"bound": bounds(impl, by_schedule["serial"][0], p["chunks"])}
        for ratio, by_schedule in results.items()})
    middle = results[min(p["ratios"], key=lambda r: abs(r - 1.0))]
    ctx.bench["overlapped_over_serial"] = middle["overlapped"][0]["makespan_ms"] / middle["serial"][0]["makespan_ms"]
    ctx.bench["compute_utilization"] = {s: middle[s][0]["compute_utilization"] for s in SCHEDULES}

    if torch.cuda.is_available():
        ctx.half("cuda")
        ctx.bench["cuda"] = cuda_half(impl, weights, p, g)
    else:
        ctx.half("cuda", skipped="no CUDA device: no copy engine, pinned memory or torch.cuda streams here; the "
                                 "CPU streams (worker threads) stand in for them")
    plot_timelines(ctx, middle)
    plot_utilization(ctx, results)


def mlp(weights: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    w1, w2 = weights
    return torch.relu(x @ w1) @ w2


def link_copy(link_s: float):
    """A host-to-device copy's stand-in: the memcpy, then the rest of `link_s` held (the link's transfer time)."""
    def copy(slot: torch.Tensor, chunk: torch.Tensor) -> None:
        start = time.perf_counter()
        slot.copy_(chunk)
        time.sleep(max(0.0, link_s - (time.perf_counter() - start)))
    return copy


def run_schedule(impl, schedule: str, chunks, copy, compute, copy_stream, compute_stream):
    """The outputs and the timeline of one schedule."""
    if schedule == "prefetcher":
        return prefetched(impl, chunks, copy, compute)
    slots = [torch.empty_like(chunks[0]) for _ in range(1 if schedule == "one slot" else 2)]
    return impl.pipeline(chunks, copy, compute, slots, compute_stream if schedule == "serial" else copy_stream,
                         compute_stream)


def prefetched(impl, chunks, copy, compute):
    """m3-core-1's Prefetcher: its producer thread does the copies, the consumer (this thread) the compute."""
    copies, outputs, computes = [], [], []

    def copied():
        slot = torch.empty_like(chunks[0])
        slot.copy_(chunks[0])  # a thread's first op pays for its setup (~0.1 s): before the timeline starts
        for chunk in chunks:
            start = time.perf_counter()
            copy(slot, chunk)
            copies.append((start, time.perf_counter()))
            yield (slot,)  # the Prefetcher stages it before it asks for the next

    for (x,) in Prefetcher(copied(), depth=2):
        start = time.perf_counter()
        outputs.append(compute(x))
        computes.append((start, time.perf_counter()))
    origin = copies[0][0]
    return outputs, [impl.Span(*(1000 * (t - origin) for t in (*a, *b))) for a, b in zip(copies, computes)]


def bounds(impl, serial: dict, chunks: int) -> dict:
    """The least wall times and the compute utilizations they allow, from serial's measured copy and compute."""
    copy_ms, compute_ms = serial["copy_ms"], serial["compute_ms"]
    out = {}
    for name, overlapped in (("serial", False), ("overlapped", True)):
        makespan = impl.makespan_bound(copy_ms, compute_ms, chunks, overlapped)
        out[name] = {"makespan_ms": makespan, "compute_utilization": chunks * compute_ms / makespan}
    return out


def cuda_half(impl, weights, p: dict, g: torch.Generator) -> dict:
    """The same pipeline on the GPU: chunks in pinned memory copied with non_blocking=True, one CUDA stream for both
    (serial) against a copy stream and a compute stream, timed with torch.cuda.Event."""
    device_weights = [w.cuda() for w in weights]
    compute = functools.partial(mlp, device_weights)
    chunks = [torch.randn(p["cuda_rows"], p["width"], generator=g).pin_memory() for _ in range(p["chunks"])]
    slots = [torch.empty(chunks[0].shape, device="cuda") for _ in range(2)]
    event = functools.partial(torch.cuda.Event, enable_timing=True)

    def copy(slot, chunk):
        slot.copy_(chunk, non_blocking=True)

    copy_stream, compute_stream = impl.CudaStream(), impl.CudaStream()
    torch.cuda.synchronize()
    impl.pipeline(chunks[:2], copy, compute, slots, copy_stream, compute_stream, event)  # warm-up: cuBLAS, kernels
    serial_out, serial = impl.pipeline(chunks, copy, compute, slots, compute_stream, compute_stream, event)
    overlapped_out, overlapped = impl.pipeline(chunks, copy, compute, slots, copy_stream, compute_stream, event)
    expected = [compute(chunk.cuda()) for chunk in chunks]
    torch.cuda.synchronize()
    stats = {"serial": impl.utilization(serial), "overlapped": impl.utilization(overlapped)}
    return {"device": torch.cuda.get_device_name(), "chunk_mb": chunks[0].nbytes / 2**20, **stats,
            "bound": bounds(impl, stats["serial"], p["chunks"]),
            "overlapped_over_serial": stats["overlapped"]["makespan_ms"] / stats["serial"]["makespan_ms"],
            "mismatched_chunks": sum(not torch.equal(a, b) for out in (serial_out, overlapped_out)
                                     for a, b in zip(out, expected, strict=True))}


def plot_timelines(ctx: RunContext, by_schedule: dict) -> None:
    """A Gantt chart of each schedule at the ratio nearest 1: the copy engine's and the compute engine's lanes."""
    fig = ctx.figure(figsize=(10, 1.2 + 0.9 * len(by_schedule)))
    ax = fig.subplots()
    labels = []
    for row, (schedule, (stats, timeline)) in enumerate(by_schedule.items()):
        for lane, (engine, colour) in enumerate((("copy", "C1"), ("compute", "C0"))):
            bars = [(getattr(s, f"{engine}_start"), getattr(s, f"{engine}_end") - getattr(s, f"{engine}_start"))
                    for s in timeline]
            ax.broken_barh(bars, (2 * row + lane - 0.4, 0.8), facecolors=colour, edgecolor="white")
            labels.append(f"{schedule}: {engine}" + (f" ({stats['compute_utilization']:.0%} busy)" if lane else ""))
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set(xlabel="ms since the pipeline started", title="copy and compute of each chunk: one stream against two")
    ax.grid(axis="x", alpha=0.3)
    ctx.save_figure(fig, "timeline")


def plot_utilization(ctx: RunContext, results: dict) -> None:
    """The compute engine's utilization over the copy/compute ratio each run measured, and the bounds."""
    fig = ctx.figure(figsize=(7, 4))
    ax = fig.subplots()
    for i, schedule in enumerate(SCHEDULES):
        runs = sorted((r["copy_ms"] / r["compute_ms"], r["compute_utilization"]) for r in
                      (by_schedule[schedule][0] for by_schedule in results.values()))
        ax.plot(*zip(*runs), "o-", color=f"C{i}", label=f"{schedule} (measured)")
    chunks = ctx.params["chunks"]
    ratios = [min(results) / 2 * 1.05**i for i in range(int(math.log(8 * max(results) / min(results), 1.05)))]
    for overlapped, style in ((False, ":"), (True, "--")):
        ax.plot(ratios, [chunks / ctx.impl.makespan_bound(r, 1.0, chunks, overlapped) for r in ratios], style,
                color="grey", label=f"bound, {'overlapped' if overlapped else 'serial'}")
    ax.set(xscale="log", ylim=(0, 1.05), xlabel="copy time / compute time per chunk (measured)",
           ylabel="compute busy / wall time", title=f"compute utilization, {chunks} chunks")
    ax.minorticks_off()
    ticks = [2.0**k for k in range(-3, 4)]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ctx.save_figure(fig, "utilization")
