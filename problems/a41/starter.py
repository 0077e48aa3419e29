"""a41: the simplest C++ extension (tensor + constant). Write the C++ in csrc/add_constant/add_constant.cpp
(functions `forward(x, constant)` and `backward(grad_out)`), then wrap it here as an autograd Function.

Load the built library with `torchkata.pipeline.extensions.load("add_constant", library_path)`.
Grade it:  torchkata check a41
"""
from __future__ import annotations

from torch import Tensor


def add_constant(x: Tensor, constant: float, library_path: str | None = None) -> Tensor:
    """x + constant computed by the C++ extension, differentiable with respect to x.

    Raises TypeError when x is not a Tensor; the C++ side refuses integer tensors with a RuntimeError.
    """
    raise NotImplementedError("a41: wrap the C++ extension in an autograd Function")
