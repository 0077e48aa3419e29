"""a10: torch.autograd.gradcheck as a tool: a custom Function whose backward can carry three kinds of bug, the
central differences that gradcheck compares a backward with, and a pass/fail wrapper around gradcheck.

The Function is a linear layer with a per-sample weight:  y = (x @ weight.T) * scale[:, None] + bias
(x [N, in], weight [out, in], scale [N], bias [out]). With g = dL/dy and gs = g * scale[:, None]:

    dL/dx = gs @ weight      dL/dweight = gsᵀ @ x      dL/dscale = Σ_out g * (x @ weight.T)      dL/dbias = Σ_N g

The bugs:  "sign": dL/dx negated;  "transpose": dL/dweight as xᵀ @ gs, [in, out] instead of [out, in];
"broadcast": dL/dscale left [N, out], scale's broadcast over the columns not summed away. On square shapes
(N = in = out) the last two still have shapes autograd accepts (it sums an expandable gradient down to the input's
shape itself, over the leading dims: the wrong ones here), so only the values are wrong, and only a comparison of
values such as gradcheck's finds them; on other shapes autograd refuses them with a shape error.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor

BUGS = ("sign", "transpose", "broadcast")


class ScaledLinearFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, scale: Tensor, bias: Tensor, bug: str | None) -> Tensor:
        product = x @ weight.T
        ctx.save_for_backward(x, weight, scale, product)
        ctx.bug = bug
        return product * scale[:, None] + bias

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, weight, scale, product = ctx.saved_tensors
        scaled = grad_out * scale[:, None]
        grad_x = scaled @ weight
        grad_weight = x.T @ scaled if ctx.bug == "transpose" else scaled.T @ x
        grad_scale = grad_out * product
        if ctx.bug != "broadcast":
            grad_scale = grad_scale.sum(dim=1)
        return -grad_x if ctx.bug == "sign" else grad_x, grad_weight, grad_scale, grad_out.sum(dim=0), None


def scaled_linear(x: Tensor, weight: Tensor, scale: Tensor, bias: Tensor, bug: str | None = None) -> Tensor:
    """(x @ weight.T) * scale[:, None] + bias through ScaledLinearFunction, its backward right (bug None) or carrying
    one of BUGS."""
    if bug is not None and bug not in BUGS:
        raise ValueError(f"bug must be None or one of {BUGS}, got {bug!r}")
    for name, t, dim in (("x", x, 2), ("weight", weight, 2), ("scale", scale, 1), ("bias", bias, 1)):
        if not isinstance(t, Tensor) or not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got {getattr(t, 'dtype', type(t).__name__)}")
        if t.dim() != dim:
            raise ValueError(f"{name} must be {dim}-D, got shape {tuple(t.shape)}")
    if x.shape[1] != weight.shape[1] or scale.shape[0] != x.shape[0] or bias.shape[0] != weight.shape[0]:
        raise ValueError(f"shapes do not fit: x {tuple(x.shape)} [N, in], weight {tuple(weight.shape)} [out, in], "
                         f"scale {tuple(scale.shape)} [N], bias {tuple(bias.shape)} [out]")
    return ScaledLinearFunction.apply(x, weight, scale, bias, bug)


def numerical_jacobian(fn: Callable[[Tensor], Tensor], x: Tensor, eps: float) -> Tensor:
    """d fn(x) / d x by central differences, (fn(x + eps·e_i) - fn(x - eps·e_i)) / 2eps for every entry i of x, in x's
    dtype: [*fn(x).shape, *x.shape]. The error is O(eps²) from the Taylor series plus O(u·|fn|/eps) from rounding
    (u = the dtype's epsilon), which is why float32 needs a far larger eps than float64."""
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps}")
    flat = x.detach().clone().flatten()
    columns = []
    with torch.no_grad():
        for i in range(flat.numel()):
            value = flat[i].item()
            flat[i] = value + eps
            above = fn(flat.view_as(x))
            flat[i] = value - eps
            below = fn(flat.view_as(x))
            flat[i] = value
            columns.append((above - below) / (2 * eps))
        out_shape = fn(x.detach()).shape
    if not columns:
        return torch.zeros(out_shape + x.shape, dtype=x.dtype)
    return torch.stack(columns, dim=-1).reshape(out_shape + x.shape)


def gradcheck_passes(fn: Callable[..., Tensor], inputs: Sequence[Tensor], **options) -> bool:
    """torch.autograd.gradcheck(fn, inputs, **options) as a verdict: False where it finds a mismatch, and where autograd
    itself refuses the backward's gradients (a shape that does not fit): both are a wrong backward caught."""
    try:
        return torch.autograd.gradcheck(fn, tuple(inputs), raise_exception=False, **options)
    except RuntimeError as err:
        if "invalid gradient" not in str(err):
            raise
        return False
