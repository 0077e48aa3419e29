"""a47: bilinear sampling (F.grid_sample's bilinear mode with zero padding). Write the kernels in
csrc/grid_sample/grid_sample.cpp (the checks; the CPU twin of the forward and of the backward, with a deterministic
scatter into grad_input; the dispatch of CUDA tensors to your launchers; the registrations `torchkata::grid_sample`,
`grid_sample_backward` and `grid_sample_has_cuda`) and csrc/grid_sample/grid_sample_cuda.cu (one thread a grid point;
the backward scatters with atomicAdd), then wrap them here as an autograd Function.

Load the built operators with `torchkata.pipeline.extensions.load("grid_sample", library_path)` (torch.ops.torchkata).
Grade it:  torchkata check a47
"""
from __future__ import annotations

from torch import Tensor


def ops(library_path: str | None = None):
    """The operators the library registered (torch.ops.torchkata), loaded once."""
    raise NotImplementedError("a47: load the grid_sample library")


def grid_sample(input: Tensor, grid: Tensor, align_corners: bool = False, library_path: str | None = None) -> Tensor:
    """F.grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=align_corners) for input
    [N, C, H, W] and grid [N, Ho, Wo, 2] (x then y, in [-1, 1]; points outside read zeros) of one floating dtype
    (float32 or float64) and one device: [N, C, Ho, Wo], differentiable in input and grid.

    Raises TypeError when input or grid is not a Tensor or align_corners not a bool; the C++ side raises RuntimeError
    naming the op and the operand for the rest (shapes, dtypes, devices).
    """
    raise NotImplementedError("a47: wrap the grid_sample kernels in an autograd Function")
