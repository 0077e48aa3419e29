"""m4-deep-2: the matrix product C = AB as a Triton kernel, blocked over output tiles, with a K loop of `tl.dot`,
masks at the edges and grouped tile ordering for L2 reuse.

Where torch has a CUDA device the kernel is compiled by Triton for it and autotuned over GPU_CONFIGS. Without one it
runs under Triton's interpreter (each program in turn, in Python with numpy) with CPU_CONFIG: TRITON_INTERPRET=1 is
set below, before triton is imported. triton.knobs reads the variable when @triton.jit wraps a function, so it takes
effect in this process for the kernels below even where triton was imported before (torch._dynamo imports it, and
the tests and the pipeline's warm process import torch._dynamo first). triton.language's own jit helpers, though
(tl.cdiv, tl.zeros), were wrapped at that first import, compiled-mode, and the interpreter refuses to call them: the
kernels use only builtins (`//`, tl.full, tl.minimum). On a GPU machine, `TRITON_INTERPRET=1` in the environment
forces the interpreter there too (for debugging with prints).
"""
from __future__ import annotations

import os

import torch
from torch import Tensor

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"

import triton  # noqa: E402  (after the interpreter flag)
import triton.language as tl  # noqa: E402
from triton.runtime.interpreter import InterpretedFunction  # noqa: E402

DTYPES = (torch.float16, torch.float32)
# The interpreter pays per operation, not per element: large blocks mean fewer programs and K steps, hence faster
CPU_CONFIG = {"BLOCK_M": 32, "BLOCK_N": 32, "BLOCK_K": 32, "GROUP_M": 4}
# The GPU's autotuning candidates (Triton's tutorial set for Ampere and Hopper): (BLOCK_M, BLOCK_N, BLOCK_K,
# num_stages, num_warps). Big tiles feed the tensor cores; each stage is one more tile pair of A and B in flight in
# shared memory, so stages x (BLOCK_M + BLOCK_N) x BLOCK_K x 2 bytes (float16) must fit its 227 KiB (H100)
GPU_TILES = [(128, 256, 64, 3, 8), (128, 128, 64, 4, 4), (128, 64, 32, 4, 4), (64, 128, 32, 4, 4)]
GPU_GROUP_M = 8
GPU_CONFIGS = [triton.Config({"BLOCK_M": m, "BLOCK_N": n, "BLOCK_K": k, "GROUP_M": GPU_GROUP_M},
                             num_stages=stages, num_warps=warps) for m, n, k, stages, warps in GPU_TILES]


