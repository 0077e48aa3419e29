"""m2-deep-1: automatic mixed precision by hand. Write torch.autocast's casting rules as a TorchFunctionMode:
matrix products in low precision, losses in float32, everything else as it comes.

Grade it:  torchkata check m2-deep-1
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.overrides import TorchFunctionMode

LOW_DTYPES = (torch.bfloat16, torch.float16)

# Fill both sets (torch/csrc/autograd/autocast_mode.cpp lists torch.autocast's own): the graders run linear, conv1d,
# conv2d, matmul (torch.matmul and @), mm, bmm, addmm, baddbmm, scaled_dot_product_attention, relu, max_pool2d,
# cross_entropy, nll_loss, mse_loss, binary_cross_entropy_with_logits, prod and cdist, and compare with torch.autocast.
LOWER = frozenset()
FLOAT32 = frozenset()


def low_precision_dtype(device: torch.device | str) -> torch.dtype:
    """The low dtype AMP uses on `device`: torch.float16 on CUDA, torch.bfloat16 elsewhere."""
    raise NotImplementedError("m2-deep-1: write low_precision_dtype")


def rule(func) -> str:
    """'lower' for a function in LOWER, 'float32' for one in FLOAT32, 'keep' for any other."""
    raise NotImplementedError("m2-deep-1: write rule")


def cast_inputs(args, kwargs: dict, source: tuple[torch.dtype, ...], target: torch.dtype):
    """(args, kwargs) with every tensor whose dtype is in `source` cast to `target`, inside nested lists, tuples
    and dicts too; anything else (other dtypes, numbers) unchanged."""
    raise NotImplementedError("m2-deep-1: write cast_inputs")


class autocast(TorchFunctionMode):
    """`with autocast(dtype):` runs LOWER ops on inputs cast to `dtype` (float32 and low-precision inputs; float64
    and integers untouched) and FLOAT32 ops on their low-precision inputs cast to float32, each result bitwise what
    torch.autocast("cpu", dtype=dtype) gives. dtype defaults to bfloat16; anything but bfloat16/float16 is a
    ValueError that names it. enabled=False: no casting at all. Attributes: dtype, enabled."""

    def __init__(self, dtype: torch.dtype = torch.bfloat16, enabled: bool = True):
        raise NotImplementedError("m2-deep-1: write autocast")

    def __torch_function__(self, func, types, args=(), kwargs=None):
        raise NotImplementedError("m2-deep-1: write autocast.__torch_function__")
