"""a08: a two-layer MLP whose first layer is shared (tied). Write TiedMLP, the UntiedMLP baseline, untie and
parameter_count.

Grade it:  torchkata check a08
"""
from __future__ import annotations

from torch import Tensor, nn


class TiedMLP(nn.Module):
    """x -> relu(shared(x)) -> relu(shared(.)) -> head: ONE Linear(features, features) named `shared`, applied twice,
    and a Linear(features, classes) named `head`. Its parameters, in order: shared.weight, shared.bias, head.weight,
    head.bias. Input of any leading shape (..., features); anything else raises a ValueError naming the expected
    features and the shape it got."""

    def __init__(self, features: int, classes: int):
        super().__init__()
        raise NotImplementedError("a08: write TiedMLP.__init__")

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError("a08: write TiedMLP.forward")


class UntiedMLP(nn.Module):
    """The baseline of the same width: x -> relu(first(x)) -> relu(second(.)) -> head, `first` and `second` two
    separate Linear(features, features). The same ValueError for a wrong input shape."""

    def __init__(self, features: int, classes: int):
        super().__init__()
        raise NotImplementedError("a08: write UntiedMLP.__init__")

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError("a08: write UntiedMLP.forward")


def untie(model: TiedMLP) -> UntiedMLP:
    """An UntiedMLP computing the same function as `model` (same dtype): `first` and `second` start as copies
    (not views) of the shared layer, `head` as a copy of the head."""
    raise NotImplementedError("a08: write untie")


def parameter_count(model: nn.Module) -> int:
    """How many numbers the model learns: a shared tensor counts once."""
    raise NotImplementedError("a08: write parameter_count")
