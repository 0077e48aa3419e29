"""a11: your own ModuleList (without nn.ModuleList, nn.Sequential or nn.ModuleDict), and a network of dynamic depth
built with it.

Grade it:  torchkata check a11
"""
from __future__ import annotations

from typing import Iterable, Iterator

from torch import Tensor, nn


class ModuleList(nn.Module):
    """A list of modules that nn.Module sees: parameters(), named_modules(), .to(), .train() and the state_dict cover
    them, under the keys "0", "1", ... in order (renumbered after every insert or del, as nn.ModuleList's are).

    m[i] (negative too; an IndexError naming i when out of range), m[a:b:c] (a ModuleList of the same type),
    m[i] = module, del m[i] / del m[a:b], len(m), iter(m), m += modules, append and extend (return self; a TypeError
    for what is not a module or not an iterable), insert(index, module) as list.insert (negative and out-of-range
    indices too)."""

    def __init__(self, modules: Iterable[nn.Module] | None = None):
        super().__init__()
        raise NotImplementedError("a11: write ModuleList")

    def __getitem__(self, index: int | slice) -> nn.Module | ModuleList:
        raise NotImplementedError

    def __setitem__(self, index: int, module: nn.Module) -> None:
        raise NotImplementedError

    def __delitem__(self, index: int | slice) -> None:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def __iter__(self) -> Iterator[nn.Module]:
        raise NotImplementedError

    def __iadd__(self, modules: Iterable[nn.Module]) -> ModuleList:
        raise NotImplementedError

    def append(self, module: nn.Module) -> ModuleList:
        raise NotImplementedError

    def extend(self, modules: Iterable[nn.Module]) -> ModuleList:
        raise NotImplementedError

    def insert(self, index: int, module: nn.Module) -> None:
        raise NotImplementedError


def block(width: int) -> nn.Sequential:
    """One residual branch, an nn.Sequential of Linear(width, width), ReLU, Linear(width, width) (so that block[0] and
    block[2] are its two layers)."""
    raise NotImplementedError("a11: write block")


class DynamicDepthMLP(nn.Module):
    """stem = Linear(features, width) and relu; `blocks` = container(block(width) for each of `depth`), the container
    your ModuleList when None: h = h + block(h);
    head = Linear(width, classes). forward(x, depth=None) runs the first `depth` blocks (all when None; a ValueError
    naming depth outside 0..len(blocks)). grow() appends a block that leaves the output unchanged and still learns."""

    def __init__(self, features: int, width: int, classes: int, depth: int, container: type | None = None):
        super().__init__()
        raise NotImplementedError("a11: write DynamicDepthMLP")

    def forward(self, x: Tensor, depth: int | None = None) -> Tensor:
        raise NotImplementedError

    def grow(self) -> None:
        raise NotImplementedError
