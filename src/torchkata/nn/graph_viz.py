"""a12: the forward computation graph, read back from autograd and written as DOT text or a layered layout.

Every tensor that autograd tracks points to the Node that made it (`t.grad_fn`, e.g. MulBackward0), and each
Node points to the Nodes of its inputs (`fn.next_functions`: (node, input index) pairs, None where the input
needs no gradient). A leaf that requires a gradient (a parameter) ends in an AccumulateGrad node whose
`.variable` is the leaf itself. So the graph the forward pass built is a walk from the outputs' grad_fn along
next_functions; a weight used twice is ONE AccumulateGrad node with two edges, which is why its gradient is a sum.

The walk is iterative (a graph thousands of ops deep would exceed Python's recursion limit) and visits each
Node once however many paths reach it; an edge is kept once per use, so `w * w` gives two edges w -> Mul.
"""
from __future__ import annotations

import json
from collections import Counter, deque
from typing import NamedTuple

from torch import Tensor


class Graph(NamedTuple):
    nodes: list          # autograd Nodes, each once, breadth-first from the outputs (the outputs' grad_fn first)
    labels: dict         # Node -> its text: the op's name, or a leaf's name and shape
    edges: list          # (input Node, consuming Node), once per use: the direction the forward data flowed


def leaf_label(fn, names: dict[int, str]) -> str:
    leaf = fn.variable
    return f"{names.get(id(leaf), 'leaf')}\n{tuple(leaf.shape)}"


def trace(outputs: Tensor | list[Tensor], names: dict[str, Tensor] | None = None) -> Graph:
    """The autograd graph behind `outputs` (a tensor or several). `names` (e.g. dict(model.named_parameters()))
    labels the leaves; an unnamed leaf is 'leaf'. An output without a grad_fn is a ValueError."""
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    by_id = {id(tensor): name for name, tensor in (names or {}).items()}
    seen: dict = {}  # an ordered set of the Nodes found
    for i, out in enumerate(outputs):
        if out.grad_fn is None:
            raise ValueError(f"output {i} has no grad_fn: it is a leaf or does not require grad, so no graph made it")
        seen.setdefault(out.grad_fn, None)
    queue, edges = deque(seen), []
    while queue:
        fn = queue.popleft()
        for child, _ in fn.next_functions:
            if child is None:  # an input that needs no gradient (data, a constant)
                continue
            edges.append((child, fn))
            if child not in seen:
                seen[child] = None
                queue.append(child)
    labels = {fn: leaf_label(fn, by_id) if hasattr(fn, "variable") else fn.name() for fn in seen}
    return Graph(nodes=list(seen), labels=labels, edges=edges)


def layers(graph: Graph) -> dict:
    """Node -> layer: 0 for a node nothing consumes (an output), and every input one layer below its lowest
    consumer (the longest path from the outputs), so that every edge points up."""
    waiting = Counter(src for src, _ in graph.edges)  # uses of each node not yet given a layer
    inputs: dict = {fn: [] for fn in graph.nodes}
    for src, dst in graph.edges:
        inputs[dst].append(src)
    layer = {fn: 0 for fn in graph.nodes if fn not in waiting}
    ready = list(layer)
    while ready:
        fn = ready.pop()
        for src in inputs[fn]:
            layer[src] = max(layer.get(src, 0), layer[fn] + 1)
            waiting[src] -= 1
            if not waiting[src]:  # all its consumers are placed: its layer is final
                ready.append(src)
    return layer


def layout(graph: Graph) -> dict:
    """Node -> (x, y): y = -layer (outputs on top), and each layer's nodes one apart, centred on x = 0, in the
    order the walk found them."""
    layer = layers(graph)
    rows: dict[int, list] = {}
    for fn in graph.nodes:
        rows.setdefault(layer[fn], []).append(fn)
    return {fn: (i - (len(row) - 1) / 2, -depth) for depth, row in rows.items() for i, fn in enumerate(row)}


def to_dot(graph: Graph, name: str = "autograd") -> str:
    """The graph as Graphviz DOT text: node n<i> is graph.nodes[i], leaves as ellipses, ops as boxes, and one
    edge line per use, input -> consumer. Labels are quoted with their quotes and newlines escaped."""
    index = {fn: i for i, fn in enumerate(graph.nodes)}
    lines = [f"digraph {json.dumps(name)} {{", "  rankdir=BT;"]
    for fn, i in index.items():
        shape = "ellipse" if hasattr(fn, "variable") else "box"
        lines.append(f"  n{i} [label={json.dumps(graph.labels[fn], ensure_ascii=False)}, shape={shape}];")
    lines += [f"  n{index[src]} -> n{index[dst]};" for src, dst in graph.edges]
    return "\n".join(lines + ["}"]) + "\n"
