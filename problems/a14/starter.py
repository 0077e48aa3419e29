"""a14: Adam (with AdamW's decoupled weight decay and AMSGrad) and RMSprop (centered, with momentum) as
torch.optim.Optimizers, step for step the same as torch.optim.Adam, AdamW and RMSprop.

m2-core-1 trains a CIFAR-10 CNN with this Adam: write it once, here (problems/m2-core-1/starter.py is a link to
this file).

Grade it:  torchkata check a14   and   torchkata check m2-core-1
"""
from __future__ import annotations

import torch
from torch import Tensor

from torchkata.optim.sgd import ElementwiseOptimizer  # b02-04's loop: step() calls your _update per parameter


class Adam(ElementwiseOptimizer):
    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False):
        """Validate as torch.optim.Adam does (a ValueError with torch's message naming the bad value: lr, eps and
        weight_decay not negative, each beta in [0, 1)), then hand the options to Optimizer.__init__ as defaults."""
        raise NotImplementedError("a14 and m2-core-1: write Adam.__init__")

    def _update(self, p: Tensor, grad: Tensor, group: dict, state: dict) -> None:
        """One Adam step of p, in place. Keep torch's state: "step", "exp_avg", "exp_avg_sq" (and "max_exp_avg_sq"
        with amsgrad), created on the parameter's first step. Never change p.grad."""
        raise NotImplementedError("a14 and m2-core-1: write Adam._update")


class AdamW(Adam):
    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False):
        """Adam with decoupled weight decay, torch.optim.AdamW's defaults."""
        raise NotImplementedError("a14 and m2-core-1: write AdamW.__init__")


class RMSprop(ElementwiseOptimizer):
    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum: float = 0.0, centered: bool = False, *, maximize: bool = False):
        """Validate as torch.optim.RMSprop does (lr, eps, momentum, weight_decay, alpha not negative)."""
        raise NotImplementedError("a14 and m2-core-1: write RMSprop.__init__")

    def _update(self, p: Tensor, grad: Tensor, group: dict, state: dict) -> None:
        """One RMSprop step of p, in place. torch's state: "step", "square_avg", "momentum_buffer" (momentum > 0),
        "grad_avg" (centered)."""
        raise NotImplementedError("a14 and m2-core-1: write RMSprop._update")
