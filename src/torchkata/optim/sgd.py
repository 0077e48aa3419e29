"""b02-04 and b02-09: stochastic gradient descent with momentum and weight decay, written by hand as a
torch.optim.Optimizer, step for step the same as torch.optim.SGD.

For each parameter p with gradient g (negated with `maximize`), at learning rate lr:
    g = g + weight_decay * p                 L2 decay: the penalty's gradient joins g (and so the momentum)
    b = g                      on the first step; afterwards
    b = momentum * b + (1 - dampening) * g   the momentum buffer, kept in state["momentum_buffer"]
    g = g + momentum * b  (nesterov)  or  g = b
    p = p - lr * g
With `decoupled_weight_decay` the decay leaves the gradient (and the buffer) alone and shrinks the weights
directly, p = p * (1 - lr * weight_decay), before the step (SGDW, Loshchilov & Hutter): without momentum the two
are the same update; with momentum the L2 term is smoothed and amplified (up to 1/(1 - momentum)) like any
gradient, the decoupled one is not.

The loop over parameters is ElementwiseOptimizer's: SGD writes only the update of one parameter, and a14's Adam and
RMSprop (torchkata.optim.adaptive) reuse the same loop.
"""
from __future__ import annotations

import torch
from torch import Tensor


class ElementwiseOptimizer(torch.optim.Optimizer):
    """The step of an optimizer that updates each parameter on its own, from its group's hyper-parameters and its
    own state: subclasses write `_update(p, grad, group, state)`."""

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns closure()'s loss when given one."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, -p.grad if group["maximize"] else p.grad, group, self.state[p])
        return loss


class SGD(ElementwiseOptimizer):
    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
                        maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        for group in self.param_groups:  # a state_dict saved by torch.optim.SGD has no such key
            group.setdefault("decoupled_weight_decay", False)

    def _update(self, p: Tensor, grad: Tensor, group: dict, state: dict) -> None:
        lr, momentum, decay = group["lr"], group["momentum"], group["weight_decay"]
        if decay != 0:
            if group["decoupled_weight_decay"]:
                p.mul_(1 - lr * decay)
            else:
                grad = grad.add(p, alpha=decay)  # a new tensor: p.grad itself stays what backward wrote
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.clone()
            else:
                buf.mul_(momentum).add_(grad, alpha=1 - group["dampening"])
            grad = grad.add(buf, alpha=momentum) if group["nesterov"] else buf
        p.add_(grad, alpha=-lr)
