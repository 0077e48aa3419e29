"""Forward and backward of a hand-written op, each timed against PyTorch's own in one process (the ratios of the
issue's speed bar: the forward within 1.5x of the native op, the backward within 2x of autograd's)."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from torchkata.pipeline.bench import compare


def forward_backward(ours: Callable[..., Tensor], native: Callable[..., Tensor], args: tuple,
                     min_run_time: float = 0.2) -> dict:
    """{"forward": compare(...), "backward": compare(...)} for ours(*args) against native(*args).

    The backward is timed alone: each graph is built once and torch.autograd.grad runs on it again and again
    (retain_graph), into the arguments that require grad, with an upstream gradient of ones."""
    forward = compare(lambda: ours(*args), lambda: native(*args), min_run_time)
    wrt = [a for a in args if isinstance(a, Tensor) and a.requires_grad]
    if not wrt:
        raise ValueError("forward_backward: no argument requires grad, so there is no backward to time")
    with torch.enable_grad():
        out_ours, out_native = ours(*args), native(*args)
    upstream = torch.ones_like(out_ours)
    backward = compare(lambda: torch.autograd.grad(out_ours, wrt, upstream, retain_graph=True),
                       lambda: torch.autograd.grad(out_native, wrt, upstream, retain_graph=True), min_run_time)
    return {"forward": forward, "backward": backward}


def plot_forward_backward(fig, xs: list, results: list[dict], xlabel: str, title: str) -> None:
    """Two panels, forward and backward: median time of ours and of PyTorch's against `xs` (one forward_backward
    result per x)."""
    for ax, phase in zip(fig.subplots(1, 2), ("forward", "backward")):
        for who, key, style in (("yours", "impl_s", "o-"), ("PyTorch", "native_s", "x--")):
            ax.plot(xs, [r[phase][key] * 1e3 for r in results], style, label=who)
        ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel="median ms",
               title=f"{title} {phase} ({torch.get_num_threads()} threads)")
        ax.legend()
