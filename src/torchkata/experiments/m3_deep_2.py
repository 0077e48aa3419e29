"""m3-deep-2 experiment: the shared-memory tree sum (the CPU twin, and the CUDA kernel where there is a GPU) against
torch.sum and against a45's warp-shuffle sum on the same launch shape: its error over seeded trials against the
error bound of its tree, how that error grows with n next to torch.sum's and a plain loop's, and its speed."""
from __future__ import annotations

from torchkata.extensions.reduce import SCALES, experiment  # noqa: F401 (SCALES: the runner reads it here)
from torchkata.pipeline.runner import RunContext


def run(ctx: RunContext) -> None:
    experiment(ctx, "shared_tree_sum", "shared-memory tree", "shared-memory tree sum", baseline="warp_sum")
