"""a47: bilinear sampling, F.grid_sample(mode="bilinear", padding_mode="zeros") by hand-written kernels
(csrc/grid_sample: the CPU twin and the CUDA kernels, one grid point a thread), registered as the operators
`torch.ops.torchkata.grid_sample` and `grid_sample_backward` and wrapped as an autograd Function.

The backward is one op that returns the gradients of the input and of the grid; the grid's is a gather over
channels, the input's a scatter (atomicAdd on the GPU; on the CPU each thread owns whole (n, c) planes, so the sum
is deterministic).
"""
from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor

from torchkata.pipeline import extensions


@lru_cache(maxsize=None)
def ops(library_path: str | None = None):
    return extensions.load("grid_sample", library_path)


class GridSample(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input: Tensor, grid: Tensor, align_corners: bool, lib) -> Tensor:
        ctx.save_for_backward(input, grid)
        ctx.align_corners = align_corners
        ctx.lib = lib
        return lib.grid_sample(input, grid, align_corners)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        input, grid = ctx.saved_tensors
        grad_input, grad_grid = ctx.lib.grid_sample_backward(grad_output, input, grid, ctx.align_corners)
        return grad_input, grad_grid, None, None  # nothing for align_corners and the library handle


def grid_sample(input: Tensor, grid: Tensor, align_corners: bool = False, library_path: str | None = None) -> Tensor:
    """F.grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=align_corners) for input
    [N, C, H, W] and grid [N, Ho, Wo, 2] (x then y, in [-1, 1]; points outside read zeros) of one floating dtype
    (float32 or float64) and one device: [N, C, Ho, Wo], differentiable in input and grid.

    Raises TypeError when input or grid is not a Tensor or align_corners not a bool; the C++ side raises RuntimeError
    naming the op and the operand for the rest (shapes, dtypes, devices).
    """
    for name, t in (("input", input), ("grid", grid)):
        if not isinstance(t, Tensor):
            raise TypeError(f"grid_sample: {name} must be a Tensor, got {type(t).__name__}")
    if not isinstance(align_corners, bool):
        raise TypeError(f"grid_sample: align_corners must be a bool, got {type(align_corners).__name__}")
    return GridSample.apply(input, grid, align_corners, ops(library_path))
