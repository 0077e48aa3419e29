"""b03-07: a multilayer perceptron for tabular data, whose first layer standardises the raw features with
statistics fitted on the training rows only.

Grade it:  torchkata check b03-07
"""
from __future__ import annotations

from torch import Tensor, nn


class Standardize(nn.Module):
    """(x - mean) / std per column. `mean` and `std` (the sample std, n - 1) are fitted once, here, on `train`
    [rows, columns] and kept as buffers (saved in the state_dict, never trained); a constant column (std 0) is
    only centred (its std is stored as 1). TypeError for integer features, ValueError naming "rows" for anything
    but [rows, columns] with at least 2 rows."""

    def __init__(self, train: Tensor):
        super().__init__()
        raise NotImplementedError("b03-07: fit the training rows' statistics")

    def forward(self, x: Tensor) -> Tensor:
        """ValueError "expected F feature columns, got G" when the last dimension is not the training columns'."""
        raise NotImplementedError("b03-07: standardise with the fitted statistics")


class TabularMLP(nn.Module):
    """Standardize(train) -> [Linear -> ReLU -> Dropout(dropout)] per width in `hidden` -> Linear(classes): logits.
    ValueError naming `classes` below 2 and `dropout` outside [0, 1)."""

    def __init__(self, train: Tensor, classes: int, hidden: tuple[int, ...] = (64, 32), dropout: float = 0.0):
        super().__init__()
        raise NotImplementedError("b03-07: build the layers")

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError("b03-07: standardise, then the MLP")
