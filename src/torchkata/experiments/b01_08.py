"""b01-08 experiment: the hand-written one_hot against F.one_hot over random labels, and what encoding costs."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from torchkata.pipeline.bench import compare, median_seconds
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"cases": 16, "max_labels": 64, "bench_labels": 4096, "class_counts": [2, 16, 128],
              "bench_seconds": 0.02},
    "default": {"cases": 200, "max_labels": 4096, "bench_labels": 1 << 15, "class_counts": [2, 8, 32, 128, 512],
                "bench_seconds": 0.2},
    "full": {"cases": 2000, "max_labels": 65536, "bench_labels": 1 << 17, "class_counts": [2, 8, 32, 128, 512, 2048],
             "bench_seconds": 1.0},
}
DTYPES = [torch.int64, torch.int32, torch.int16, torch.uint8]


def compare_with_arange(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The other common way: compare every label with every class (num_classes reads and writes per label)."""
    return (labels.unsqueeze(-1) == torch.arange(num_classes)).long()


def run(ctx: RunContext) -> None:
    p, g = ctx.params, ctx.generator
    mismatches = 0
    for case in range(p["cases"]):
        rank = case % 4  # 0-d to 3-D labels
        n = int(torch.randint(1, p["max_labels"] + 1, (), generator=g))
        shape = [n] if rank == 1 else [int(torch.randint(1, 9, (), generator=g)) for _ in range(rank)]
        num_classes = int(torch.randint(1, 200, (), generator=g))
        labels = torch.randint(0, num_classes, shape, generator=g, dtype=DTYPES[case % len(DTYPES)])
        asked = -1 if case % 2 else num_classes
        mismatches += not torch.equal(ctx.impl.one_hot(labels, asked), F.one_hot(labels.long(), asked))
        ctx.log("mismatches_so_far", mismatches, case)
    ctx.metrics.update(mismatches=mismatches, cases=p["cases"])

    # the cost of encoding as the number of classes grows: output size is labels x classes
    times = {"yours_scatter": [], "compare_with_arange": [], "F_one_hot": []}
    for num_classes in p["class_counts"]:
        labels = torch.randint(0, num_classes, (p["bench_labels"],), generator=g)
        for name, fn in zip(times, (ctx.impl.one_hot, compare_with_arange, F.one_hot)):
            times[name].append(median_seconds(lambda: fn(labels, num_classes), p["bench_seconds"]))
    ctx.bench["seconds_by_num_classes"] = {name: dict(zip(map(str, p["class_counts"]), ts)) for name, ts in times.items()}
    fig = ctx.figure(figsize=(5, 3.2))
    ax = fig.subplots()
    for name, ts in times.items():
        ax.plot(p["class_counts"], [t * 1e3 for t in ts], "o-", label=name)
    ax.set(xscale="log", yscale="log", xlabel="num_classes", ylabel="ms per call",
           title=f"b01-08: one-hot of {p['bench_labels']:,} labels")
    ax.legend()
    ctx.save_figure(fig, "time_vs_num_classes")

    num_classes = p["class_counts"][-2]
    labels = torch.randint(0, num_classes, (p["bench_labels"],), generator=g)
    ctx.bench["one_hot"] = compare(lambda: ctx.impl.one_hot(labels, num_classes), lambda: F.one_hot(labels, num_classes),
                                   min_run_time=p["bench_seconds"])
    ctx.bench["ratio"] = ctx.bench["one_hot"]["ratio"]
    ctx.bench["shape"] = [p["bench_labels"], num_classes]
