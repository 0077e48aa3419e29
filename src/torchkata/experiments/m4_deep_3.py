"""m4-deep-3 experiment: how the CUDA caching allocator's fragmentation changes with the batch size, on a CPU, by
replaying the allocation trace of a real training step through a simulator of the allocator
(torchkata.profiling.caching_allocator).

The trace is recorded, not constructed: a TorchDispatchMode sees every storage the step's ops create, forward,
backward and optimizer, and a finalizer on each storage sees it die. The step is an MLP on Fashion-MNIST-shaped
batches (784 -> hidden -> hidden -> 10, SGD with momentum, three steps so that the cache is reused); the inputs
are random numbers of that shape, since only the sizes and the order of the allocations reach the allocator. Each
batch size is replayed through a fresh allocator, and one more trace runs every batch size in a shuffled order
in one process (a loader with ragged batches). Where there is a GPU, the same step runs on it and the simulator's
peaks are set beside torch.cuda.memory_stats."""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"batch_sizes": [8, 256], "hidden": 64, "steps": 2},
    "default": {"batch_sizes": [1, 16, 32, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048],
                "hidden": 512, "steps": 3},
    "full": {"batch_sizes": [2**k for k in range(13)] + [3 * 2**k for k in range(12)], "hidden": 1024, "steps": 3},
}
MIB = 2**20


def training_trace(impl, batch_sizes: list[int], hidden: int, steps: int, generator: torch.Generator,
                   device: str = "cpu") -> list[tuple]:
    """The allocations and frees on `device` of building the MLP and its optimizer, then `steps` SGD steps at each
    batch size in turn."""
    with impl.AllocationRecorder(device) as recorder:
        model = nn.Sequential(nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                              nn.Linear(hidden, 10)).to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        for batch in batch_sizes:
            for _ in range(steps):
                x = torch.randn(batch, 784, generator=generator).to(device)
                y = torch.randint(0, 10, (batch,), generator=generator).to(device)
                loss = F.cross_entropy(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    return recorder.trace


def run(ctx: RunContext) -> None:
    p, g, impl = ctx.params, ctx.generator, ctx.impl
    by_batch, events, replay_s = {}, 0, 0.0
    for batch in p["batch_sizes"]:
        trace = training_trace(impl, [batch], p["hidden"], p["steps"], g)
        start = time.perf_counter()
        by_batch[batch] = impl.replay(trace).stats()
        replay_s += time.perf_counter() - start
        events += len(trace)
        ctx.log("fragmentation", by_batch[batch]["fragmentation"], batch)
    shuffled = [p["batch_sizes"][i] for i in torch.randperm(len(p["batch_sizes"]), generator=g).tolist()]
    mixed = impl.replay(training_trace(impl, shuffled, p["hidden"], 1, g)).stats()
    largest = p["batch_sizes"][-1]
    ctx.metrics.update(
        by_batch={str(b): s for b, s in by_batch.items()}, mixed_batches=mixed | {"order": shuffled},
        max_fragmentation=max(s["fragmentation"] for s in by_batch.values()),
        largest_batch_fragmentation=by_batch[largest]["fragmentation"],
        # the shuffled sizes in one process against the largest alone: what ragged batches cost in reserved memory
        mixed_over_largest_reserved=mixed["peak_reserved_bytes"] / by_batch[largest]["peak_reserved_bytes"],
        trace_events=events)
    ctx.bench["replay_events_per_s"] = events / replay_s
    if torch.cuda.is_available():
        ctx.half("cuda")
        ctx.bench["cuda_check"] = {str(b): compare_with_cuda(impl, b, p["hidden"], p["steps"], g) for b in
                                   p["batch_sizes"]}
    else:
        ctx.half("cuda", skipped="no CUDA device: the simulator's peaks are not set beside torch.cuda.memory_stats")
    plot(ctx, by_batch, mixed)


def compare_with_cuda(impl, batch: int, hidden: int, steps: int, generator: torch.Generator) -> dict:
    """The simulator's peaks for the step's trace recorded on the GPU, beside what the real caching allocator
    reported for that same run (torch.cuda.memory_stats, less what was held before it: cuBLAS's workspace, allocated
    by the first matmul, is made here first and never freed)."""
    torch.ones(8, 8, device="cuda") @ torch.ones(8, 8, device="cuda")
    torch.cuda.synchronize()
    torch.cuda.empty_cache()  # segments with nothing allocated go back: the simulator starts with none
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_stats()
    trace = training_trace(impl, [batch], hidden, steps, generator, device="cuda")
    torch.cuda.synchronize()
    after = torch.cuda.memory_stats()
    simulated = impl.replay(trace).stats()
    real = {key: after[f"{stat}.all.peak"] - before[f"{stat}.all.current"] for key, stat in
            (("peak_reserved_bytes", "reserved_bytes"), ("peak_allocated_bytes", "allocated_bytes"),
             ("peak_requested_bytes", "requested_bytes"), ("segments", "segment"))}
    return {"simulated": {k: simulated[k] for k in real}, "torch_cuda": real,
            "device": torch.cuda.get_device_name()}


def plot(ctx: RunContext, by_batch: dict[int, dict], mixed: dict) -> None:
    batches = list(by_batch)
    fig = ctx.figure(figsize=(10, 3.8))
    left, right = fig.subplots(1, 2)
    left.plot(batches, [by_batch[b]["fragmentation"] for b in batches], "o-", label="one batch size per process")
    left.axhline(mixed["fragmentation"], color="C3", ls="--", label="all sizes, shuffled, one process")
    left.set(xscale="log", ylim=(0, 1), xlabel="batch size", ylabel="1 - peak allocated / peak reserved",
             title=f"caching-allocator fragmentation, MLP {ctx.params['hidden']} hidden")
    right.plot(batches, [by_batch[b]["peak_reserved_bytes"] / MIB for b in batches], "o-", label="reserved (peak)")
    right.plot(batches, [by_batch[b]["peak_allocated_bytes"] / MIB for b in batches], "s--", label="allocated (peak)")
    right.plot(batches, [by_batch[b]["peak_requested_bytes"] / MIB for b in batches], "x:", label="requested (peak)")
    right.set(xscale="log", ylim=(0, None), xlabel="batch size", ylabel="MiB",
              title=f"simulated peaks over {ctx.params['steps']} SGD steps")
    for ax in (left, right):
        ax.minorticks_off()
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ctx.save_figure(fig, "fragmentation")
