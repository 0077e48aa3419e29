"""a12: a computation-graph visualiser: walk autograd's graph from the outputs and write it as DOT text and a layout.

Grade it:  torchkata check a12
"""
from __future__ import annotations

from typing import NamedTuple

from torch import Tensor


class Graph(NamedTuple):
    nodes: list          # autograd Nodes, each once, breadth-first from the outputs (the outputs' grad_fn first)
    labels: dict         # Node -> its text: the op's name, or a leaf's name and shape
    edges: list          # (input Node, consuming Node), once per use: the direction the forward data flowed


def trace(outputs: Tensor | list[Tensor], names: dict[str, Tensor] | None = None) -> Graph:
    """The autograd graph behind `outputs` (a tensor or several), found by following `grad_fn` and
    `next_functions` breadth-first: each Node once (the outputs' grad_fns first, in order), each edge
    (input, consumer) once per use (`w * w` gives two). A leaf's AccumulateGrad node is labelled
    f"{name}\\n{tuple(shape)}", its name from `names` (e.g. dict(model.named_parameters())) or 'leaf'; any
    other node by `fn.name()`. An output without a grad_fn is a ValueError naming it: "output {i} has no grad_fn"."""
    raise NotImplementedError("a12: write trace")


def layers(graph: Graph) -> dict:
    """Node -> layer: 0 for a node nothing consumes, and each input one below its lowest consumer (the longest
    path from the outputs). Must work on graphs thousands of nodes deep."""
    raise NotImplementedError("a12: write layers")


def layout(graph: Graph) -> dict:
    """Node -> (x, y): y = -layer, and each layer's nodes one apart, centred on x = 0, in graph.nodes order."""
    raise NotImplementedError("a12: write layout")


def to_dot(graph: Graph, name: str = "autograd") -> str:
    """Graphviz DOT text: `digraph "<name>" {`, `rankdir=BT;`, one line `n<i> [label="...", shape=ellipse|box];`
    per node (n<i> is graph.nodes[i]; ellipse for a leaf, box for an op; the label a JSON-quoted string), then
    one line `n<a> -> n<b>;` per edge (input -> consumer), and `}`."""
    raise NotImplementedError("a12: write to_dot")
