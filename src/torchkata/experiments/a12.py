"""a12 experiment: the autograd graphs of three small models (an MLP, a weight used twice, a residual branch),
checked against an independent walk of next_functions, written as DOT files and drawn with matplotlib in the
layered layout; and what tracing a graph costs next to one backward pass through it."""
from __future__ import annotations

from collections import Counter

import torch
import torch.nn.functional as F
from torch import nn

from torchkata.pipeline.bench import compare
from torchkata.training.models import mlp

SCALES = {
    "smoke": {"batch": 8, "bench_depth": 3, "bench_width": 32, "bench_seconds": 0.02},
    "default": {"batch": 64, "bench_depth": 12, "bench_width": 64, "bench_seconds": 0.3},
    "full": {"batch": 256, "bench_depth": 48, "bench_width": 1024, "bench_seconds": 1.0},
}


class Tied(nn.Module):
    """An autoencoder whose decoder is the encoder's weight transposed: one leaf, two uses."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(64, 16)

    def forward(self, x):
        return torch.sigmoid(F.linear(torch.relu(self.encoder(x)), self.encoder.weight.t()))


class Residual(nn.Module):
    """A branch: the hidden state feeds the next layer and, around it, the sum."""

    def __init__(self):
        super().__init__()
        self.inner, self.block, self.head = nn.Linear(64, 32), nn.Linear(32, 32), nn.Linear(32, 10)

    def forward(self, x):
        h = torch.relu(self.inner(x))
        return self.head(h + torch.relu(self.block(h)))


def independent_edges(root) -> Counter:
    """Edges per use, found by a plain depth-first walk: what the traced graph must hold."""
    edges, seen, stack = Counter(), {root}, [root]
    while stack:
        fn = stack.pop()
        for child, _ in fn.next_functions:
            if child is not None:
                edges[(child, fn)] += 1
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
    return edges


def draw(ax, viz, graph, title: str) -> None:
    pos = viz.layout(graph)
    for (src, dst), uses in Counter(graph.edges).items():
        ax.annotate("", xy=pos[dst], xytext=pos[src],
                    arrowprops=dict(arrowstyle="->", color="0.45", shrinkA=9, shrinkB=9, lw=0.8))
        if uses > 1:  # a leaf or a result used twice by one op
            ax.text(*((a + b) / 2 for a, b in zip(pos[src], pos[dst])), f"×{uses}", fontsize=6, color="tab:red")
    for fn, (x, y) in pos.items():
        leaf = hasattr(fn, "variable")
        ax.text(x, y, graph.labels[fn].replace("Backward0", ""), ha="center", va="center", fontsize=5.5,
                bbox=dict(boxstyle="round" if leaf else "square", fc="#cfe3f7" if leaf else "0.92", ec="0.5", lw=0.5))
    xs, ys = [x for x, _ in pos.values()], [y for _, y in pos.values()]
    ax.set(xlim=(min(xs) - 0.8, max(xs) + 0.8), ylim=(min(ys) - 0.6, max(ys) + 0.6), title=title)
    ax.axis("off")


def run(ctx) -> None:
    p, g, viz = ctx.params, ctx.generator, ctx.impl
    x, y = torch.rand(p["batch"], 64, generator=g), torch.randint(0, 10, (p["batch"],), generator=g)
    models = {"mlp": (mlp(32, 3), lambda out: F.cross_entropy(out, y)),
              "tied": (Tied(), lambda out: F.mse_loss(out, x)),
              "residual": (Residual(), lambda out: F.cross_entropy(out, y))}
    fig = ctx.figure(figsize=(13, 7))
    axes = fig.subplots(1, len(models))
    mismatches, shapes = 0, {}
    for ax, (name, (model, loss_fn)) in zip(axes, models.items()):
        loss = loss_fn(model(x))
        graph = viz.trace(loss, names=dict(model.named_parameters()))
        found, want = Counter(graph.edges), independent_edges(loss.grad_fn)
        mismatches += sum(((found - want) + (want - found)).values())
        leaves = [fn for fn in graph.nodes if hasattr(fn, "variable")]
        shapes[name] = {"nodes": len(graph.nodes), "edges": len(graph.edges), "leaves": len(leaves),
                        "parameters": len(list(model.parameters())), "depth": max(viz.layers(graph).values()),
                        "most_uses_of_a_leaf": max(Counter(src for src, _ in graph.edges)[fn] for fn in leaves)}
        (ctx.out / "artifacts").mkdir(parents=True, exist_ok=True)
        (ctx.out / "artifacts" / f"{name}.dot").write_text(viz.to_dot(graph, name=name))
        draw(ax, viz, graph, f"{name}: {len(graph.nodes)} nodes, {len(graph.edges)} edges")
    fig.suptitle("a12: autograd graphs, outputs on top (blue: leaves, ×2: used twice by one op)")
    ctx.save_figure(fig, "graphs")
    ctx.metrics.update(edge_mismatches=mismatches, graphs=shapes)

    # tracing walks the same nodes as backward does, but runs no kernel: its cost is Python's per node
    deep = mlp(p["bench_width"], p["bench_depth"])
    loss = F.cross_entropy(deep(x), y)
    ctx.bench["trace_vs_backward"] = compare(lambda: viz.trace(loss), lambda: loss.backward(retain_graph=True),
                                             min_run_time=p["bench_seconds"])
    ctx.bench["ratio"] = ctx.bench["trace_vs_backward"]["ratio"]
    ctx.bench["bench_graph_nodes"] = len(viz.trace(loss).nodes)
