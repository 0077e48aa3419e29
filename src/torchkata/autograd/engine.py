"""m1-deep-2: a mini autograd engine, tensor-valued micrograd, with reverse mode (vjp) and forward mode (jvp).

A `Var` holds a float torch.Tensor (`data`, storage and elementwise arithmetic only: torch's autograd is never
asked for anything) and, for each op that made it, its inputs with one pair of linear maps per input:
    vjp_i(cotangent of the output) -> cotangent of input i       (reverse mode, run from the output back)
    jvp_i(tangent of input i)      -> its share of the output's tangent   (forward mode, run with the values)
Forward mode needs no graph: each op adds up the jvp_i of the tangents its inputs carry as it computes its value.
Reverse mode walks the recorded graph in reverse topological order and adds the vjp_i into each input's
cotangent (a Var used twice receives two shares).

Supported: add, mul (and -, neg, sub, scalar operands, as compositions of them) with numpy-style broadcasting,
reduced back to each input's shape in the vjp; matmul of two 2-D matrices; sum over all elements or one dim
(keepdim or not); exp, log, tanh, sin. Float32 and float64 tensors of any shape, 0-d and empty included.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

Linear = Callable[[Tensor], Tensor]


class Var:
    """A value in the engine's graph: data, the forward-mode tangent it carries (or None), and how it was made."""

    def __init__(self, data: Tensor, tangent: Tensor | None = None, parents: tuple = ()):
        self.data = data
        self.tangent = tangent
        self.parents = parents  # ((input Var, vjp_i), ...)

    @property
    def shape(self) -> torch.Size:
        return self.data.shape

    def __add__(self, other) -> Var:
        return add(self, other)

    __radd__ = __add__

    def __mul__(self, other) -> Var:
        return mul(self, other)

    __rmul__ = __mul__

    def __neg__(self) -> Var:
        return mul(self, -1.0)

    def __sub__(self, other) -> Var:
        return add(self, -as_var(other, self))

    def __rsub__(self, other) -> Var:
        return add(as_var(other, self), -self)

    def __matmul__(self, other) -> Var:
        return matmul(self, other)

    def __rmatmul__(self, other) -> Var:
        return matmul(other, self)

    def sum(self, dim: int | None = None, keepdim: bool = False) -> Var:
        return sum_(self, dim, keepdim)

    def __repr__(self) -> str:
        return f"Var(shape={tuple(self.shape)}, dtype={self.data.dtype})"


def as_var(x, like: Var) -> Var:
    """A Var as is; a Python number or a tensor as a constant (no tangent, no parents) of like's dtype."""
    if isinstance(x, Var):
        return x
    if isinstance(x, (int, float)) or isinstance(x, Tensor) and x.is_floating_point():
        return Var(torch.as_tensor(x, dtype=like.data.dtype))
    raise TypeError(f"the engine's ops take Vars, Python numbers and float tensors, not {type(x).__name__}")


def make(data: Tensor, inputs: list[tuple[Var, Linear, Linear]]) -> Var:
    """The op's output: its tangent from the inputs' tangents (forward mode), its parents for reverse mode."""
    shares = [jvp_i(x.tangent) for x, _, jvp_i in inputs if x.tangent is not None]
    tangent = None
    for share in shares:
        tangent = share if tangent is None else tangent + share
    return Var(data, tangent, tuple((x, vjp_i) for x, vjp_i, _ in inputs))


def unbroadcast(grad: Tensor, shape: torch.Size) -> Tensor:
    """Sum grad over the dims that broadcasting added or stretched, back to `shape` (the vjp of an expand)."""
    extra = grad.dim() - len(shape)
    if extra:
        grad = grad.sum(dim=tuple(range(extra)))
    stretched = tuple(d for d, n in enumerate(shape) if n == 1 and grad.shape[d] != 1)
    return grad.sum(dim=stretched, keepdim=True) if stretched else grad


def operands(a, b, op: str) -> tuple[Var, Var, torch.Size]:
    """Both operands as Vars (a number or a tensor becomes a constant of the other's dtype), and their broadcast
    shape."""
    like = a if isinstance(a, Var) else b
    if not isinstance(like, Var):
        raise TypeError(f"{op}: one operand must be a Var, got {type(a).__name__} and {type(b).__name__}")
    a, b = as_var(a, like), as_var(b, like)
    if a.data.dtype != b.data.dtype:
        raise TypeError(f"{op}: dtypes differ, {a.data.dtype} and {b.data.dtype} (the engine does not promote)")
    try:
        return a, b, torch.broadcast_shapes(a.shape, b.shape)
    except RuntimeError:
        raise ValueError(f"{op}: shapes {tuple(a.shape)} and {tuple(b.shape)} do not broadcast") from None


def add(a, b) -> Var:
    a, b, shape = operands(a, b, "add")
    return make(a.data + b.data, [(a, lambda g: unbroadcast(g, a.shape), lambda t: t.expand(shape)),
                                  (b, lambda g: unbroadcast(g, b.shape), lambda t: t.expand(shape))])


def mul(a, b) -> Var:
    a, b, _ = operands(a, b, "mul")
    return make(a.data * b.data, [(a, lambda g: unbroadcast(g * b.data, a.shape), lambda t: t * b.data),
                                  (b, lambda g: unbroadcast(g * a.data, b.shape), lambda t: a.data * t)])


