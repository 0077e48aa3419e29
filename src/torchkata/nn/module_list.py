"""a11: ModuleList by hand, and a network whose depth is chosen at run time with it.

A plain Python list of modules is invisible to nn.Module: their parameters are not in parameters() (the optimizer
never sees them), .to() and .train() skip them, the state_dict misses them. Registration is what a container adds:
every module goes into self._modules under the key "0", "1", ..., which makes nn.Module's recursion find it and
names its parameters "<index>.<name>". Everything else is list behaviour, keeping the keys numbered 0..n-1 in
order after every change, so that state_dicts match nn.ModuleList's.
"""
from __future__ import annotations

import operator
from typing import Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ModuleList(nn.Module):
    def __init__(self, modules: Iterable[nn.Module] | None = None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _position(self, index: int) -> int:
        """`index` as a position 0..len-1 (negative counts from the end), or an IndexError that names it."""
        index = operator.index(index)  # a TypeError for a str or a float, as for a list
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for a ModuleList of length {len(self)}")
        return index % len(self)  # -1 -> len - 1; never a division by 0: an empty list has no valid index

    def _renumber(self, modules: Iterable[nn.Module]) -> None:
        self._modules = {str(i): module for i, module in enumerate(modules)}

    def __getitem__(self, index: int | slice) -> nn.Module | ModuleList:
        if isinstance(index, slice):
            return type(self)(list(self)[index])
        return self._modules[str(self._position(index))]

    def __setitem__(self, index: int, module: nn.Module) -> None:
        self.add_module(str(self._position(index)), module)  # add_module refuses what is not a Module

    def __delitem__(self, index: int | slice) -> None:
        modules = list(self)
        del modules[index if isinstance(index, slice) else self._position(index)]
        self._renumber(modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[nn.Module]:
        return iter(self._modules.values())

    def __iadd__(self, modules: Iterable[nn.Module]) -> ModuleList:
        return self.extend(modules)

    def append(self, module: nn.Module) -> ModuleList:
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[nn.Module]) -> ModuleList:
        if not isinstance(modules, Iterable):
            raise TypeError(f"ModuleList.extend needs an iterable of modules, got {type(modules).__name__}")
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: nn.Module) -> None:
        """As list.insert: before `index`, clamped to the ends (nn.ModuleList fails on negative indices)."""
        if not isinstance(module, nn.Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        modules = list(self)
        modules.insert(index, module)
        self._renumber(modules)


class DynamicDepthMLP(nn.Module):
    """features -> width, then `depth` residual blocks h + W2 relu(W1 h + b1) + b2 held in a ModuleList, then classes.

    forward(x, depth=k) runs only the first k blocks. grow() appends a block whose second layer starts at zero: the
    network computes the same function as before, and the new block still learns (zeroing the first layer instead
    would leave relu's gradient 0 at 0, and the block dead)."""

    def __init__(self, features: int, width: int, classes: int, depth: int, container: type | None = None):
        super().__init__()
        self.stem = nn.Linear(features, width)
        self.blocks = (container or ModuleList)(block(width) for _ in range(depth))  # ours unless told otherwise
        self.head = nn.Linear(width, classes)

    def forward(self, x: Tensor, depth: int | None = None) -> Tensor:
        if depth is not None and not 0 <= depth <= len(self.blocks):
            raise ValueError(f"depth must lie in 0..{len(self.blocks)}, got {depth}")
        h = F.relu(self.stem(x))
        for residual in self.blocks[:depth]:
            h = h + residual(h)
        return self.head(h)

    @torch.no_grad()
    def grow(self) -> None:
        new = block(self.stem.out_features).to(self.stem.weight)
        new[-1].weight.zero_()
        new[-1].bias.zero_()
        self.blocks.append(new)


def block(width: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
