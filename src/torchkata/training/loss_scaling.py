"""Dynamic loss scaling by hand: torch.amp.GradScaler's rule, for float16 training (m2-deep-1's autocast).

float16 keeps numbers only between about 6e-8 and 65504: small activation gradients flush to zero in the
backward pass. Multiplying the loss by a large scale S lifts every gradient by S (the chain rule is linear),
and dividing the float32 parameter gradients by S before the step undoes it. Too large an S overflows: a
gradient becomes inf or nan. The scaler then skips that step (the weights never see it), halves S, and
after `growth_interval` clean steps in a row tries doubling it again:

    found inf:   scale *= backoff_factor; clean steps = 0; the optimizer step is skipped
    otherwise:   clean steps += 1; at growth_interval: scale *= growth_factor (unless that overflows float32);
                 clean steps = 0

    scaler = DynamicLossScaler()
    scaler.scale(loss).backward()
    scaler.step(optimizer)     # unscales, steps only when every gradient is finite
    scaler.update()            # the rule above

With training.loop, whose loop calls backward and optimizer.step() itself: loss_fn=scaler.loss_fn(F.cross_entropy)
scales the gradient (its value, which the loop records, stays the loss), and before_step=scaler.before_step(optimizer)
unscales, drops the gradients of an overflowed step (so optimizer.step() leaves every parameter alone) and updates.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor


class _ScaleGradient(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by `scale` (what backward of loss * scale does)."""

    @staticmethod
    def forward(ctx, loss: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        return loss.clone()

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad * ctx.scale, None


class DynamicLossScaler:
    def __init__(self, init_scale: float = 2.0 ** 16, growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True):
        if not (init_scale > 0 and math.isfinite(init_scale)):
            raise ValueError(f"init_scale must be a positive finite number, got {init_scale}")
        if not growth_factor > 1.0:
            raise ValueError(f"growth_factor must be above 1, got {growth_factor}")
        if not 0.0 < backoff_factor < 1.0:
            raise ValueError(f"backoff_factor must be between 0 and 1, got {backoff_factor}")
        if growth_interval < 1:
            raise ValueError(f"growth_interval must be at least 1, got {growth_interval}")
        self.scale_value = float(torch.tensor(init_scale, dtype=torch.float32))  # GradScaler keeps it in float32
        self.growth_factor, self.backoff_factor, self.growth_interval = growth_factor, backoff_factor, growth_interval
        self.enabled = enabled
        self.clean_steps = 0
        self.found_inf: bool | None = None  # of the step under way: None until its gradients are unscaled
        self.history: list[float] = []  # the scale after each update
        self.skipped = 0

    def scale(self, loss: Tensor) -> Tensor:
        """loss * scale, whose backward gives gradients scaled by it."""
        return loss * self.scale_value if self.enabled else loss

    def unscale_(self, optimizer: torch.optim.Optimizer) -> bool:
        """Divide every gradient of `optimizer`'s parameters by the scale, once per step; True if one is inf or nan."""
        if not self.enabled:
            return False
        if self.found_inf is not None:
            raise RuntimeError("unscale_ was already called for this step; call update() after the step")
        inverse = torch.tensor(1.0 / self.scale_value, dtype=torch.float32)  # as GradScaler: the reciprocal in
        found = False                                                         # float64, multiplied in float32
        for group in optimizer.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    param.grad.mul_(inverse.to(param.grad.dtype))
                    found = found or not bool(torch.isfinite(param.grad).all())
        self.found_inf = found
        return found

    def step(self, optimizer: torch.optim.Optimizer) -> bool:
        """Unscale (if not done yet) and step the optimizer unless a gradient overflowed; True if it stepped."""
        if not self.enabled:
            optimizer.step()
            return True
        if self.found_inf is None:
            self.unscale_(optimizer)
        if self.found_inf:
            return False
        optimizer.step()
        return True

    def update(self) -> None:
        """The dynamic rule: back off after an overflow, grow after growth_interval clean steps in a row."""
        if not self.enabled:
            return
        if self.found_inf is None:
            raise RuntimeError("update() before the step's gradients were unscaled (call step or unscale_ first)")
        if self.found_inf:
            self.scale_value *= self.backoff_factor
            self.clean_steps = 0
            self.skipped += 1
        else:
            self.clean_steps += 1
            if self.clean_steps == self.growth_interval:
                grown = float(torch.tensor(self.scale_value * self.growth_factor, dtype=torch.float32))
                if math.isfinite(grown):  # as GradScaler: a scale that would overflow float32 stays put
                    self.scale_value = grown
                self.clean_steps = 0
        self.scale_value = float(torch.tensor(self.scale_value, dtype=torch.float32))
        self.history.append(self.scale_value)
        self.found_inf = None

    # --- training.loop's hooks ---------------------------------------------------------------------------
    def loss_fn(self, loss_fn):
        """loss_fn whose result keeps its value (the loop records it) but backpropagates gradients x scale."""
        def scaled(output: Tensor, target: Tensor) -> Tensor:
            loss = loss_fn(output, target)
            return _ScaleGradient.apply(loss, self.scale_value) if self.enabled and loss.requires_grad else loss
        return scaled

    def before_step(self, optimizer: torch.optim.Optimizer):
        """before_step(model, step) for training.loop: unscale; after an overflow drop the gradients, so that the
        loop's optimizer.step() changes nothing (a parameter without a gradient is not stepped); update."""
        def hook(model, step):
            if self.unscale_(optimizer):
                optimizer.zero_grad(set_to_none=True)
            self.update()
        return hook

    def state_dict(self) -> dict:
        return {"scale": self.scale_value, "growth_factor": self.growth_factor, "backoff_factor": self.backoff_factor,
                "growth_interval": self.growth_interval, "clean_steps": self.clean_steps}

    def load_state_dict(self, state: dict) -> None:
        self.scale_value, self.clean_steps = float(state["scale"]), int(state["clean_steps"])
        self.growth_factor, self.backoff_factor = state["growth_factor"], state["backoff_factor"]
        self.growth_interval = state["growth_interval"]
