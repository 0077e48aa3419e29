"""b01-04: elementwise binary ops without torch's built-in semantics (shared by m1-core-3).

What `a + b` does in torch is three things before any arithmetic: it decides the result's dtype (type
promotion), the result's shape (broadcasting), and allocates the result. Here all three are written by hand;
torch's arithmetic is used only as a kernel: each call gets two operands of the result's shape and dtype (the
stride-0 views of a03's `broadcast_tensors`) and writes into the tensor allocated here (`out=`), so it has
nothing left to broadcast, promote or allocate. That keeps the ops as fast as torch's own: the kernel walks
the stride-0 views exactly as it walks torch's own broadcast operands.
"""
from __future__ import annotations

from typing import Callable, Union

import torch
from torch import Tensor

from torchkata.tensors.broadcasting import broadcast_tensors

Operand = Union[Tensor, bool, int, float]
Kernel = Callable[..., Tensor]


def category(dtype: torch.dtype) -> int:
    """bool < integer < floating: promotion moves up this ladder, never down. (Complex numbers are left out.)"""
    if dtype == torch.bool:
        return 0
    return 2 if dtype.is_floating_point else 1


def scalar_dtype(value: bool | int | float) -> torch.dtype:
    """The dtype a Python number takes in an op: floats the default dtype (float32 unless it was changed)."""
    if isinstance(value, bool):
        return torch.bool
    if isinstance(value, int):
        return torch.int64
    if isinstance(value, float):
        return torch.get_default_dtype()
    raise TypeError(f"want a tensor, bool, int or float, got {type(value).__name__}")


def result_type(a: Operand, b: Operand) -> torch.dtype:
    """torch's type promotion for two operands, by hand.

    Operands of three priorities: tensors with dims, 0-d tensors, Python numbers. Each group's dtypes are
    promoted among themselves (torch.promote_types: int8 and uint8 give int16). A lower group then counts only
    if it is of a higher category: float32 tensor + float64 0-d tensor stays float32, int32 tensor + 2.5 becomes
    float32 (the default dtype), int32 tensor + 0-d float64 tensor becomes float64.
    """
    groups: list[list[torch.dtype]] = [[], [], []]
    for x in (a, b):
        if isinstance(x, Tensor):
            if x.dtype.is_complex:
                raise TypeError(f"complex dtypes are not covered, got {x.dtype}")
            groups[0 if x.dim() else 1].append(x.dtype)
        else:
            groups[2].append(scalar_dtype(x))
    result = None
    for dtypes in reversed(groups):  # Python numbers first, then 0-d tensors, then tensors with dims
        if not dtypes:
            continue
        higher = dtypes[0] if len(dtypes) == 1 else torch.promote_types(*dtypes)
        if result is not None and category(higher) < category(result):
            higher = torch.promote_types(higher, result)
        result = higher
    return result


def operand(x: Operand, dtype: torch.dtype, device: torch.device) -> Tensor:
    """`x` as a tensor of `dtype`, not copied if it is one already. A Python number goes through int64 or float64
    first, so that it wraps (uint8 + 1000) or rounds (float16 + 1e6 = inf) as in torch instead of raising."""
    if not isinstance(x, Tensor):
        x = torch.as_tensor(x, dtype=torch.float64 if isinstance(x, float) else None, device=device)
    return x.to(dtype)


def binary(kernel: Kernel, a: Operand, b: Operand, dtype: torch.dtype | None = None) -> Tensor:
    """kernel(a, b) with promotion, broadcasting and allocation done here; `dtype` overrides the promoted one."""
    dtype = dtype or result_type(a, b)
    device = next((x.device for x in (a, b) if isinstance(x, Tensor)), torch.device("cpu"))
    a, b = broadcast_tensors(operand(a, dtype, device), operand(b, dtype, device))
    out = torch.empty(a.shape, dtype=dtype, device=device)
    return kernel(a, b, out=out)


def add(a: Operand, b: Operand) -> Tensor:
    return binary(torch.add, a, b)


def sub(a: Operand, b: Operand) -> Tensor:
    """Refused for bool operands, before promotion could turn them into integers (as torch.sub does)."""
    if any(x.dtype == torch.bool if isinstance(x, Tensor) else isinstance(x, bool) for x in (a, b)):
        raise RuntimeError("subtraction with a bool operand is not supported: for a mask use ~ or logical_not")
    return binary(torch.sub, a, b)


def mul(a: Operand, b: Operand) -> Tensor:
    return binary(torch.mul, a, b)


def div(a: Operand, b: Operand) -> Tensor:
    """True division: integers and bools divide in the default float dtype, as torch.div does."""
    dtype = result_type(a, b)
    return binary(torch.div, a, b, dtype if category(dtype) >= 2 else torch.get_default_dtype())


def maximum(a: Operand, b: Operand) -> Tensor:
    return binary(torch.maximum, a, b)


def minimum(a: Operand, b: Operand) -> Tensor:
    return binary(torch.minimum, a, b)
