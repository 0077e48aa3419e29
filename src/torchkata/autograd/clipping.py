"""b02-05 and a17: gradient clipping by hand, as PyTorch's clip_grad_norm_ and clip_grad_value_ do it.

Norm clipping treats all the gradients as one long vector g: its p-norm is the p-norm of the per-tensor
p-norms, (Σ_tensors ‖g_t‖_p^p)^(1/p), or the largest |entry| for p = inf. When it exceeds max_norm every gradient
is scaled by the same max_norm / (norm + 1e-6), so the direction of the step is kept and only its length is
capped. Value clipping clamps every entry to [-clip_value, clip_value] on its own, which changes the direction.

One tensor at a time (no foreach kernels), in place; parameters without a gradient are skipped.
"""
from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import Tensor

EPS = 1e-6  # keeps the scale finite for a zero norm, as PyTorch's


def _grads(parameters: Tensor | Iterable[Tensor]) -> list[Tensor]:
    parameters = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for i, p in enumerate(parameters):
        if not isinstance(p, Tensor):
            raise TypeError(f"parameters must be tensors, got {type(p).__name__} at position {i}")
    return [p.grad for p in parameters if p.grad is not None]


def vector_norm(t: Tensor, norm_type: float) -> Tensor:
    """The p-norm of all the entries of t, by hand: max |t| for inf, (Σ |t|^p)^(1/p) otherwise (0 for no entries)."""
    if norm_type == math.inf:
        return t.abs().max() if t.numel() else t.new_zeros(())
    if norm_type == 2:  # the common case, as one dot product (no |t|^p temporary)
        return t.flatten().dot(t.flatten()).sqrt()
    return t.abs().pow(norm_type).sum().pow(1 / norm_type)


def total_norm(grads: list[Tensor], norm_type: float) -> Tensor:
    """The norm of all the gradients taken together as one vector: the norm of their norms."""
    return vector_norm(torch.stack([vector_norm(g, norm_type) for g in grads]), norm_type)


@torch.no_grad()
def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> Tensor:
    """Scale the gradients of `parameters` in place so that their total `norm_type`-norm is at most `max_norm`;
    return the total norm before clipping (a 0-d tensor; 0. when no parameter has a gradient)."""
    norm_type = float(norm_type)
    if not norm_type > 0:
        raise ValueError(f"norm_type must be positive (or inf), got {norm_type}")
    if not max_norm >= 0:
        raise ValueError(f"max_norm must be at least 0, got {max_norm}")
    grads = _grads(parameters)
    if not grads:
        return torch.tensor(0.0)
    norm = total_norm(grads, norm_type)
    if error_if_nonfinite and not torch.isfinite(norm):
        raise RuntimeError(f"the total norm of order {norm_type} of the gradients is {float(norm)}, not finite, so "
                           "it cannot be clipped; error_if_nonfinite=False scales by it anyway")
    scale = (max_norm / (norm + EPS)).clamp(max=1.0)  # a tensor: no host sync, and nan stays nan
    for g in grads:
        g.mul_(scale)
    return norm


@torch.no_grad()
def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient entry of `parameters` to [-clip_value, clip_value], in place."""
    if not clip_value >= 0:
        raise ValueError(f"clip_value must be at least 0, got {clip_value}")
    for g in _grads(parameters):
        g.clamp_(-clip_value, clip_value)
