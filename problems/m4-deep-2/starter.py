"""m4-deep-2: C = A @ B as a Triton kernel. Write the kernel (programs over output tiles in grouped order, a K loop
of tl.dot, masks at the edges), its autotuning configs for the GPU, and the launcher; then `tile_order`, which runs
your tile mapping in a kernel of its own.

Without a CUDA device the kernels run under Triton's interpreter: keep the lines below that set TRITON_INTERPRET=1
before triton is imported. triton.language's own jit helpers (tl.cdiv, tl.zeros) keep the mode of triton's first
import, which torch._dynamo may already have done in compiled mode: use `//`, tl.full and tl.minimum instead.
Grade it:  torchkata check m4-deep-2
"""
from __future__ import annotations

import os

import torch
from torch import Tensor

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"

import triton  # noqa: E402  (after the interpreter flag)
import triton.language as tl  # noqa: E402,F401

DTYPES = (torch.float16, torch.float32)
# the interpreter's blocks: it pays per operation, so fewer, larger blocks are faster there
CPU_CONFIG = {"BLOCK_M": 32, "BLOCK_N": 32, "BLOCK_K": 32, "GROUP_M": 4}
# TODO: triton.Config candidates for the GPU (BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M; num_stages, num_warps)
GPU_CONFIGS: list = []


def interpreted() -> bool:
    """Whether the kernels run under Triton's interpreter rather than compiled for the GPU."""
    raise NotImplementedError("m4-deep-2: say whether the kernels run under the interpreter")


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """a @ b for a 2-D a [M, K] and b [K, N] of one dtype, float16 or float32 (float16 summed in float32), by the
    Triton kernel: on CUDA tensors where there is a GPU, on CPU tensors under the interpreter elsewhere. Any strides
    are read as they are; the result is a new contiguous [M, N] tensor of the operands' dtype.

    Raises TypeError for an operand that is not a Tensor or of the wrong dtype, ValueError for shapes that cannot be
    multiplied or an operand on the wrong device; each message names the op, the operand and what is wrong.
    """
    raise NotImplementedError("m4-deep-2: write the Triton matmul kernel and its launcher")


def tile_order(num_pid_m: int, num_pid_n: int, group_m: int) -> Tensor:
    """[programs, 2] int32 on the kernel's device: the (tile row, tile column) that each program of a
    num_pid_m x num_pid_n grid of output tiles computes with groups of `group_m` rows, as your kernel maps it
    (group_m = 1: row-major). ValueError when a size is below 1."""
    raise NotImplementedError("m4-deep-2: run the kernel's tile mapping in a kernel of its own")
