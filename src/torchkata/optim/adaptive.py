"""a14: Adam (with AdamW's decoupled weight decay and AMSGrad) and RMSprop (centered, with momentum), written by
hand as torch.optim.Optimizers, step for step the same as torch.optim.Adam, AdamW and RMSprop; beside the SGD of
b02-04 (torchkata.optim.sgd). m2-core-1 trains a CIFAR-10 CNN with this Adam, m2-core-2 races it against that SGD.

Both scale each coordinate's step by a running root mean square of its gradients, so a coordinate with small
gradients takes as large steps as one with big ones. For a parameter p with gradient g (negated with `maximize`):

Adam, at step t = 1, 2, ... (state: step, exp_avg m, exp_avg_sq v, and max_exp_avg_sq with amsgrad)
    g = g + weight_decay * p               L2 (Adam); AdamW instead shrinks p = p * (1 - lr * weight_decay) first
    m = beta1 * m + (1 - beta1) * g        first moment
    v = beta2 * v + (1 - beta2) * g²       second moment
    v = max(v_max, v)  (amsgrad)           the denominator never shrinks (Reddi et al., 2018)
    p = p - lr * m / (1 - beta1^t) / (sqrt(v / (1 - beta2^t)) + eps)
The bias corrections undo the moments' start at zero: after one step m = (1 - beta1) g, so m / (1 - beta1) = g.

RMSprop (state: step, square_avg s, grad_avg a when centered, momentum_buffer b with momentum)
    g = g + weight_decay * p
    s = alpha * s + (1 - alpha) * g²
    a = alpha * a + (1 - alpha) * g;  d = sqrt(s - a²) + eps   centered: the gradient's running variance
    d = sqrt(s) + eps                                          otherwise
    b = momentum * b + g / d;  p = p - lr * b                  with momentum, else p = p - lr * g / d
"""
from __future__ import annotations

import torch
from torch import Tensor

from torchkata.optim.sgd import ElementwiseOptimizer  # the loop over parameters, b02-04's


def _check(**values: float) -> None:
    """torch.optim's messages for hyper-parameters that must not be negative."""
    names = {"lr": "learning rate", "eps": "epsilon value", "weight_decay": "weight_decay value",
             "momentum": "momentum value", "alpha": "alpha value"}
    for key, value in values.items():
        if not value >= 0.0:
            raise ValueError(f"Invalid {names[key]}: {value}")


def _moment(p: Tensor) -> Tensor:
    return torch.zeros_like(p, memory_format=torch.preserve_format)


class Adam(ElementwiseOptimizer):
    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False):
        _check(lr=lr, eps=eps, weight_decay=weight_decay)
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {beta}")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _update(self, p: Tensor, grad: Tensor, group: dict, state: dict) -> None:
        lr, (beta1, beta2), decay = group["lr"], group["betas"], group["weight_decay"]
        if not state:  # on the parameter's first step, in the layout of torch.optim.Adam's state
            state["step"] = torch.tensor(0.0)
            state["exp_avg"], state["exp_avg_sq"] = _moment(p), _moment(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = _moment(p)
        state["step"] += 1
        step = state["step"].item()
        if decay != 0:  # not 0 * p: an inf weight would turn into nan
            if group["decoupled_weight_decay"]:
                p.mul_(1 - lr * decay)
            else:
                grad = grad.add(p, alpha=decay)  # a new tensor: p.grad stays what backward wrote
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        if group["amsgrad"]:
            exp_avg_sq = torch.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
        denom = (exp_avg_sq.sqrt() / (1 - beta2**step) ** 0.5).add_(group["eps"])
        p.addcdiv_(exp_avg, denom, value=-lr / (1 - beta1**step))


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), on by default as in torch.optim.AdamW."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize, decoupled_weight_decay=True)


class RMSprop(ElementwiseOptimizer):
    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum: float = 0.0, centered: bool = False, *, maximize: bool = False):
        _check(lr=lr, eps=eps, momentum=momentum, weight_decay=weight_decay, alpha=alpha)
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered,
                        maximize=maximize)
        super().__init__(params, defaults)

    def _update(self, p: Tensor, grad: Tensor, group: dict, state: dict) -> None:
        lr, alpha, momentum, decay = group["lr"], group["alpha"], group["momentum"], group["weight_decay"]
        if not state:  # the layout of torch.optim.RMSprop's state
            state["step"] = torch.tensor(0.0)
            state["square_avg"] = _moment(p)
            if momentum > 0:
                state["momentum_buffer"] = _moment(p)
            if group["centered"]:
                state["grad_avg"] = _moment(p)
        state["step"] += 1
        if decay != 0:
            grad = grad.add(p, alpha=decay)
        square_avg = state["square_avg"].mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
        if group["centered"]:
            grad_avg = state["grad_avg"].lerp_(grad, 1 - alpha)
            avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
        else:
            avg = square_avg.sqrt()
        avg.add_(group["eps"])
        if momentum > 0:
            buf = state["momentum_buffer"].mul_(momentum).addcdiv_(grad, avg)
            p.add_(buf, alpha=-lr)
        else:
            p.addcdiv_(grad, avg, value=-lr)
