"""m1-deep-2: a mini autograd engine with reverse mode (vjp) and forward mode (jvp). Write it yourself.

Grade it:  torchkata check m1-deep-2
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


class Var:
    """A value of the engine: `data` (a float tensor), the forward-mode `tangent` it carries (or None), and what it
    was made from. Supports +, -, * (with Python numbers and float tensors as constants, and broadcasting), unary -,
    @ (2-D matrices), and .sum(dim=None, keepdim=False). Torch's own autograd is off limits."""

    def __init__(self, data: Tensor, tangent: Tensor | None = None, parents: tuple = ()):
        raise NotImplementedError("m1-deep-2: write Var")

    @property
    def shape(self) -> torch.Size:
        raise NotImplementedError("m1-deep-2: write Var.shape")

    def __add__(self, other) -> Var:
        raise NotImplementedError("m1-deep-2: write Var.__add__ (and __radd__, __sub__, __rsub__, __neg__)")

    def __mul__(self, other) -> Var:
        raise NotImplementedError("m1-deep-2: write Var.__mul__ (and __rmul__)")

    def __matmul__(self, other) -> Var:
        raise NotImplementedError("m1-deep-2: write Var.__matmul__ (and __rmatmul__)")

    def sum(self, dim: int | None = None, keepdim: bool = False) -> Var:
        raise NotImplementedError("m1-deep-2: write Var.sum")


def add(a, b) -> Var:
    """a + b with broadcasting; one operand may be a number or a float tensor (a constant). Shapes that do not
    broadcast raise ValueError naming both; different dtypes raise TypeError naming both."""
    raise NotImplementedError("m1-deep-2: write add")


def mul(a, b) -> Var:
    """a * b, as add."""
    raise NotImplementedError("m1-deep-2: write mul")


def matmul(a, b) -> Var:
    """a @ b for two 2-D matrices; other ranks or inner sizes that differ raise ValueError naming the shapes."""
    raise NotImplementedError("m1-deep-2: write matmul")


def sum_(a: Var, dim: int | None = None, keepdim: bool = False) -> Var:
    """The sum of all elements, or along `dim` (negative too)."""
    raise NotImplementedError("m1-deep-2: write sum_")


def exp(a: Var) -> Var:
    raise NotImplementedError("m1-deep-2: write exp")


def log(a: Var) -> Var:
    raise NotImplementedError("m1-deep-2: write log")


def tanh(a: Var) -> Var:
    raise NotImplementedError("m1-deep-2: write tanh")


def sin(a: Var) -> Var:
    raise NotImplementedError("m1-deep-2: write sin")


def vjp(f: Callable[..., Var], *primals: Tensor) -> tuple[Tensor, Callable[[Tensor], tuple[Tensor, ...]]]:
    """Reverse mode with torch.func.vjp's contract: (f(*primals), vjp_fn), vjp_fn(cotangent) -> one gradient per
    primal, of its shape and dtype (zeros where f does not depend on it). f takes and returns Vars."""
    raise NotImplementedError("m1-deep-2: write vjp")


def jvp(f: Callable[..., Var], primals: tuple, tangents: tuple) -> tuple[Tensor, Tensor]:
    """Forward mode with torch.func.jvp's contract: (f(*primals), the directional derivative along tangents)."""
    raise NotImplementedError("m1-deep-2: write jvp")