@triton.jit
def tile_of(pid, num_pid_m, num_pid_n, GROUP_M: tl.constexpr):
    """The (row, column) of the output tile that program `pid` computes. Programs go down a group of GROUP_M tile
    rows column after column, so the programs that run at one time reuse a few row panels of A and column panels
    of B from L2, where row after row (GROUP_M = 1) each one loads a new column panel of B."""
    per_group = GROUP_M * num_pid_n
    first_row = (pid // per_group) * GROUP_M
    rows = tl.minimum(num_pid_m - first_row, GROUP_M)  # the last group may have fewer rows
    within = pid % per_group
    return first_row + within % rows, within // rows


@triton.jit
def matmul_kernel(a_ptr, b_ptr, c_ptr, M, N, K, stride_am, stride_ak, stride_bk, stride_bn, stride_cm, stride_cn,
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr):
    pid_m, pid_n = tile_of(tl.program_id(0), (M + BLOCK_M - 1) // BLOCK_M, (N + BLOCK_N - 1) // BLOCK_N, GROUP_M)
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    depth = tl.arange(0, BLOCK_K)
    # operands are read through their strides: a transposed or sliced view needs no copy
    a_ptrs = a_ptr + rows[:, None] * stride_am + depth[None, :] * stride_ak
    b_ptrs = b_ptr + depth[:, None] * stride_bk + cols[None, :] * stride_bn
    acc = tl.full((BLOCK_M, BLOCK_N), 0.0, dtype=tl.float32)  # float16 products summed in float32, as cuBLAS does
    for k0 in range(0, K, BLOCK_K):
        # zeros past the edges of A and B add nothing to the sum
        a = tl.load(a_ptrs, mask=(rows[:, None] < M) & (depth[None, :] < K - k0), other=0.0)
        b = tl.load(b_ptrs, mask=(depth[:, None] < K - k0) & (cols[None, :] < N), other=0.0)
        # ieee: float32 products as torch computes them (Triton's default is TF32); float16 is unaffected
        acc = tl.dot(a, b, acc, input_precision="ieee")
        a_ptrs += BLOCK_K * stride_ak
        b_ptrs += BLOCK_K * stride_bk
    c_ptrs = c_ptr + rows[:, None] * stride_cm + cols[None, :] * stride_cn
    tl.store(c_ptrs, acc.to(c_ptr.dtype.element_ty), mask=(rows[:, None] < M) & (cols[None, :] < N))


autotuned_matmul_kernel = triton.autotune(configs=GPU_CONFIGS, key=["M", "N", "K"])(matmul_kernel)


@triton.jit
def tile_order_kernel(out_ptr, num_pid_m, num_pid_n, GROUP_M: tl.constexpr):
    pid = tl.program_id(0)
    pid_m, pid_n = tile_of(pid, num_pid_m, num_pid_n, GROUP_M)
    tl.store(out_ptr + 2 * pid, pid_m)
    tl.store(out_ptr + 2 * pid + 1, pid_n)


def interpreted() -> bool:
    """Whether the kernels run under Triton's interpreter (no CUDA device, or TRITON_INTERPRET=1) rather than
    compiled for the GPU."""
    return isinstance(matmul_kernel, InterpretedFunction)


def device_type() -> str:
    return "cpu" if interpreted() else "cuda"


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """The product of a 2-D a [M, K] and b [K, N] of one dtype, float16 or float32 (float16 summed in float32), by the
    Triton kernel: on CUDA tensors where there is a GPU, on CPU tensors under the interpreter elsewhere. Any strides
    are read as they are; the result is a new contiguous [M, N] tensor of the operands' dtype."""
    check_operands(a, b)
    (m, k), n = a.shape, b.shape[1]
    c = torch.empty((m, n), dtype=a.dtype, device=a.device)
    if c.numel() == 0:
        return c
    strides = (*a.stride(), *b.stride(), *c.stride())
    if interpreted():
        grid = (triton.cdiv(m, CPU_CONFIG["BLOCK_M"]) * triton.cdiv(n, CPU_CONFIG["BLOCK_N"]),)
        matmul_kernel[grid](a, b, c, m, n, k, *strides, **CPU_CONFIG)
    else:
        def grid(meta):
            return (triton.cdiv(m, meta["BLOCK_M"]) * triton.cdiv(n, meta["BLOCK_N"]),)

        autotuned_matmul_kernel[grid](a, b, c, m, n, k, *strides)
    return c


def check_operands(a: Tensor, b: Tensor) -> None:
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, Tensor):
            raise TypeError(f"matmul: {name} must be a Tensor, got {type(t).__name__}")
    if a.dim() != 2 or b.dim() != 2:
        raise ValueError(f"matmul: a and b must be 2-D, got shapes {list(a.shape)} and {list(b.shape)}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul: a's columns must match b's rows, got shapes {list(a.shape)} and {list(b.shape)}")
    if a.dtype != b.dtype:
        raise TypeError(f"matmul: a and b must have one dtype, got {a.dtype} and {b.dtype}")
    if a.dtype not in DTYPES:
        raise TypeError(f"matmul: a and b must be float16 or float32, got {a.dtype}")
    where = device_type()
    for name, t in (("a", a), ("b", b)):
        if t.device.type != where:
            how = "interpreted" if where == "cpu" else "compiled"
            raise ValueError(f"matmul: the kernel runs on {where} here ({how} by Triton), but {name} is on {t.device}")
    if a.device != b.device:
        raise ValueError(f"matmul: a and b must be on one device, got {a.device} and {b.device}")


def tile_order(num_pid_m: int, num_pid_n: int, group_m: int) -> Tensor:
    """[programs, 2] int32: the (tile row, tile column) that each program of a num_pid_m x num_pid_n grid of output
    tiles computes with groups of `group_m` rows, as the kernel's own `tile_of` maps it (group_m = 1: row-major)."""
    if min(num_pid_m, num_pid_n, group_m) < 1:
        raise ValueError(f"tile_order: the grid and group_m must be at least 1, got {num_pid_m} x {num_pid_n} tiles "
                         f"and group_m {group_m}")
    out = torch.empty(num_pid_m * num_pid_n, 2, dtype=torch.int32, device=device_type())
    tile_order_kernel[(len(out),)](out, num_pid_m, num_pid_n, GROUP_M=group_m)
    return out
