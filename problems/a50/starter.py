"""a50: the Python side of the torchkata-ops package: wrap three kernels the project already has as autograd
Functions. The operators (registered by csrc/relu, csrc/grid_sample and csrc/knn, as torch.ops.torchkata.<name>):
    relu_forward(x) -> y                          relu_backward(grad_y, y) -> grad_x
    grid_sample(input, grid, align_corners) -> out
    grid_sample_backward(grad_output, input, grid, align_corners) -> (grad_input, grad_grid)
    knn(query, reference, k) -> (squared distances, int64 indices)      (no backward: write it)
    relu_has_cuda() -> bool

packages/torchkata_ops/setup.py installs this file as torchkata_ops/__init__.py beside the op library it compiles
(lib/*.so); the lines below load that library. Grade it:  torchkata check a50
The experiment builds the wheel with your module in it, installs it in a fresh virtual environment and runs the
package's tests there:  snakemake --cores 2 results/a50/starter-default/runs/seed-0/metrics.json
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

LIBRARIES = sorted((Path(__file__).parent / "lib").glob("*.so"))
for _library in LIBRARIES:
    torch.ops.load_library(str(_library))  # its TORCH_LIBRARY registrations: torch.ops.torchkata.<op>


def operator(name: str):
    """The raw operator torch.ops.torchkata.<name> (no autograd); a RuntimeError starting
    "torchkata_ops: operator torchkata::<name> is not registered" when no loaded library registered it."""
    raise NotImplementedError("a50: look the operator up in torch.ops.torchkata")


def has_cuda() -> bool:
    """Whether the op library was built with its CUDA kernels."""
    raise NotImplementedError("a50: ask the library (relu_has_cuda)")


def relu(x: Tensor) -> Tensor:
    """max(x, 0) with torch.relu's conventions to the bit (-0.0 and NaN pass through, no gradient at 0), for float32,
    float64, float16 and bfloat16 on the CPU and, in a CUDA build, CUDA tensors; differentiable in x once (a second
    derivative raises). TypeError "relu: x must be a Tensor, got <type>" for anything else."""
    raise NotImplementedError("a50: an autograd Function over relu_forward and relu_backward")


def grid_sample(input: Tensor, grid: Tensor, align_corners: bool = False) -> Tensor:
    """F.grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=align_corners) for input
    [N, C, H, W] and grid [N, Ho, Wo, 2] of one float dtype and device: [N, C, Ho, Wo], differentiable once in both.
    TypeError "grid_sample: <input|grid> must be a Tensor, got <type>" / "grid_sample: align_corners must be a bool,
    got <type>"."""
    raise NotImplementedError("a50: an autograd Function over grid_sample and grid_sample_backward")


def knn(query: Tensor, reference: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """(squared distances [N, k], int64 indices [N, k]) of the k points of reference [M, D] nearest to each point of
    query [N, D], rows sorted ascending, ties to the lower index; the distances differentiable once in query and
    reference. TypeError "knn: <query|reference> must be a Tensor, got <type>" / "knn: k must be an int, got <type>"
    (a bool is not an int here)."""
    raise NotImplementedError("a50: an autograd Function over knn, with a backward you write in PyTorch")
