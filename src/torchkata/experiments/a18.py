"""a18 experiment: the peak memory of training steps of a deep MLP on scikit-learn's digits, measured by the exercise's
PeakMemory, as the savings are switched on one by one (zero_grad(set_to_none), in-place ReLU, gradient checkpointing)
and over the number of checkpointed segments; the memory-minimal model trained beside the plain one in the shared
loop (the same losses and parameters), and the time a step costs with and without checkpointing."""
from __future__ import annotations

import time

import torch

from torchkata.data import digits
from torchkata.experiments.a16 import with_grad
from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext
from torchkata.training.loop import fit

SCALES = {
    "smoke": {"test_size": 64, "train_size": 128, "width": 32, "depth": 4, "segments": 2, "sweep": [0, 2],
              "memory_batch": 64, "memory_steps": 2, "epochs": 1, "batch_size": 64, "lr": 1e-3,
              "bench_seconds": 0.02},
    # batch 512 x width 128: one activation (256 KiB) is 4x a block's weights, as in the activation-bound trainings
    # that checkpointing is for; about sqrt(8) segments balance the segment inputs against one segment's activations:
    # 4 of 2 blocks (checkpoint_sequential cuts depth // segments blocks a segment, the rest in its last one: 3 would
    # be 2 + 2 + 4). A plain ReLU MLP much deeper than 8 blocks hardly trains on digits.
    "default": {"test_size": 297, "train_size": None, "width": 128, "depth": 8, "segments": 4,
                "sweep": [0, 1, 2, 3, 4, 8], "memory_batch": 512, "memory_steps": 2, "epochs": 8, "batch_size": 128,
                "lr": 2e-3, "bench_seconds": 0.3},
    "full": {"test_size": 297, "train_size": None, "width": 256, "depth": 64, "segments": 8,
             "sweep": [0, 1, 2, 4, 8, 16, 32, 64], "memory_batch": 2048, "memory_steps": 2, "epochs": 20,
             "batch_size": 64, "lr": 1e-3, "bench_seconds": 1.0},
}
MIB = 2 ** 20


def run(ctx: RunContext) -> None:
    p, impl = ctx.params, ctx.impl
    (x_train, y_train), (x_test, y_test) = digits.split(ctx.input("digits"), p["test_size"], ctx.generator,
                                                        p["train_size"])
    model_seed = int(torch.randint(2**62, (), generator=ctx.generator))
    rows = p["memory_batch"]
    batches = [(x_train[i * rows:(i + 1) * rows], y_train[i * rows:(i + 1) * rows]) for i in range(p["memory_steps"])]

    def model(**options):
        torch.manual_seed(model_seed)  # every variant starts from the same weights
        return impl.MemoryMinimalMLP(x_train.shape[1], p["width"], p["depth"], 10, **options)

    def measure(set_to_none=True, **options) -> tuple[int, list[float]]:
        net = model(**options)
        optimizer = torch.optim.Adam(net.parameters(), lr=p["lr"])  # its state, 2x the weights, is counted too
        with impl.PeakMemory() as memory:
            losses = impl.train_steps(net, optimizer, batches, set_to_none=set_to_none)
        return memory.peak_bytes, losses

    minimal = {"inplace": True, "segments": p["segments"]}
    steps = {"plain": measure(set_to_none=False), "set_to_none": measure(), "inplace_relu": measure(inplace=True),
             "checkpointing": measure(**minimal)}  # each with the savings above it
    labels = {"plain": "plain", "set_to_none": "+ zero_grad(set_to_none)", "inplace_relu": "+ in-place ReLU",
              "checkpointing": f"+ checkpointing ({p['segments']} segments)"}
    sweep = {s: measure(inplace=True, segments=s)[0] for s in p["sweep"]}
    peaks = {name: peak for name, (peak, _) in steps.items()}
    plain_losses = steps["plain"][1]

    # the memory-minimal model trained beside the plain one in the shared loop (which zeroes with set_to_none)
    histories, nets = {}, {}
    for name, options in (("plain", {}), ("memory-minimal", minimal)):
        nets[name] = model(**options)
        histories[name] = fit(nets[name], torch.optim.Adam(nets[name].parameters(), lr=p["lr"]),
                              (x_train, y_train), (x_test, y_test), p["epochs"], p["batch_size"],
                              torch.Generator().manual_seed(model_seed), log=ctx.log, prefix=f"{name}/")
    keys = ("train_loss", "test_loss", "test_accuracy")
    activation = rows * p["width"] * 4
    ctx.metrics.update(
        peak_memory_ratio=peaks["checkpointing"] / peaks["plain"],
        peak_bytes=peaks, peak_bytes_by_segments={str(s): b for s, b in sweep.items()},
        activation_bytes=activation, parameter_bytes=sum(t.numel() * 4 for t in nets["plain"].parameters()),
        step_loss_max_abs_diff=max(abs(a - b) for _, losses in steps.values() for a, b in zip(losses, plain_losses)),
        history_max_abs_diff=max(abs(a[k] - b[k]) for a, b in zip(*histories.values()) for k in keys),
        param_max_abs_diff=max(float((a - b).abs().max())
                               for a, b in zip(nets["plain"].parameters(), nets["memory-minimal"].parameters())),
        test_accuracy=histories["memory-minimal"][-1]["test_accuracy"], epochs=p["epochs"],
        train_rows=len(x_train), test_rows=len(x_test))

    # time: a step with and without checkpointing, and over the sweep (one more forward per checkpointed segment)
    def stepper(**options):
        net = model(**options)
        optimizer = torch.optim.Adam(net.parameters(), lr=p["lr"])
        return with_grad(lambda: impl.train_steps(net, optimizer, batches[:1]))
    ctx.bench["step"] = compare(stepper(**minimal), stepper(), p["bench_seconds"])
    sweep_seconds = {}
    for s in p["sweep"]:
        run_step = stepper(inplace=True, segments=s)
        run_step()
        start = time.perf_counter()
        run_step()
        sweep_seconds[s] = time.perf_counter() - start
    ctx.bench.update(checkpointing_step_ratio=ctx.bench["step"]["ratio"],
                     step_s_by_segments={str(s): t for s, t in sweep_seconds.items()})

    # one bar chart: the savings switched on one by one, then the checkpointed segments swept (time beside each)
    bars = [(labels[name], peak, "C0") for name, peak in peaks.items()]
    bars += [(f"in-place + set_to_none, {s} segments ({sweep_seconds[s] / sweep_seconds[0]:.2f}x time)", sweep[s],
              "C1") for s in p["sweep"]]
    fig = ctx.figure(figsize=(7, 0.3 * len(bars) + 1.2))
    ax = fig.subplots()
    ax.barh(range(len(bars))[::-1], [b[1] / MIB for b in bars], color=[b[2] for b in bars],
            tick_label=[b[0] for b in bars])
    for i, (_, peak, _) in enumerate(bars):
        ax.text(peak / MIB, len(bars) - 1 - i, f" {peak / MIB:.2f}", va="center", fontsize=7)
    ax.tick_params(labelsize=7)
    ax.set(xlabel="peak tensor memory of 2 training steps (MiB)",
           title=f"a18: batch {rows}, {p['depth']} blocks of width {p['width']} (one activation "
                 f"{activation / MIB:.2f} MiB)")
    ctx.save_figure(fig, "peak_memory")
