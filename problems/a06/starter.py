"""a06: backward hooks that log each layer's largest gradient, and hooks that change gradients. m1-core-2 asks for
the same module: write it once, here (problems/m1-core-2/starter.py is a link to this file).

Grade it:  torchkata check a06   and   torchkata check m1-core-2
"""
from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle


def parameter_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The modules holding parameters of their own (not only their children's), by qualified name as
    model.named_modules() gives it, in that order."""
    raise NotImplementedError("a06 and m1-core-2: write parameter_layers")


class MaxGradientLog:
    """Per layer, the largest |gradient| of each training step, recorded by backward hooks:
    - "output": the gradient reaching the layer's output (module.register_full_backward_hook's grad_output[0]);
    - one column per parameter of the layer's own ("weight", "bias", ...): its gradient (tensor.register_hook).
    Within a step (several backward passes when gradients are accumulated) the largest value is kept; an empty
    gradient counts as 0.0. The hooks only look: gradients go on unchanged.

    Attributes: `layers` (parameter_layers(model)), `current` ({layer: {column: value}} of the open step),
    `rows` (closed steps), `handles` (the hooks' handles)."""

    def __init__(self, model: nn.Module):
        """Register the hooks. ValueError naming the model's class if it has no parameters."""
        raise NotImplementedError("a06 and m1-core-2: write MaxGradientLog.__init__")

    def end_step(self, step: int) -> None:
        """Close a step: append one row {"step", "layer", "output", then the layer's parameters in their order}
        per layer that saw a gradient, in the model's order, and start a new one (`current` empty)."""
        raise NotImplementedError("a06 and m1-core-2: write MaxGradientLog.end_step")

    def series(self, column: str = "output") -> dict[str, list[float]]:
        """{layer: [the column's value at each step]} for the layers that have that column; nan where a step
        saw no gradient for it."""
        raise NotImplementedError("a06 and m1-core-2: write MaxGradientLog.series")

    def write_csv(self, path: str | Path) -> Path:
        """The rows as CSV (header: every column in order of first appearance; "\\n" line ends; floats written so
        that they read back exactly), creating missing folders; returns the path."""
        raise NotImplementedError("a06 and m1-core-2: write MaxGradientLog.write_csv")

    def remove(self) -> None:
        """Take every hook off the model; removing twice is harmless."""
        raise NotImplementedError("a06 and m1-core-2: write MaxGradientLog.remove")


def scale_gradients(module: nn.Module, factor: float) -> list[RemovableHandle]:
    """Hooks that multiply the gradient of each of the module's parameters (its children's too) by `factor`.
    ValueError naming the factor if it is not finite."""
    raise NotImplementedError("a06 and m1-core-2: write scale_gradients")


def clip_gradients(module: nn.Module, limit: float) -> list[RemovableHandle]:
    """Hooks that clamp each gradient entry of the module's parameters to [-limit, limit].
    ValueError naming the limit unless it is > 0."""
    raise NotImplementedError("a06 and m1-core-2: write clip_gradients")


def zero_gradients(module: nn.Module) -> list[RemovableHandle]:
    """Hooks that replace the gradients of the module's parameters by zeros."""
    raise NotImplementedError("a06 and m1-core-2: write zero_gradients")


def remove(handles: list[RemovableHandle]) -> None:
    """Remove the hooks and empty the list."""
    raise NotImplementedError("a06 and m1-core-2: write remove")
