"""b03-07: a multilayer perceptron for tabular data. Its first layer standardises the raw features with statistics
fitted on the training rows only and kept as buffers: the model carries its preprocessing (saved in its state_dict)
and cannot see a statistic of the rows it is tested on.

    TabularMLP(x_train, classes=2, hidden=(64, 32))(x_raw) -> logits [N, classes]
"""
from __future__ import annotations

from torch import Tensor, nn


class Standardize(nn.Module):
    """(x - mean) / std per column, with the mean and the sample std (n - 1) of `train` fitted once here; a constant
    column (std 0) is only centred. The same as torchkata.data.tables.standardize, as a layer."""

    def __init__(self, train: Tensor):
        super().__init__()
        if not train.is_floating_point():
            raise TypeError(f"train features must be floating point, got {train.dtype}")
        if train.dim() != 2 or len(train) < 2:
            raise ValueError(f"train features must be [rows, columns] with at least 2 rows, got {tuple(train.shape)}")
        std = train.std(dim=0)
        self.register_buffer("mean", train.mean(dim=0))
        self.register_buffer("std", std.where(std > 0, 1.0))

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != len(self.mean):
            raise ValueError(f"expected {len(self.mean)} feature columns, got {x.shape[-1]}")
        return (x - self.mean) / self.std


class TabularMLP(nn.Module):
    """Standardize(train) -> [Linear -> ReLU -> Dropout] per width in `hidden` -> Linear(classes): logits."""

    def __init__(self, train: Tensor, classes: int, hidden: tuple[int, ...] = (64, 32), dropout: float = 0.0):
        super().__init__()
        if classes < 2:
            raise ValueError(f"classes must be at least 2, got {classes}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.standardize = Standardize(train)
        layers, n_in = [], train.shape[1]
        for width in hidden:
            layers += [nn.Linear(n_in, width), nn.ReLU(), nn.Dropout(dropout)]
            n_in = width
        self.net = nn.Sequential(*layers, nn.Linear(n_in, classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self.standardize(x))
