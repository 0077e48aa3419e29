"""b01-04: elementwise ops without torch's built-in semantics.

You decide the result's dtype (type promotion), its shape (broadcasting, with a03's stride-0 views imported
below) and allocate it; torch's arithmetic is only the kernel: `kernel(a, b, out=out)` with a, b and out all of
the result's shape and dtype. Off limits: torch.result_type, torch.can_cast, torch.broadcast_*, Tensor.expand, and
arithmetic operators or torch ops applied to operands of different shapes or dtypes. torch.promote_types (the
table for two dtypes of one priority) is allowed.

Grade it:  torchkata check b01-04
"""
from __future__ import annotations

from typing import Callable, Union

import torch
from torch import Tensor

from torchkata.tensors.broadcasting import broadcast_tensors  # noqa: F401 - yours to use

Operand = Union[Tensor, bool, int, float]
Kernel = Callable[..., Tensor]


def category(dtype: torch.dtype) -> int:
    """0 for bool, 1 for integers, 2 for floating point."""
    raise NotImplementedError("b01-04: write category")


def scalar_dtype(value: bool | int | float) -> torch.dtype:
    """The dtype a Python number takes in an op: bool, int64, or the default float dtype; TypeError for others."""
    raise NotImplementedError("b01-04: write scalar_dtype")


def result_type(a: Operand, b: Operand) -> torch.dtype:
    """What torch.result_type(a, b) gives, by hand (and for two Python numbers too). Tensors with dims outrank 0-d
    tensors, which outrank Python numbers: a lower-ranked operand changes the dtype only if its category is
    higher. TypeError for complex tensors."""
    raise NotImplementedError("b01-04: write result_type")


def binary(kernel: Kernel, a: Operand, b: Operand, dtype: torch.dtype | None = None) -> Tensor:
    """kernel(a', b', out=out) where a', b' are a and b in `dtype` (default: result_type(a, b)) broadcast to the
    common shape, and out a new tensor of that shape and dtype on the operands' device; returns out."""
    raise NotImplementedError("b01-04: write binary")


def add(a: Operand, b: Operand) -> Tensor:
    raise NotImplementedError("b01-04: write add")


def sub(a: Operand, b: Operand) -> Tensor:
    """RuntimeError mentioning "bool" for a bool operand (tensor or Python bool), as torch.sub."""
    raise NotImplementedError("b01-04: write sub")


def mul(a: Operand, b: Operand) -> Tensor:
    raise NotImplementedError("b01-04: write mul")


def div(a: Operand, b: Operand) -> Tensor:
    """True division: bool and integer operands divide in the default float dtype."""
    raise NotImplementedError("b01-04: write div")


def maximum(a: Operand, b: Operand) -> Tensor:
    raise NotImplementedError("b01-04: write maximum")


def minimum(a: Operand, b: Operand) -> Tensor:
    raise NotImplementedError("b01-04: write minimum")
