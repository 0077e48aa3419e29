"""a08: a two-layer MLP whose first layer is shared (tied): one nn.Linear applied twice, then a classifier head.

    x -> relu(shared(x)) -> relu(shared(.)) -> head -> logits

Sharing is registering ONE module (one weight, one bias) and calling it twice. Autograd then sums the gradients of
both uses into that one weight, `parameters()` and the state_dict list it once, and an optimizer updates it once.
The untied baseline has the same width and depth with two separate first layers: about twice the parameters there.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class TiedMLP(nn.Module):
    """`shared`: Linear(features, features), used twice; `head`: Linear(features, classes)."""

    def __init__(self, features: int, classes: int):
        super().__init__()
        self.features = features
        self.shared = nn.Linear(features, features)  # square: its output is its own input the second time
        self.head = nn.Linear(features, classes)

    def forward(self, x: Tensor) -> Tensor:
        check_features(x, self.features)
        hidden = F.relu(self.shared(x))
        return self.head(F.relu(self.shared(hidden)))


class UntiedMLP(nn.Module):
    """The baseline of the same width: `first` and `second` are separate Linear(features, features) layers."""

    def __init__(self, features: int, classes: int):
        super().__init__()
        self.features = features
        self.first = nn.Linear(features, features)
        self.second = nn.Linear(features, features)
        self.head = nn.Linear(features, classes)

    def forward(self, x: Tensor) -> Tensor:
        check_features(x, self.features)
        return self.head(F.relu(self.second(F.relu(self.first(x)))))


def check_features(x: Tensor, features: int) -> None:
    if x.shape[-1:] != (features,):  # a 0-d tensor's is (), never equal
        raise ValueError(f"expected input of shape (..., {features}), got {tuple(x.shape)}")


def untie(model: TiedMLP) -> UntiedMLP:
    """An UntiedMLP computing the same function: both of its first layers start as copies of the shared one."""
    untied = UntiedMLP(model.features, model.head.out_features).to(model.shared.weight.dtype)
    for layer in (untied.first, untied.second):
        layer.load_state_dict(model.shared.state_dict())  # copies, outside autograd
    untied.head.load_state_dict(model.head.state_dict())
    return untied


def parameter_count(model: nn.Module) -> int:
    """Numbers the model learns; parameters() yields a shared tensor once, so it is counted once."""
    return sum(p.numel() for p in model.parameters())
