"""m4-deep-1 experiment: the latency of small-batch inference, eager against captured graphs, over batch sizes.

The model is a stack of pre-norm residual MLP blocks (LayerNorm, Linear, GELU, Linear, plus the input), the shape
of a transformer's feed-forward half: many small ops, so at small batches the cost per op (Python, module calls,
the dispatcher) outweighs the arithmetic. On a CPU three forms answer the same requests, timed in turns in one
process: eager (the module called in inference mode), the recorded graph (GraphedInference on RecordedGraph:
the recorded torch calls replayed without the Python around them) and TorchScript (torch.jit.trace then
torch.jit.freeze: torch's own captured graph on a CPU, run by its C++ interpreter with no Python at all). Each
request's latency is kept, for its median and 99th percentile. The outputs are compared with eager's: the
recorded graph makes the same calls, so bitwise at the captured sizes; a padded batch within a tolerance.
Where there is a CUDA device, the same model runs eager and through CUDA graphs (its CUDA half)."""
from __future__ import annotations

import copy
import time
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"width": 64, "depth": 2, "batch_sizes": [1, 8], "requests": 20, "seconds_per_batch": 0.3},
    "default": {"width": 64, "depth": 8, "batch_sizes": [1, 4, 16, 64, 256], "requests": 300,
                "seconds_per_batch": 1.0},
    "full": {"width": 128, "depth": 12, "batch_sizes": [1, 2, 4, 8, 16, 32, 64, 128, 256, 512], "requests": 2000,
             "seconds_per_batch": 30.0},
}
# untimed, per form and batch size: TorchScript's profiling executor specialises the graph on its first calls
WARMUP_REQUESTS = 3


