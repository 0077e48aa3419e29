"""b02-04: SGD with momentum as a torch.optim.Optimizer. Write the constructor and the step yourself.

Grade it:  torchkata check b02-04
"""
from __future__ import annotations

import torch


class SGD(torch.optim.Optimizer):
    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False):
        """Validate the hyper-parameters as torch.optim.SGD does (a ValueError naming the bad value; nesterov needs
        momentum > 0 and dampening 0), then hand them to Optimizer.__init__ as the defaults of every group."""
        raise NotImplementedError("b02-04: write SGD.__init__")

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient, with its own group's hyper-parameters; the momentum
        buffer lives in self.state[p]["momentum_buffer"]. Returns closure()'s loss (run with grad enabled) or None.
        torch.optim.SGD and its functional helpers are off limits."""
        raise NotImplementedError("b02-04: write SGD.step")
