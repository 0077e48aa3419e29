"""b02-08: gradient flow, the size of each layer's gradient through a deep network.

Backpropagation multiplies the gradient, layer by layer from the loss back to the input, by each layer's Jacobian:
Wᵀ and the activation's derivative. With sigmoids (derivative at most 1/4) and small weights every factor is below
1, and the gradient reaching the first layers shrinks geometrically with depth: it vanishes, and those layers do not
learn. With ReLUs (derivative 0 or 1) and He initialisation (std √(2/fan_in), Kaiming He et al. 2015) each layer keeps
the gradient's variance about the same, and the first layer learns as fast as the last.

    model = deep_mlp([64] + [64] * 9 + [10], "sigmoid")
    init_weights(model, "small", generator)
    fit(..., before_step=lambda model, step: history.append(gradient_norms(model)))
"""
from __future__ import annotations

import math

import torch
from torch import nn

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}
SMALL_STD = 0.1  # the "small" initialisation: a fixed std whatever the layer's width


def deep_mlp(sizes: list[int], activation: str) -> nn.Sequential:
    """Linear layers sizes[0] -> sizes[1] -> ... -> sizes[-1] with `activation` between them (none after the last)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; known: {sorted(ACTIVATIONS)}")
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least an input and an output size, got {sizes}")
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        layers += [nn.Linear(n_in, n_out), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers[:-1])


def init_std(scheme: str, fan_in: int) -> float:
    """The std of a layer's initial weights: "small" a fixed SMALL_STD, "he" √(2 / fan_in)."""
    if scheme == "small":
        return SMALL_STD
    if scheme == "he":
        return math.sqrt(2.0 / fan_in)
    raise ValueError(f"unknown initialisation {scheme!r}; known: 'small', 'he'")


@torch.no_grad()
def init_weights(model: nn.Module, scheme: str, generator: torch.Generator) -> None:
    """Every Linear layer's weight drawn from N(0, init_std(scheme, fan_in)²), in the model's order, from
    `generator`; biases zero."""
    for layer in linear_layers(model).values():
        layer.weight.normal_(0.0, init_std(scheme, layer.in_features), generator=generator)
        if layer.bias is not None:
            layer.bias.zero_()


def linear_layers(model: nn.Module) -> dict[str, nn.Linear]:
    layers = {name: m for name, m in model.named_modules() if isinstance(m, nn.Linear)}
    if not layers:
        raise ValueError(f"{type(model).__name__} has no Linear layers")
    return layers


def gradient_norms(model: nn.Module) -> dict[str, float]:
    """{layer name: L2 norm of its weight's gradient}, for every Linear layer, first to last."""
    norms = {}
    for name, layer in linear_layers(model).items():
        if layer.weight.grad is None:
            raise ValueError(f"layer {name!r} has no gradient: call backward first")
        norms[name] = layer.weight.grad.norm().item()
    return norms


def first_to_last_ratio(norms: dict[str, float]) -> float:
    """The first layer's gradient norm over the last one's: about 1 where the gradient flows, tiny where it vanishes."""
    first, *_, last = norms.values()
    return first / last
