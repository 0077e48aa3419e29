"""m3-deep-1: a fused LayerNorm + Dropout kernel. Write the kernels in csrc/layernorm_dropout/layernorm_dropout.cpp
(the checks, the CPU twin: whole rows per task of at::parallel_for, the row's sums over 16 lanes folded pairwise,
mean and variance, normalise, affine and drop in one pass; the backward; the operator registrations
`torchkata::layernorm_dropout_forward`, `layernorm_dropout_backward` and `layernorm_dropout_has_cuda`),
csrc/layernorm_dropout/layernorm_dropout_cuda.cu (one block per row, warp-shuffle sums) and the mask's hash in
csrc/layernorm_dropout/dropout_hash.h, then draw the same mask and wrap the operators here.

Load the built operators with `torchkata.pipeline.extensions.load("layernorm_dropout", library_path)`.
Grade it:  torchkata check m3-deep-1
"""
from __future__ import annotations

from torch import Tensor


def ops(library_path: str | None = None):
    """The operators the library registered (torch.ops.torchkata), loaded once."""
    raise NotImplementedError("m3-deep-1: load the layernorm_dropout library")


def keep_mask(rows: int, width: int, p: float, seed: int) -> Tensor:
    """The kernel's mask, bool [rows, width]: (r, c) is kept iff mix32(mix32(seed ^ mix32(r)) ^ c) >= floor(p * 2^32),
    mix32 being lowbias32 on 32-bit words (see the README)."""
    raise NotImplementedError("m3-deep-1: draw the mask with the kernel's hash")


def layernorm_dropout(x: Tensor, weight: Tensor, bias: Tensor, p: float = 0.1, seed: int = 0, eps: float = 1e-5,
                      library_path: str | None = None) -> Tensor:
    """F.dropout(F.layer_norm(x, (N,), weight, bias, eps), p) over x's last dimension N, in one kernel, with the mask
    keep_mask(x.numel() // N, N, p, seed) viewed as x's shape, differentiable in x, weight and bias (an autograd
    Function whose backward is your backward operator). x, weight [N] and bias [N] are float32 or float64 on one
    device; 0 <= p <= 1 (p = 1 gives zeros) and 0 <= seed < 2**32. The result is a new contiguous tensor.

    Raises TypeError when x, weight or bias is not a Tensor; the C++ side raises RuntimeError naming the op, the
    operand and the problem for anything else.
    """
    raise NotImplementedError("m3-deep-1: wrap the fused kernel in an autograd Function")
