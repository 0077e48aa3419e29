"""a06 and m1-core-2: backward hooks that log each layer's largest gradient and hooks that change gradients.

Two kinds of hook see gradients during backward:
- `module.register_full_backward_hook(hook)`: hook(module, grad_input, grad_output) once the gradients with respect
  to the module's inputs are computed; grad_output[0] is the gradient reaching the layer's output;
- `tensor.register_hook(hook)`: hook(grad) when the gradient of that tensor is computed, for a parameter before
  it is accumulated into `.grad`. Returning a tensor replaces the gradient; returning None leaves it as it is.
Both return a handle whose `remove()` takes the hook off again.

    log = MaxGradientLog(model)                       # logs only
    handles = clip_gradients(model.fc1, 0.01)         # changes what reaches fc1's parameters' .grad
    fit(..., before_step=lambda model, step: log.end_step(step))
    log.write_csv("max_gradients.csv"); log.remove(); remove(handles)

Tensor hooks on one tensor run in the order they were registered, each seeing what the one before returned: a
log registered after a modifying hook records the modified gradient.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle


def parameter_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The modules holding parameters of their own, by qualified name, in registration order (containers,
    which only hold other modules' parameters, are left out)."""
    return {name: module for name, module in model.named_modules()
            if any(True for _ in module.parameters(recurse=False))}


class MaxGradientLog:
    """Per layer, the largest |gradient| of each training step, recorded by backward hooks: "output" is the
    gradient reaching the layer's output (a full backward hook), and one column per parameter ("weight",
    "bias") its gradient (tensor hooks). Within a step (several backward passes when gradients are accumulated)
    the largest value is kept; `end_step(step)` closes the step and appends one row per layer to `rows`."""

    def __init__(self, model: nn.Module):
        self.layers = parameter_layers(model)
        if not self.layers:
            raise ValueError(f"{type(model).__name__} has no parameters to log gradients of")
        self.rows: list[dict] = []
        self.current: dict[str, dict[str, float]] = {}
        self.handles: list[RemovableHandle] = []
        self.columns = {name: ["output", *(n for n, _ in layer.named_parameters(recurse=False))]
                        for name, layer in self.layers.items()}
        for name, layer in self.layers.items():
            self.handles.append(layer.register_full_backward_hook(self._layer_hook(name)))
            for param_name, param in layer.named_parameters(recurse=False):
                self.handles.append(param.register_hook(self._parameter_hook(name, param_name)))

    def _record(self, layer: str, column: str, grad: Tensor) -> None:
        value = grad.abs().max().item() if grad.numel() else 0.0
        values = self.current.setdefault(layer, {})
        values[column] = max(values.get(column, value), value)

    def _layer_hook(self, name: str):
        def hook(module, grad_input, grad_output):
            self._record(name, "output", grad_output[0])  # a layer with several outputs: the first
        return hook

    def _parameter_hook(self, layer: str, param_name: str):
        def hook(grad):
            self._record(layer, param_name, grad)  # returns None: the gradient goes on unchanged
        return hook

    def end_step(self, step: int) -> None:
        """Close a step: one row {"step", "layer", "output", "weight", ...} per layer that saw a gradient, in the
        model's order (backward visits the layers last to first)."""
        self.rows += [{"step": step, "layer": name, **{c: self.current[name][c] for c in self.columns[name]
                                                       if c in self.current[name]}}
                      for name in self.layers if name in self.current]
        self.current = {}

    def series(self, column: str = "output") -> dict[str, list[float]]:
        """{layer: [the column's value at each step]} for the layers that have the column, nan where a step saw no
        such gradient: for a plot."""
        series: dict[str, list[float]] = {name: [] for name, columns in self.columns.items() if column in columns}
        for row in self.rows:
            if row["layer"] in series:
                series[row["layer"]].append(row.get(column, math.nan))
        return series

    def write_csv(self, path: str | Path) -> Path:
        """The rows as CSV, one line per step and layer; values written with repr, so they read back exactly."""
        columns = list(dict.fromkeys(key for row in self.rows for key in row))
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows({k: repr(v) if isinstance(v, float) else v for k, v in row.items()} for row in self.rows)
        return path

    def remove(self) -> None:
        """Take every hook off the model: later backward passes record nothing."""
        remove(self.handles)


def scale_gradients(module: nn.Module, factor: float) -> list[RemovableHandle]:
    """Multiply the gradient of each of the module's parameters by `factor` as autograd computes it."""
    if not math.isfinite(factor):
        raise ValueError(f"factor must be a finite number, got {factor}")
    return [param.register_hook(lambda grad: grad * factor) for param in module.parameters()]


def clip_gradients(module: nn.Module, limit: float) -> list[RemovableHandle]:
    """Clamp each gradient entry of the module's parameters to [-limit, limit] (clip_grad_value_, in backward)."""
    if not limit > 0:
        raise ValueError(f"limit must be positive, got {limit}")
    return [param.register_hook(lambda grad: grad.clamp(-limit, limit)) for param in module.parameters()]


def zero_gradients(module: nn.Module) -> list[RemovableHandle]:
    """Replace the gradients of the module's parameters by zeros: the layer stops learning from the loss (weight
    decay and momentum still move it, as they would with its .grad zeroed by hand)."""
    return [param.register_hook(lambda grad: grad.new_zeros(grad.shape)) for param in module.parameters()]


def remove(handles: list[RemovableHandle]) -> None:
    """Remove the hooks, emptying the list, so that removing twice is harmless."""
    while handles:
        handles.pop().remove()
