"""m3-deep-1: LayerNorm over the last dimension fused with Dropout in one kernel (csrc/layernorm_dropout: the CPU
twin, whole rows per task, and the CUDA kernel, one block per row with warp-shuffle sums), registered as
`torch.ops.torchkata.layernorm_dropout_forward` / `layernorm_dropout_backward` and wrapped as an autograd Function.

The mask is not a tensor of random numbers: element (row, col) is kept iff a counter-based hash of (seed, row, col)
is at least floor(p * 2^32) (csrc/layernorm_dropout/dropout_hash.h). Each GPU thread draws its own elements' bits
with no generator state to share, and `keep_mask` below draws the same bits in PyTorch, so the fused op can be
compared with F.layer_norm(x) * mask / (1 - p) element for element. The forward returns the mask too (one byte an
element) for the backward; redrawing it there from (seed, p) would save that memory for a few hash operations.
"""
from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor

from torchkata.pipeline import extensions

MASK32 = 0xFFFFFFFF


@lru_cache(maxsize=None)
def ops(library_path: str | None = None):
    return extensions.load("layernorm_dropout", library_path)


def _times(x: Tensor, constant: int) -> Tensor:
    """x * constant mod 2^32 for int64 x in [0, 2^32), in two halves of the constant so no product passes 2^63."""
    low, high = constant & 0xFFFF, constant >> 16
    return (x * low + ((x * high) & 0xFFFF) * 65536) & MASK32


def mix32(x: Tensor) -> Tensor:
    """lowbias32 (Chris Wellons' hash) on int64 tensors holding 32-bit words, as dropout_hash.h's mix32."""
    x = x ^ (x >> 16)
    x = _times(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _times(x, 0x846CA68B)
    return x ^ (x >> 16)


def keep_mask(rows: int, width: int, p: float, seed: int) -> Tensor:
    """The kernel's mask, bool [rows, width]: (r, c) is kept iff mix32(mix32(seed ^ mix32(r)) ^ c) >= p * 2^32."""
    row_keys = mix32(seed ^ mix32(torch.arange(rows, dtype=torch.int64) & MASK32))
    bits = mix32(row_keys[:, None] ^ torch.arange(width, dtype=torch.int64))
    return bits >= int(p * 2**32)


class LayerNormDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, p: float, seed: int, eps: float, lib) -> Tensor:
        y, mean, rstd, mask = lib.layernorm_dropout_forward(x, weight, bias, p, seed, eps)
        ctx.save_for_backward(x, weight, mean, rstd, mask)
        ctx.p, ctx.lib = p, lib
        return y

    @staticmethod
    def backward(ctx, grad_y: Tensor):
        x, weight, mean, rstd, mask = ctx.saved_tensors
        grad_x, grad_weight, grad_bias = ctx.lib.layernorm_dropout_backward(grad_y, x, weight, mean, rstd, mask, ctx.p)
        return grad_x, grad_weight, grad_bias, None, None, None, None  # nothing for p, seed, eps and the library


def layernorm_dropout(x: Tensor, weight: Tensor, bias: Tensor, p: float = 0.1, seed: int = 0, eps: float = 1e-5,
                      library_path: str | None = None) -> Tensor:
    """F.dropout(F.layer_norm(x, (N,), weight, bias, eps), p) over x's last dimension N, in one kernel, with the
    mask keep_mask(x.numel() // N, N, p, seed) (rows of x flattened over its leading dimensions), differentiable in
    x, weight and bias. x, weight [N] and bias [N] are float32 or float64 on one device; 0 <= p <= 1 and
    0 <= seed < 2**32."""
    for name, t in (("x", x), ("weight", weight), ("bias", bias)):
        if not isinstance(t, Tensor):
            raise TypeError(f"layernorm_dropout: {name} must be a Tensor, got {type(t).__name__}")
    return LayerNormDropout.apply(x, weight, bias, p, seed, eps, ops(library_path))
