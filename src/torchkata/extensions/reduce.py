"""What the reduction exercises share (a45: blocks folded by warp shuffles, m3-deep-2: by a shared-memory tree):
the operators of csrc/reduce, and the error a float sum of a tree of their shape may make.

Both sum the elements in the CUDA kernels' order (csrc/reduce/reduce_grid.h: blocks of 256 threads, at most 1024
blocks, a grid-stride loop, the block's fold, a second one-block pass over the partial sums), on the CPU too.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import Tensor

from torchkata.pipeline import extensions

BLOCK, MAX_BLOCKS = 256, 1024
# additions on any element's path besides its lane's grid-stride loop: the first pass's fold (at most 10 levels:
# 5 in the warp, 5 over the warp sums), the second pass's loop over at most 1024 / 256 partial sums, and its fold
FOLD_LEVELS = 10 + 4 + 10


@lru_cache(maxsize=None)
def ops(library_path: str | None = None):
    return extensions.load("reduce", library_path)


def error_bound(x: Tensor) -> float:
    """A bound on |float sum - exact sum| for a tree of the kernels' shape: every element passes through at most
    d = ceil(n / lanes) + FOLD_LEVELS roundings, so the error is at most gamma_d * sum |x| with gamma_d = d u / (1 -
    d u) and u the unit roundoff of x's dtype (Higham, Accuracy and Stability of Numerical Algorithms, 4.2). A loop
    that adds the n elements one after another has d = n, and on a long sum its error shows it."""
    n = x.numel()
    lanes = BLOCK * min(max(math.ceil(n / BLOCK), 1), MAX_BLOCKS)
    depth = math.ceil(n / lanes) + FOLD_LEVELS
    unit_roundoff = torch.finfo(x.dtype).eps / 2
    gamma = depth * unit_roundoff / (1 - depth * unit_roundoff)
    return gamma * float(x.detach().double().abs().sum())
