"""b02-08: gradient flow. Build a deep MLP, initialise it two ways, and measure each layer's gradient norm.

Grade it:  torchkata check b02-08
"""
from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}
SMALL_STD = 0.1  # the "small" initialisation: a fixed std whatever the layer's width


def deep_mlp(sizes: list[int], activation: str) -> nn.Sequential:
    """nn.Sequential of Linear layers sizes[0] -> sizes[1] -> ... -> sizes[-1], with ACTIVATIONS[activation]()
    between them and none after the last. ValueError naming an unknown activation, or `sizes` shorter than 2."""
    raise NotImplementedError("b02-08: write deep_mlp")


def init_std(scheme: str, fan_in: int) -> float:
    """The std of a layer's initial weights: "small" -> SMALL_STD, "he" -> sqrt(2 / fan_in).
    ValueError naming any other scheme."""
    raise NotImplementedError("b02-08: write init_std")


def init_weights(model: nn.Module, scheme: str, generator: torch.Generator) -> None:
    """In place: every Linear layer's weight (in model.modules() order) drawn with
    weight.normal_(0.0, init_std(scheme, in_features), generator=generator); biases set to zero. The weights stay
    leaves that require grad."""
    raise NotImplementedError("b02-08: write init_weights")


def linear_layers(model: nn.Module) -> dict[str, nn.Linear]:
    """{qualified name: layer} of the model's Linear layers, in order. ValueError naming the model's class if none."""
    raise NotImplementedError("b02-08: write linear_layers")


def gradient_norms(model: nn.Module) -> dict[str, float]:
    """{layer name: L2 norm of its weight's .grad} for every Linear layer, first to last.
    ValueError naming a layer whose weight has no gradient yet."""
    raise NotImplementedError("b02-08: write gradient_norms")


def first_to_last_ratio(norms: dict[str, float]) -> float:
    """The first layer's norm divided by the last layer's."""
    raise NotImplementedError("b02-08: write first_to_last_ratio")
