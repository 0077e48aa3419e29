"""b02-02 (and a04's layer, built on these): linear regression trained without autograd, on plain tensors.

The linear layer y = x @ weight.T + bias (weight [out, in], bias [out], x [..., in], as nn.Linear) and the mean
squared error L = mean((prediction - target)²), each with its backward written out by the chain rule:

    dL/dx = g @ weight          dL/dweight = gᵀ @ x (summed over every leading dim)       dL/dbias = Σ g
    dL/dprediction = 2 (prediction - target) / numel

where g = dL/dy. A gradient-descent step is the two forwards, the two backwards, and weight -= lr · dL/dweight.
"""
from __future__ import annotations

import torch
from torch import Tensor


def _float_tensor(name: str, t) -> None:
    if not isinstance(t, Tensor) or not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {getattr(t, 'dtype', type(t).__name__)}")


def _check_layer(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> None:
    for name, t in (("x", x), ("weight", weight)) + ((("bias", bias),) if bias is not None else ()):
        _float_tensor(name, t)
        if t.dtype != weight.dtype:
            raise TypeError(f"{name} ({t.dtype}) and weight ({weight.dtype}) must have the same dtype")
    if weight.dim() != 2:
        raise ValueError(f"weight must be 2-D [out_features, in_features], got shape {tuple(weight.shape)}")
    if x.dim() == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"x of shape {tuple(x.shape)} must end in in_features = {weight.shape[1]} "
                         f"(weight {tuple(weight.shape)})")
    if bias is not None and bias.shape != weight.shape[:1]:
        raise ValueError(f"bias must have shape ({weight.shape[0]},) for weight {tuple(weight.shape)}, "
                         f"got {tuple(bias.shape)}")


def linear_forward(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """x @ weight.T + bias over the last dim of x: [..., in] -> [..., out]."""
    _check_layer(x, weight, bias)
    return x @ weight.T + bias


def linear_backward(grad_out: Tensor, x: Tensor, weight: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(dL/dx, dL/dweight, dL/dbias) from g = dL/dy of y = linear_forward(x, weight, bias)."""
    _check_layer(x, weight)
    _float_tensor("grad_out", grad_out)
    if grad_out.shape != x.shape[:-1] + weight.shape[:1]:
        raise ValueError(f"grad_out of shape {tuple(grad_out.shape)} does not match the output "
                         f"{tuple(x.shape[:-1] + weight.shape[:1])} of x {tuple(x.shape)} and weight "
                         f"{tuple(weight.shape)}")
    # every leading dim is a batch dim: weight and bias were used by all of those rows, so their gradients sum
    rows_out, rows_in = grad_out.reshape(-1, weight.shape[0]), x.reshape(-1, weight.shape[1])
    return grad_out @ weight, rows_out.T @ rows_in, rows_out.sum(dim=0)


def _check_pair(prediction: Tensor, target: Tensor) -> None:
    _float_tensor("prediction", prediction)
    _float_tensor("target", target)
    if prediction.shape != target.shape:  # no broadcasting: [N, 1] against [N] would make an [N, N] loss
        raise ValueError(f"prediction shape {tuple(prediction.shape)} and target shape {tuple(target.shape)} differ")
    if prediction.dtype != target.dtype:
        raise TypeError(f"prediction ({prediction.dtype}) and target ({target.dtype}) must have the same dtype")


def mse_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """mean((prediction - target)²), a 0-d tensor (nan for empty tensors, as F.mse_loss)."""
    _check_pair(prediction, target)
    diff = (prediction - target).flatten()
    return diff.dot(diff) / diff.numel()


def mse_backward(prediction: Tensor, target: Tensor) -> Tensor:
    """d mse_loss / d prediction = 2 (prediction - target) / numel."""
    _check_pair(prediction, target)
    return (prediction - target) * (2 / max(prediction.numel(), 1))


@torch.no_grad()
def sgd_step(weight: Tensor, bias: Tensor, x: Tensor, y: Tensor, lr: float) -> Tensor:
    """One step of gradient descent on mse_loss(linear_forward(x, weight, bias), y), updating weight and bias in
    place; returns the loss before the step."""
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr}")
    prediction = linear_forward(x, weight, bias)
    loss = mse_loss(prediction, y)
    _, grad_weight, grad_bias = linear_backward(mse_backward(prediction, y), x, weight)
    weight -= lr * grad_weight
    bias -= lr * grad_bias
    return loss
