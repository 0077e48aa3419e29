"""m1-deep-3 experiment: gradient checkpointing in a deep MLP (blocks of Linear, Tanh and Dropout). For each number of
segments, the bytes the forward pass saves for backward (counted by saved-tensor hooks), the loss and gradients
against the same network without checkpointing (same dropout masks), and the time of a forward and backward pass;
torch.utils.checkpoint.checkpoint_sequential beside yours."""
from __future__ import annotations

import torch
from torch import nn
from torch.utils import checkpoint as torch_checkpoint

from torchkata.pipeline.bench import median_seconds
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"depth": 8, "width": 32, "batch": 16, "dropout": 0.1, "segments": [1, 2, 4, 8], "chosen": 4,
              "bench_seconds": 0.02},
    "default": {"depth": 32, "width": 256, "batch": 128, "dropout": 0.1, "segments": [1, 2, 4, 8, 16, 32],
                "chosen": 8, "bench_seconds": 0.3},
    "full": {"depth": 128, "width": 1024, "batch": 512, "dropout": 0.1, "segments": [1, 2, 4, 8, 16, 32, 64, 128],
             "chosen": 8, "bench_seconds": 1.0},
}
MB = 2**20


def deep_blocks(depth: int, width: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(*[nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Dropout(dropout))
                           for _ in range(depth)])


def run(ctx: RunContext) -> None:
    p, impl = ctx.params, ctx.impl
    blocks = deep_blocks(p["depth"], p["width"], p["dropout"])
    x = torch.randn(p["batch"], p["width"], generator=ctx.generator).requires_grad_()
    target = torch.randn(p["batch"], p["width"], generator=ctx.generator)
    dropout_seed = int(torch.randint(2**31, (), generator=ctx.generator))
    params = [x, *blocks.parameters()]

    def step(forward):
        """Loss, gradients (input's and every parameter's) and saved bytes of one forward and backward pass, with
        the same dropout masks each time."""
        torch.manual_seed(dropout_seed)
        for t in params:
            t.grad = None
        out, saved = impl.saved_activation_bytes(lambda: forward(x), blocks.parameters())
        loss = nn.functional.mse_loss(out, target)
        loss.backward()  # not autograd.grad: torch's reentrant checkpoint refuses it
        return loss.detach(), [t.grad.clone() for t in params], saved

    def error(result, reference):
        return max(float((result[0] - reference[0]).abs()),
                   *(float((a - b).abs().max()) for a, b in zip(result[1], reference[1])))

    plain = step(blocks)
    plain_s = median_seconds(lambda: step(blocks), p["bench_seconds"])
    table, seconds = {}, {}
    for segments in p["segments"]:
        ours = step(lambda x: impl.checkpoint_sequential(blocks, segments, x))
        # during backward one segment at a time is recomputed, saving its activations: the peak adds the largest's
        _, recomputed = impl.saved_activation_bytes(lambda: blocks[:-(-p["depth"] // segments)](x), blocks.parameters())
        table[str(segments)] = {"saved_bytes": ours[2], "peak_bytes": ours[2] + recomputed,
                                "peak_fraction": (ours[2] + recomputed) / plain[2], "max_abs_error": error(ours, plain)}
        seconds[str(segments)] = median_seconds(lambda: step(lambda x: impl.checkpoint_sequential(blocks, segments, x)),
                                                p["bench_seconds"]) / plain_s
    chosen = p["chosen"]
    theirs = step(lambda x: torch_checkpoint.checkpoint_sequential(blocks, chosen, x, use_reentrant=False))
    theirs_s = median_seconds(lambda: step(lambda x: torch_checkpoint.checkpoint_sequential(
        blocks, chosen, x, use_reentrant=False)), p["bench_seconds"])
    ours = table[str(chosen)]

    ctx.metrics.update(
        grad_max_abs_error=max(t["max_abs_error"] for t in table.values()), plain_saved_bytes=plain[2],
        chosen_segments=chosen, saved_bytes=ours["saved_bytes"], peak_bytes=ours["peak_bytes"],
        memory_reduction=1 - ours["peak_fraction"],
        torch_checkpoint={"saved_bytes": theirs[2], "memory_reduction": 1 - theirs[2] / plain[2],
                          "max_abs_error": error(theirs, plain)},
        by_segments=table, depth=p["depth"], width=p["width"], batch=p["batch"], loss=float(plain[0]))
    ctx.bench.update(threads=torch.get_num_threads(), plain_s=plain_s, time_ratio=seconds[str(chosen)],
                     time_ratio_by_segments=seconds, torch_time_ratio=theirs_s / plain_s)

    fig = ctx.figure(figsize=(10, 3.6), layout="constrained")
    ax_mem, ax_time = fig.subplots(1, 2)
    counts = [int(s) for s in table]
    ax_mem.plot(counts, [t["saved_bytes"] / MB for t in table.values()], "o-",
                label="yours: saved in the forward pass (segment inputs)")
    ax_mem.plot(counts, [t["peak_bytes"] / MB for t in table.values()], "o-",
                label="yours: peak, with the largest segment recomputed")
    ax_mem.axhline(plain[2] / MB, color="k", ls="--", label="no checkpointing")
    ax_mem.plot([chosen], [theirs[2] / MB], "s", color="C3",
                label=f"torch.utils.checkpoint, saved in the forward pass ({chosen} segments)")
    ax_mem.set(xscale="log", yscale="log", xlabel="segments", ylabel="MB saved for backward",
               title=f"m1-deep-3: activation memory, {p['depth']} blocks of {p['width']}, batch {p['batch']}")
    ax_mem.set_xticks(counts, [str(c) for c in counts])
    ax_mem.legend(fontsize=7)
    ax_time.plot(counts, list(seconds.values()), "o-", label="your checkpoint_sequential")
    ax_time.plot([chosen], [theirs_s / plain_s], "s", color="C3", label="torch.utils.checkpoint")
    ax_time.axhline(1.0, color="k", ls="--", label="no checkpointing")
    ax_time.set(xscale="log", xlabel="segments", ylabel="forward + backward time / without",
                title="the price: one more forward pass")
    ax_time.set_xticks(counts, [str(c) for c in counts])
    ax_time.legend(fontsize=7)
    ctx.save_figure(fig, "checkpointing")
