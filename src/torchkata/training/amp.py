"""Automatic mixed precision by hand: torch.autocast's casting rules as a TorchFunctionMode.

Inside `autocast(dtype)`, every torch function call is looked up in two lists before it runs:
- LOWER: the matrix products (linear, convolutions, matmul and its kin) take their float32 inputs cast to the
  low dtype (bfloat16 on CPU, float16 on CUDA): that is where the speed is, and they sum in float32 inside anyway;
- FLOAT32: losses and reductions whose range or accuracy bfloat16/float16 would spoil (cross-entropy, MSE, prod,
  cdist, ...) take their low-precision inputs cast back to float32;
- anything else runs on whatever it is given (ReLU on bfloat16 stays bfloat16; bfloat16 + float32 promotes).
Only float32 and low-precision tensors are cast (a float16 input of a LOWER op under bfloat16 too): float64
and integer tensors pass through, as torch.autocast leaves them. The casts are ordinary differentiable ops, so the parameters stay float32 ("master weights") and
receive float32 gradients.

    with autocast(torch.bfloat16):
        loss = F.cross_entropy(model(x), y)   # linear layers in bfloat16, the loss in float32
    loss.backward()

The lists hold the ops this curriculum's models use; torch.autocast's own lists are longer (see
torch/csrc/autograd/autocast_mode.cpp). Unlike torch.autocast, no cast weight is cached between calls.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_map

LOW_DTYPES = (torch.bfloat16, torch.float16)

LOWER = frozenset({
    F.linear, F.bilinear, F.conv1d, F.conv2d, F.conv3d, F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d,
    F.prelu, F.scaled_dot_product_attention, torch.matmul, Tensor.matmul, Tensor.__matmul__, torch.mm, Tensor.mm,
    torch.bmm, Tensor.bmm, torch.addmm, Tensor.addmm, torch.baddbmm, Tensor.baddbmm, torch.addbmm,
})
FLOAT32 = frozenset({
    F.cross_entropy, F.nll_loss, F.mse_loss, F.l1_loss, F.smooth_l1_loss, F.huber_loss, F.kl_div,
    F.binary_cross_entropy, F.binary_cross_entropy_with_logits, F.soft_margin_loss, F.multilabel_margin_loss,
    torch.prod, Tensor.prod, torch.cdist, torch.trace, torch.cumprod, torch.dist, torch.cholesky,
})


def low_precision_dtype(device: torch.device | str) -> torch.dtype:
    """The low dtype AMP uses on a device: float16 on CUDA (tensor cores, with loss scaling), bfloat16 elsewhere."""
    return torch.float16 if torch.device(device).type == "cuda" else torch.bfloat16


def rule(func) -> str:
    """'lower', 'float32' or 'keep': what autocast does to the floating inputs of `func`."""
    if func in LOWER:
        return "lower"
    if func in FLOAT32:
        return "float32"
    return "keep"


def cast_inputs(args, kwargs: dict, source: tuple[torch.dtype, ...], target: torch.dtype):
    """(args, kwargs) with every tensor whose dtype is in `source` cast to `target`, nested containers included."""
    def cast(value):
        return value.to(target) if isinstance(value, Tensor) and value.dtype in source else value
    return tree_map(cast, args), tree_map(cast, kwargs)


class autocast(TorchFunctionMode):
    """Run the matrix products of the block in `dtype` and the losses in float32 (see the module's docstring).
    enabled=False makes it a no-op, as torch.autocast(enabled=False)."""

    def __init__(self, dtype: torch.dtype = torch.bfloat16, enabled: bool = True):
        if dtype not in LOW_DTYPES:
            raise ValueError(f"autocast dtype must be torch.bfloat16 or torch.float16, got {dtype}")
        super().__init__()
        self.dtype, self.enabled = dtype, enabled

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.enabled and func in LOWER:
            args, kwargs = cast_inputs(args, kwargs, (torch.float32, *LOW_DTYPES), self.dtype)
        elif self.enabled and func in FLOAT32:
            args, kwargs = cast_inputs(args, kwargs, LOW_DTYPES, torch.float32)
        return func(*args, **kwargs)
