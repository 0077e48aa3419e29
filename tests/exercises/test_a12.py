"""a12: the computation-graph visualiser, graded against an independent walk of autograd's next_functions and
against small graphs derived by hand."""
import json
import re
from collections import Counter
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from grading import failing_checks

EXERCISE = "a12"


@pytest.fixture(scope="module")
def viz(impl_for):
    return impl_for(EXERCISE)


class Tied(nn.Module):
    """One weight used twice: a single leaf with two consumers."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(4, 4))

    def forward(self, x):
        return torch.tanh(x @ self.w) @ self.w


class Residual(nn.Module):
    """A branch: h feeds both the second layer and the sum."""

    def __init__(self):
        super().__init__()
        self.inner, self.outer = nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, x):
        h = torch.relu(self.inner(x))
        return self.outer(h) + h


def models():
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3))
    return {"mlp": mlp, "tied": Tied(), "residual": Residual()}


def loss_of(model):
    return model(torch.randn(2, 4)).pow(2).mean()


def expected_walk(roots):
    """Breadth-first from the roots, written independently: nodes in order, each once, and edges per use."""
    order, edges = [], Counter()
    for fn in roots:
        if fn not in order:
            order.append(fn)
    i = 0
    while i < len(order):
        for child, _ in order[i].next_functions:
            if child is not None:
                edges[(child, order[i])] += 1
                if child not in order:
                    order.append(child)
        i += 1
    return order, edges


def expected_layers(nodes, edges):
    consumers = {fn: [dst for (src, dst), n in edges.items() for _ in range(n) if src is fn] for fn in nodes}
    memo = {}

    def depth(fn):
        if fn not in memo:
            memo[fn] = max((depth(dst) + 1 for dst in consumers[fn]), default=0)
        return memo[fn]
    return {fn: depth(fn) for fn in nodes}


def check_models_match_independent_walk(viz):
    for name, model in models().items():
        loss = loss_of(model)
        graph = viz.trace(loss)
        nodes, edges = expected_walk([loss.grad_fn])
        assert graph.nodes == nodes, name  # the same nodes, each once, in breadth-first order
        assert Counter(graph.edges) == edges and len(graph.edges) == sum(edges.values()), name


def check_hand_derived_square(viz):
    w = torch.randn(3, requires_grad=True)
    out = (w * w).sum()
    graph = viz.trace(out, names={"w": w})
    total, mul = out.grad_fn, out.grad_fn.next_functions[0][0]
    acc = mul.next_functions[0][0]
    assert graph.nodes == [total, mul, acc]
    assert Counter(graph.edges) == Counter({(acc, mul): 2, (mul, total): 1})  # w used twice by one Mul
    assert graph.labels == {total: "SumBackward0", mul: "MulBackward0", acc: "w\n(3,)"}


def check_shared_weight_is_one_leaf(viz):
    model = Tied()
    graph = viz.trace(loss_of(model), names=dict(model.named_parameters()))
    leaves = [fn for fn in graph.nodes if hasattr(fn, "variable")]
    assert len(leaves) == 1 and leaves[0].variable is model.w
    consumers = [dst for src, dst in graph.edges if src is leaves[0]]
    assert len(consumers) == 2 and consumers[0] is not consumers[1]
    assert all(graph.labels[c] == "MmBackward0" for c in consumers)
    assert graph.labels[leaves[0]] == "w\n(4, 4)"


def check_branch_has_two_consumers(viz):
    model = Residual()
    graph = viz.trace(loss_of(model), names=dict(model.named_parameters()))
    uses = Counter(src for src, _ in graph.edges)
    relu = [fn for fn in graph.nodes if graph.labels[fn] == "ReluBackward0"]
    assert len(relu) == 1 and uses[relu[0]] == 2
    assert sorted(graph.labels[fn] for fn in graph.nodes if hasattr(fn, "variable")) == [
        "inner.bias\n(4,)", "inner.weight\n(4, 4)", "outer.bias\n(4,)", "outer.weight\n(4, 4)"]


def check_several_outputs(viz):
    w = torch.randn(3, requires_grad=True)
    h = w.exp()
    y = h.sum()
    graph = viz.trace([y, h, y])  # h is an output and an input of y; y given twice
    nodes, edges = expected_walk([y.grad_fn, h.grad_fn])
    assert graph.nodes == nodes and Counter(graph.edges) == edges
    assert graph.labels[graph.nodes[-1]] == "leaf\n(3,)"  # no names: a leaf is called 'leaf'
    assert viz.layers(graph) == {y.grad_fn: 0, h.grad_fn: 1, nodes[-1]: 2}


def check_inputs_without_grad_are_left_out(viz):
    w = torch.randn(2, requires_grad=True)
    out = (w * torch.randn(2) + 3.0).sum()
    graph = viz.trace(out)
    assert [graph.labels[fn].split("\n")[0] for fn in graph.nodes] == [
        "SumBackward0", "AddBackward0", "MulBackward0", "leaf"]
    assert len(graph.edges) == 3


def check_deep_graph(viz):
    x = torch.zeros((), requires_grad=True)
    y = x
    for _ in range(3000):  # far deeper than Python's recursion limit
        y = y + 1
    graph = viz.trace(y)
    assert len(graph.nodes) == 3001 and len(graph.edges) == 3000
    assert max(viz.layers(graph).values()) == 3000


def check_error_without_grad_fn(viz):
    w = torch.randn(2, requires_grad=True)
    for outputs, index in [(torch.randn(2), "0"), (w, "0"), ([w.sum(), torch.ones(1)], "1")]:
        with pytest.raises(ValueError, match=rf"output {index}\b.*grad_fn"):
            viz.trace(outputs)


def check_layers(viz):
    for name, model in models().items():
        graph = viz.trace(loss_of(model))
        nodes, edges = expected_walk([graph.nodes[0]])
        assert viz.layers(graph) == expected_layers(nodes, edges), name


def check_layout(viz):
    model = Residual()
    graph = viz.trace(loss_of(model))
    layer, pos = viz.layers(graph), viz.layout(graph)
    assert set(pos) == set(graph.nodes)
    rows = {}
    for fn in graph.nodes:
        assert pos[fn][1] == -layer[fn]
        rows.setdefault(layer[fn], []).append(pos[fn][0])
    for xs in rows.values():  # one apart, in the walk's order, centred on 0
        assert xs == [i - (len(xs) - 1) / 2 for i in range(len(xs))]
    assert any(len(xs) > 1 for xs in rows.values())


def parse_dot(text):
    nodes = {m[1]: (json.loads(m[2]), m[3]) for m in re.finditer(r'^\s*(n\d+) \[label=("(?:[^"\\]|\\.)*"), '
                                                                  r'shape=(\w+)\];$', text, re.M)}
    edges = re.findall(r"^\s*(n\d+) -> (n\d+);$", text, re.M)
    return nodes, edges


def check_dot(viz):
    for name, model in models().items():
        graph = viz.trace(loss_of(model), names=dict(model.named_parameters()))
        text = viz.to_dot(graph)
        assert text.startswith('digraph "autograd" {') and text.rstrip().endswith("}")
        nodes, edges = parse_dot(text)
        ids = {fn: f"n{i}" for i, fn in enumerate(graph.nodes)}
        assert nodes == {ids[fn]: (graph.labels[fn], "ellipse" if hasattr(fn, "variable") else "box")
                         for fn in graph.nodes}, name
        assert Counter(edges) == Counter((ids[s], ids[d]) for s, d in graph.edges), name
        assert "rankdir=BT;" in text
    assert viz.to_dot(graph, name="res").startswith('digraph "res" {')


def check_dot_escapes_labels(viz):
    w = torch.randn(2, requires_grad=True)
    graph = viz.trace(w.sum(), names={'say "hi" to ε': w})
    text = viz.to_dot(graph)
    nodes, _ = parse_dot(text)
    assert nodes["n1"] == ('say "hi" to ε\n(2,)', "ellipse")
    assert "ε" in text  # as itself: DOT reads no \u escapes


CHECKS = [check_models_match_independent_walk, check_hand_derived_square, check_shared_weight_is_one_leaf,
          check_branch_has_two_consumers, check_several_outputs, check_inputs_without_grad_are_left_out,
          check_deep_graph, check_error_without_grad_fn, check_layers, check_layout, check_dot,
          check_dot_escapes_labels]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_graph_viz(viz, check):
    check(viz)


def reference_with(**overrides):
    from torchkata.nn import graph_viz

    return SimpleNamespace(**{**vars(graph_viz), **overrides})


def edges_once(outputs, names=None):
    from torchkata.nn import graph_viz

    graph = graph_viz.trace(outputs, names)
    return graph._replace(edges=list(dict.fromkeys(graph.edges)))  # a weight used twice by one op counted once


def recursive_trace(outputs, names=None):
    from torchkata.nn import graph_viz

    graph = graph_viz.Graph(nodes=[], labels={}, edges=[])

    def visit(fn):
        graph.nodes.append(fn)
        graph.labels[fn] = fn.name()
        for child, _ in fn.next_functions:
            if child is not None:
                graph.edges.append((child, fn))
                if child not in graph.nodes:
                    visit(child)
    visit(outputs.grad_fn)
    return graph


def shortest_layers(graph):
    from torchkata.nn import graph_viz

    layer = {fn: 0 for fn in graph.nodes if not any(src is fn for src, _ in graph.edges)}
    for fn in graph_viz.trace([n for n in graph.nodes if n in layer][0]).nodes if layer else []:
        for child, _ in fn.next_functions:
            if child is not None and child not in layer:
                layer[child] = layer[fn] + 1
    return layer


@pytest.mark.suite_check
@pytest.mark.parametrize("broken", [
    reference_with(trace=edges_once), reference_with(trace=recursive_trace),
    reference_with(layers=shortest_layers),
    reference_with(to_dot=lambda graph, name="autograd": "digraph autograd {\n}\n"),
], ids=["edges_once", "recursive", "shortest_layers", "empty_dot"])
def test_broken_visualiser_is_rejected(broken):
    assert failing_checks(CHECKS, broken)


@pytest.mark.suite_check
def test_walks_next_functions_itself():
    import inspect

    from torchkata.nn import graph_viz

    source = inspect.getsource(graph_viz)
    assert "next_functions" in source and "torchviz" not in source and "import graphviz" not in source
