"""a11 experiment: the hand-written ModuleList against nn.ModuleList: the same random sequence of edits (append,
extend, insert, setitem, del, slices) applied to both, their state_dict keys compared after every edit; dynamic-depth
networks built with each container, loaded from one another, compared output for output; and the forward time of
the network by depth with either container (the container should cost nothing)."""
from __future__ import annotations

import torch
from torch import nn

from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"edits": 30, "depths": [1, 2, 4], "width": 16, "batch": 8, "bench_seconds": 0.02},
    "default": {"edits": 400, "depths": [1, 2, 4, 8, 16, 32], "width": 64, "batch": 64, "bench_seconds": 0.2},
    "full": {"edits": 4000, "depths": [1, 2, 4, 8, 16, 32, 64, 128], "width": 256, "batch": 256, "bench_seconds": 1.0},
}
EDITS = ("append", "extend", "insert", "setitem", "delitem", "delslice")


def random_edit(g: torch.Generator, containers: list, size: int) -> str:
    """Apply one random edit, the same to every container (the modules are shared: only the keys can differ)."""
    edit = EDITS[int(torch.randint(len(EDITS), (), generator=g))]
    new = [nn.Linear(size, size) for _ in range(int(torch.randint(1, 3, (), generator=g)))]
    n = len(containers[0])
    if n == 0 or edit == "append":
        edit = "append"
        for c in containers:
            c.append(new[0])
    elif edit == "extend":
        for c in containers:
            c.extend(new)
    elif edit == "insert":  # a non-negative index: nn.ModuleList.insert fails on negative ones
        index = int(torch.randint(n + 1, (), generator=g))
        for c in containers:
            c.insert(index, new[0])
    elif edit == "setitem":
        index = int(torch.randint(-n, n, (), generator=g))
        for c in containers:
            c[index] = new[0]
    elif edit == "delitem":
        index = int(torch.randint(-n, n, (), generator=g))
        for c in containers:
            del c[index]
    else:
        start, stop = sorted(torch.randint(n + 1, (2,), generator=g).tolist())
        for c in containers:
            del c[start:stop]
    return edit


def run(ctx: RunContext) -> None:
    p, g, impl = ctx.params, ctx.generator, ctx.impl
    ours, theirs = impl.ModuleList(), nn.ModuleList()
    mismatches, counts = 0, {e: 0 for e in EDITS}
    for step in range(p["edits"]):
        counts[random_edit(g, [ours, theirs], 2)] += 1
        mismatches += list(ours.state_dict()) != list(theirs.state_dict())
        mismatches += list(ours) != list(theirs)
        ctx.log("length", len(ours), step)
    ctx.metrics.update(edit_mismatches=mismatches, edits=counts, final_length=len(ours))

    # networks of every depth with each container: same keys, loaded from one another, the same outputs
    network_mismatches, output_error, times = 0, 0.0, {"yours": [], "nn.ModuleList": []}
    x = torch.randn(p["batch"], 64, generator=g)
    for depth in p["depths"]:
        mine = impl.DynamicDepthMLP(64, p["width"], 10, depth)
        native = impl.DynamicDepthMLP(64, p["width"], 10, depth, container=nn.ModuleList)
        network_mismatches += list(mine.state_dict()) != list(native.state_dict())
        native.load_state_dict(mine.state_dict())
        with torch.no_grad():
            output_error = max(output_error, float((mine(x) - native(x)).abs().max()))
        timing = compare(lambda: mine(x), lambda: native(x), p["bench_seconds"])
        times["yours"].append(timing["impl_s"])
        times["nn.ModuleList"].append(timing["native_s"])
        ctx.bench[f"depth_{depth}"] = timing
    ctx.metrics.update(state_dict_mismatches=mismatches + network_mismatches, network_mismatches=network_mismatches,
                       output_max_abs_error=output_error, depths=p["depths"])
    ctx.bench["ratio"] = ctx.bench[f"depth_{p['depths'][-1]}"]["ratio"]

    fig = ctx.figure(figsize=(5.5, 3.4))
    ax = fig.subplots()
    for who, style in (("yours", "o-"), ("nn.ModuleList", "x--")):
        ax.plot(p["depths"], [t * 1e3 for t in times[who]], style, label=who)
    ax.set(xscale="log", yscale="log", xlabel="residual blocks", ylabel="forward, median ms",
           title=f"a11: dynamic-depth MLP (width {p['width']}, batch {p['batch']})")
    ax.legend()
    ctx.save_figure(fig, "forward_time_by_depth")
