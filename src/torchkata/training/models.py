"""Small models that several trainings share."""
from __future__ import annotations

from collections import OrderedDict

from torch import nn


def mlp(hidden: int, depth: int = 3) -> nn.Sequential:
    """64 -> hidden (-> hidden ...) -> 10 with ReLUs, its linear layers named fc1, fc2, ..."""
    sizes = [64] + [hidden] * (depth - 1) + [10]
    layers = OrderedDict()
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:]), 1):
        layers[f"fc{i}"] = nn.Linear(n_in, n_out)
        if i < depth:
            layers[f"relu{i}"] = nn.ReLU()
    return nn.Sequential(layers)