def matmul(a, b) -> Var:
    like = a if isinstance(a, Var) else b
    a, b = as_var(a, like), as_var(b, like)
    if a.data.dtype != b.data.dtype:
        raise TypeError(f"matmul: dtypes differ, {a.data.dtype} and {b.data.dtype} (the engine does not promote)")
    if a.data.dim() != 2 or b.data.dim() != 2:
        raise ValueError(f"matmul takes two 2-D matrices, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul: inner sizes differ in shapes {tuple(a.shape)} and {tuple(b.shape)}")
    return make(a.data @ b.data, [(a, lambda g: g @ b.data.T, lambda t: t @ b.data),
                                  (b, lambda g: a.data.T @ g, lambda t: a.data @ t)])


def sum_(a: Var, dim: int | None = None, keepdim: bool = False) -> Var:
    if dim is None:
        return make(a.data.sum(), [(a, lambda g: g.expand(a.shape), lambda t: t.sum())])

    def vjp(g: Tensor) -> Tensor:  # put the summed dim back, then copy the cotangent along it
        return (g if keepdim or a.data.dim() == 0 else g.unsqueeze(dim)).expand(a.shape)
    return make(a.data.sum(dim, keepdim=keepdim), [(a, vjp, lambda t: t.sum(dim, keepdim=keepdim))])


def exp(a: Var) -> Var:
    y = a.data.exp()
    return make(y, [(a, lambda g: g * y, lambda t: t * y)])


def log(a: Var) -> Var:
    return make(a.data.log(), [(a, lambda g: g / a.data, lambda t: t / a.data)])


def tanh(a: Var) -> Var:
    y = a.data.tanh()
    slope = 1 - y * y
    return make(y, [(a, lambda g: g * slope, lambda t: t * slope)])


def sin(a: Var) -> Var:
    slope = a.data.cos()
    return make(a.data.sin(), [(a, lambda g: g * slope, lambda t: t * slope)])


def _inputs(primals: tuple, what: str) -> None:
    if not primals:
        raise ValueError(f"{what} needs at least one primal tensor")
    for i, p in enumerate(primals):
        if not isinstance(p, Tensor) or not p.is_floating_point():
            raise TypeError(f"{what}: primal {i} must be a float tensor, got "
                            f"{p.dtype if isinstance(p, Tensor) else type(p).__name__}")


def _output(out, what: str) -> Var:
    if not isinstance(out, Var):
        raise TypeError(f"{what}: the function must return a Var, got {type(out).__name__}")
    return out


def topological_order(out: Var) -> list[Var]:
    """Every Var that `out` depends on, each after all the Vars it was made from (iterative: deep graphs are fine)."""
    order, seen, stack = [], set(), [(out, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
        elif id(node) not in seen:
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((parent, False) for parent, _ in node.parents if id(parent) not in seen)
    return order


def vjp(f: Callable[..., Var], *primals: Tensor) -> tuple[Tensor, Callable[[Tensor], tuple[Tensor, ...]]]:
    """Reverse mode, with the contract of PyTorch's func.vjp: (f(*primals), vjp_fn) where vjp_fn(cotangent) is the
    tuple of cotangentᵀ·∂f/∂primal_i, one per primal, each of its primal's shape."""
    _inputs(primals, "vjp")
    inputs = [Var(p) for p in primals]
    out = _output(f(*inputs), "vjp")
    order = topological_order(out)

    def vjp_fn(cotangent: Tensor) -> tuple[Tensor, ...]:
        if not isinstance(cotangent, Tensor) or cotangent.shape != out.shape:
            raise ValueError(f"vjp: the cotangent must have the output's shape {tuple(out.shape)}, got "
                             f"{tuple(cotangent.shape) if isinstance(cotangent, Tensor) else type(cotangent).__name__}")
        grads = {id(out): cotangent.to(out.data.dtype)}
        for node in reversed(order):  # every node in the order lies on a path to out: its cotangent is complete
            g = grads[id(node)]
            for parent, vjp_i in node.parents:
                share = vjp_i(g)
                grads[id(parent)] = share if id(parent) not in grads else grads[id(parent)] + share
        # a clone: f = identity would otherwise hand back the caller's own cotangent
        return tuple(grads[id(x)].clone() if id(x) in grads else torch.zeros_like(x.data) for x in inputs)
    return out.data, vjp_fn


def jvp(f: Callable[..., Var], primals: tuple, tangents: tuple) -> tuple[Tensor, Tensor]:
    """Forward mode, with the contract of PyTorch's func.jvp: (f(*primals), Σ_i ∂f/∂primal_i · tangent_i), computed
    alongside the value."""
    _inputs(tuple(primals), "jvp")
    if len(tangents) != len(primals):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    for i, (p, t) in enumerate(zip(primals, tangents)):
        if not isinstance(t, Tensor) or t.shape != p.shape:
            raise ValueError(f"jvp: tangent {i} must have its primal's shape {tuple(p.shape)}, got "
                             f"{tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__}")
    out = _output(f(*(Var(p, t.to(p.dtype)) for p, t in zip(primals, tangents))), "jvp")
    tangent = torch.zeros_like(out.data) if out.tangent is None else out.tangent.expand(out.shape).clone()
    return out.data, tangent
