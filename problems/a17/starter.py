"""a17: gradient clipping by hand (norm clipping): clip_grad_norm_ and clip_grad_value_ as torch.nn.utils has
them, written yourself, one tensor at a time. b02-05 asks for the same functions: write them once, here
(problems/b02-05/starter.py is a link to this file).

Grade it:  torchkata check a17   and   torchkata check b02-05
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor


@torch.no_grad()
def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> Tensor:
    """Scale the gradients of `parameters` (one tensor, or any iterable of them, such as model.parameters()) in place
    so that their total norm, all gradients taken as one vector, is at most max_norm: each is multiplied by
    min(1, max_norm / (total_norm + 1e-6)), as torch.nn.utils.clip_grad_norm_. norm_type is any p > 0 or inf (the
    string "inf" too). Parameters without a gradient are skipped; with none at all, return tensor(0.).

    Return the total norm before clipping, a 0-d tensor of the gradients' dtype. With error_if_nonfinite, a nan or
    inf total norm raises RuntimeError saying it is non-finite; without, scale as PyTorch does. ValueError for
    norm_type <= 0 or max_norm < 0, TypeError (naming the type and position) for a parameter that is not a tensor.
    Off limits: torch.nn.utils' clipping and norm helpers, torch.linalg's norms, Tensor.norm, torch._foreach_*."""
    raise NotImplementedError("a17 and b02-05: write clip_grad_norm_")


@torch.no_grad()
def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient entry of `parameters` to [-clip_value, clip_value] in place, as
    torch.nn.utils.clip_grad_value_; parameters without a gradient are skipped. ValueError for clip_value < 0."""
    raise NotImplementedError("a17 and b02-05: write clip_grad_value_")
