"""a45 experiment: the warp-shuffle sum (the CPU twin, and the CUDA kernel where there is a GPU) against torch.sum:
its error over seeded trials against the error bound of its tree, how that error grows with n next to torch.sum's
and a plain loop's, and its speed against torch.sum over sizes."""
from __future__ import annotations

from torchkata.extensions.reduce import SCALES, experiment  # noqa: F401 (SCALES: the runner reads it here)
from torchkata.pipeline.runner import RunContext


def run(ctx: RunContext) -> None:
    experiment(ctx, "warp_sum", "warp-shuffle tree", "sum of all elements")