class Block(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.norm, self.up, self.down = nn.LayerNorm(width), nn.Linear(width, 2 * width), nn.Linear(2 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(F.gelu(self.up(self.norm(x))))


def residual_mlp(width: int, depth: int, generator: torch.Generator) -> nn.Module:
    model = nn.Sequential(*[Block(width) for _ in range(depth)], nn.LayerNorm(width), nn.Linear(width, 10))
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.02 + (param.dim() == 1) * 0.01)
    return model.eval()


def run(ctx: RunContext) -> None:
    p, impl, g = ctx.params, ctx.impl, ctx.generator
    model = residual_mlp(p["width"], p["depth"], g)
    example = torch.zeros(1, p["width"])
    start = time.perf_counter()
    with warnings.catch_warnings():  # TorchScript is deprecated in torch 2.13 (torch.compile is its successor)
        warnings.simplefilter("ignore")
        scripted = torch.jit.freeze(torch.jit.trace(model, example))
    script_s = time.perf_counter() - start

    forwards = count_forwards(model)
    start = time.perf_counter()
    graphed = impl.GraphedInference(model, example, p["batch_sizes"])
    capture_s = time.perf_counter() - start
    captured_forwards = forwards[0]

    modes = {"eager": model, "recorded graph": graphed, "torchscript": scripted}
    by_batch, mismatched, replayed_forwards, script_error = {}, 0, 0, 0.0
    for batch in p["batch_sizes"]:
        x = torch.randn(batch, p["width"], generator=g)
        with torch.inference_mode():
            before = forwards[0]
            out = graphed(x)
            replayed_forwards += forwards[0] - before
            expected = model(x)
            mismatched += not torch.equal(out, expected)
            script_error = max(script_error, (scripted(x) - expected).abs().max().item())
        by_batch[batch] = latencies(modes, x, p["requests"], p["seconds_per_batch"])
    padded = pad_check(model, graphed, p)

    ctx.metrics.update(
        graph_mismatched_batches=mismatched, batch_sizes=p["batch_sizes"],
        padded_batch=padded["batch"], padded_max_abs_diff=padded["max_abs_diff"],
        torchscript_max_abs_diff=script_error,
        recorded_calls=len(graphed.graphs[min(p["batch_sizes"])][2].calls),
        modules=sum(1 for _ in model.modules()),
        # the forward's Python runs at warm-up and capture (4 per batch size), never for a graphed request
        forwards_at_capture=captured_forwards, forwards_during_graphed_requests=replayed_forwards,
        stand_in="CPU: RecordedGraph (the recorded torch calls replayed) and TorchScript in place of a CUDA graph; "
                 "random weights and requests")
    smallest = min(p["batch_sizes"])
    ctx.bench.update(
        threads=torch.get_num_threads(), capture_s=capture_s, torchscript_s=script_s,
        by_batch={str(b): stats for b, stats in by_batch.items()},
        graph_over_eager_p50={str(b): s["recorded graph"]["p50_us"] / s["eager"]["p50_us"] for b, s in
                              by_batch.items()},
        torchscript_over_eager_p50={str(b): s["torchscript"]["p50_us"] / s["eager"]["p50_us"] for b, s in
                                    by_batch.items()},
        eager_us_per_call=by_batch[smallest]["eager"]["p50_us"] / ctx.metrics["recorded_calls"])

    if torch.cuda.is_available():
        ctx.half("cuda")
        ctx.bench["cuda"] = cuda_half(impl, model, p, g)
    else:
        ctx.half("cuda", skipped="no CUDA device: no torch.cuda.CUDAGraph to capture; the recorded graph (the same "
                                 "static-buffer wrapper on a CPU stand-in) and TorchScript ran instead")
    plot(ctx, by_batch)


def count_forwards(model: nn.Module) -> list[int]:
    """A counter of the model's forward calls, run by Python (a graph's replay does not run it)."""
    counter = [0]
    model.register_forward_pre_hook(lambda module, args: counter.__setitem__(0, counter[0] + 1))
    return counter


def latencies(modes: dict, x: torch.Tensor, requests: int, seconds: float) -> dict:
    """Each mode's latency per request in microseconds, median and 99th percentile, over `requests` requests or as
    many as fit in `seconds` (the warm-up included), at least one: the deadline, not the machine's load, bounds the
    cost (on a loaded machine one 2-thread request has taken a second, its OpenMP region waiting for a core). The
    modes take turns, so that a slow spell of a shared machine falls on all of them."""
    times = {name: [] for name in modes}
    deadline = time.perf_counter() + seconds
    with torch.inference_mode():
        for request in range(WARMUP_REQUESTS + requests):
            if request > WARMUP_REQUESTS and time.perf_counter() > deadline:
                break
            for name, fn in modes.items():
                start = time.perf_counter()
                fn(x)
                times[name].append(time.perf_counter() - start)
    return {name: {"p50_us": 1e6 * percentile(t[WARMUP_REQUESTS:], 0.5),
                   "p99_us": 1e6 * percentile(t[WARMUP_REQUESTS:], 0.99), "requests": len(t) - WARMUP_REQUESTS}
            for name, t in times.items()}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def pad_check(model: nn.Module, graphed, p: dict) -> dict:
    """A batch between two captured sizes, padded up to the next: its rows against eager's on the batch itself (a
    matmul of other row counts may block its sums otherwise: a tolerance, not bitwise)."""
    sizes = p["batch_sizes"]
    batch = next((b + 1 for b, bigger in zip(sizes, sizes[1:]) if bigger > b + 1), sizes[-1])
    x = torch.randn(batch, p["width"], generator=torch.Generator().manual_seed(batch))
    with torch.inference_mode():
        return {"batch": batch, "max_abs_diff": (graphed(x) - model(x)).abs().max().item()}


def cuda_half(impl, model: nn.Module, p: dict, g: torch.Generator) -> dict:
    """Eager against CUDA graphs on the GPU: latency per request to the result on the host's side of a
    synchronize (what a caller waits for), and the largest difference from eager."""
    model = copy.deepcopy(model).cuda()
    graphed = impl.GraphedInference(model, torch.zeros(1, p["width"], device="cuda"), p["batch_sizes"])

    def synced(fn):
        def call(x):
            out = fn(x)
            torch.cuda.synchronize()
            return out
        return call

    out = {"device": torch.cuda.get_device_name(), "by_batch": {}}
    for batch in p["batch_sizes"]:
        x = torch.randn(batch, p["width"], generator=g).cuda()
        with torch.inference_mode():
            diff = (graphed(x) - model(x)).abs().max().item()
        stats = latencies({"eager": synced(model), "cuda graph": synced(graphed)}, x, p["requests"],
                          p["seconds_per_batch"])
        out["by_batch"][str(batch)] = stats | {"max_abs_diff": diff, "graph_over_eager_p50":
                                               stats["cuda graph"]["p50_us"] / stats["eager"]["p50_us"]}
    return out


def plot(ctx: RunContext, by_batch: dict) -> None:
    """Latency per request over the batch size: the median, with a bar up to the 99th percentile; and each graph
    form's median over eager's."""
    batches = list(by_batch)
    modes = list(by_batch[batches[0]])
    fig = ctx.figure(figsize=(11, 4))
    left, right = fig.subplots(1, 2)
    for i, mode in enumerate(modes):
        p50 = [by_batch[b][mode]["p50_us"] for b in batches]
        p99 = [by_batch[b][mode]["p99_us"] for b in batches]
        shifted = [b * 1.08**i for b in batches]  # side by side, so that the bars do not hide each other
        left.errorbar(shifted, p50, yerr=[[0] * len(p50), [hi - lo for hi, lo in zip(p99, p50)]], fmt="o-",
                      color=f"C{i}", capsize=3, label=mode)
        if mode != "eager":
            right.plot(batches, [by_batch[b][mode]["p50_us"] / by_batch[b]["eager"]["p50_us"] for b in batches],
                       "o-", color=f"C{i}", label=f"{mode} / eager")
    left.set(xscale="log", yscale="log", xlabel="batch size", ylabel="µs per request",
             title="latency: median, bar to the 99th percentile")
    right.axhline(1.0, color="grey", lw=0.8)
    right.set(xscale="log", ylim=(0, None), xlabel="batch size", ylabel="median latency / eager's",
              title="what capturing saves")
    for ax in (left, right):
        ax.minorticks_off()
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ctx.save_figure(fig, "latency")
