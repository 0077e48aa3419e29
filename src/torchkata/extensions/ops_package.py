"""a50: the torchkata-ops package. Three of the project's hand-written kernels wrapped as autograd Functions: ReLU
(a43), bilinear grid_sample (a47) and kNN (a46), whose kernel has no backward, so its distances get one written here
in PyTorch from the indices the forward returns.

This module is the package's whole Python side: packages/torchkata_ops/setup.py installs it as
`torchkata_ops/__init__.py`, beside the op library it compiles from csrc/ (or the project's builds of it: `lib/*.so`),
and it loads nothing from the torchkata project (the package's tests run in a virtual environment without it).
Importing it registers the operators of the libraries beside it; where none are (this file in the project's src/),
the process registers the same operators itself: the project's tests load its own builds of the same sources (torch
registers an operator once per process, so the two never meet in one).

Each backward is `once_differentiable`: a second derivative raises, where it would otherwise run the kernels on
tensors whose graph they cannot record.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

LIBRARIES = sorted((Path(__file__).parent / "lib").glob("*.so"))
for _library in LIBRARIES:
    torch.ops.load_library(str(_library))  # its TORCH_LIBRARY registrations: torch.ops.torchkata.<op>


def operator(name: str):
    """The raw operator torch.ops.torchkata.<name> (no autograd), or an error that says why it is missing."""
    try:
        return getattr(torch.ops.torchkata, name)
    except AttributeError:
        raise RuntimeError(f"torchkata_ops: operator torchkata::{name} is not registered: no op library was loaded "
                           f"(the package installs it in {Path(__file__).parent / 'lib'})") from None


def has_cuda() -> bool:
    """Whether the op library was built with its CUDA kernels (they run on CUDA tensors)."""
    return operator("relu_has_cuda")()


def _check_tensors(op: str, **tensors) -> None:
    for name, t in tensors.items():
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")


class ReLU(torch.autograd.Function):
    @staticmethod
    def forward(x: Tensor) -> Tensor:
        return operator("relu_forward")(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(output)  # the gradient flows where the output is > 0, as torch.relu's does

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return operator("relu_backward")(grad_y, y)


class GridSample(torch.autograd.Function):
    @staticmethod
    def forward(input: Tensor, grid: Tensor, align_corners: bool) -> Tensor:
        return operator("grid_sample")(input, grid, align_corners)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, grid, ctx.align_corners = inputs
        ctx.save_for_backward(input, grid)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: Tensor):
        input, grid = ctx.saved_tensors
        grad_input, grad_grid = operator("grid_sample_backward")(grad_output, input, grid, ctx.align_corners)
        return grad_input, grad_grid, None  # nothing for align_corners


class KNN(torch.autograd.Function):
    """distances[i, j] = sum_d (query[i, d] - reference[indices[i, j], d])^2. The kernel returns no backward; the
    chain rule through the chosen pairs gives it: 2 (q - r) for the query, -2 (q - r) for the reference point, summed
    over every (query, neighbour) pair that chose it. The indices, integers, are not differentiable."""

    @staticmethod
    def forward(query: Tensor, reference: Tensor, k: int):
        return operator("knn")(query, reference, k)

    @staticmethod
    def setup_context(ctx, inputs, output):
        query, reference, _ = inputs
        ctx.save_for_backward(query, reference, output[1])

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_distances: Tensor, _grad_indices):
        query, reference, indices = ctx.saved_tensors
        pulls = 2 * grad_distances[..., None] * (query[:, None, :] - reference[indices])  # [N, k, D]
        # index_add: a reference point chosen by several queries sums their pulls (an assignment keeps one)
        grad_reference = torch.zeros_like(reference).index_add_(0, indices.flatten(), pulls.flatten(0, 1), alpha=-1)
        return pulls.sum(1), grad_reference, None  # nothing for k


def relu(x: Tensor) -> Tensor:
    """max(x, 0) with torch.relu's conventions to the bit (-0.0 and NaN pass through, no gradient at 0), for float32,
    float64, float16 and bfloat16 on the CPU and, in a CUDA build, CUDA tensors; differentiable in x."""
    _check_tensors("relu", x=x)
    return ReLU.apply(x)


def grid_sample(input: Tensor, grid: Tensor, align_corners: bool = False) -> Tensor:
    """F.grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=align_corners) for input
    [N, C, H, W] and grid [N, Ho, Wo, 2] of one float dtype and device: [N, C, Ho, Wo], differentiable in both."""
    _check_tensors("grid_sample", input=input, grid=grid)
    if not isinstance(align_corners, bool):
        raise TypeError(f"grid_sample: align_corners must be a bool, got {type(align_corners).__name__}")
    return GridSample.apply(input, grid, align_corners)


def knn(query: Tensor, reference: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """(squared distances [N, k], int64 indices [N, k]) of the k points of reference [M, D] nearest to each point of
    query [N, D], rows sorted ascending, ties to the lower index; the distances differentiable in query and
    reference."""
    _check_tensors("knn", query=query, reference=reference)
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"knn: k must be an int, got {type(k).__name__}")
    return KNN.apply(query, reference, k)
