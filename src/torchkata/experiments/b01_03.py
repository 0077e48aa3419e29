"""b01-03 experiment: the three broadcasting examples against torch (torch.outer, torch.cdist, torch's implicit
broadcasting), their cost against the same expressions broadcast by torch, and a diagram of the stride-0 views."""
from __future__ import annotations

import torch

from torchkata.pipeline.bench import median_compare
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"cases": 10, "max_size": 16, "bench_n": 128, "bench_seconds": 0.02, "bench_repeats": 1},
    "default": {"cases": 200, "max_size": 64, "bench_n": 2048, "bench_seconds": 0.2, "bench_repeats": 3},
    "full": {"cases": 2000, "max_size": 256, "bench_n": 4096, "bench_seconds": 1.0, "bench_repeats": 5},
}


def max_abs_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got - want).abs().max()) if want.numel() else 0.0


def errors(impl, p: dict, g: torch.Generator) -> dict[str, float]:
    """The largest error of each example against torch over random float64 cases."""
    def size() -> int:
        return int(torch.randint(1, p["max_size"] + 1, (), generator=g))

    worst = {"outer": 0.0, "pairwise_sq_distances": 0.0, "normalize": 0.0}
    for case in range(p["cases"]):
        a, b = torch.randn(size(), generator=g, dtype=torch.float64), torch.randn(size(), generator=g,
                                                                                   dtype=torch.float64)
        worst["outer"] = max(worst["outer"], max_abs_error(impl.outer(a, b), torch.outer(a, b)))
        batch, d = [size() % 3 + 1 for _ in range(case % 3)], size() % 8 + 1
        x = torch.randn(*batch, size(), d, generator=g, dtype=torch.float64)
        y = torch.randn(size(), d, generator=g, dtype=torch.float64)
        want = torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist") ** 2
        worst["pairwise_sq_distances"] = max(worst["pairwise_sq_distances"],
                                             max_abs_error(impl.pairwise_sq_distances(x, y), want))
        images = torch.randn(2, 3, size(), size(), generator=g, dtype=torch.float64)
        dim = -3 if case % 2 else 1
        mean, std = torch.randn(3, generator=g, dtype=torch.float64), torch.rand(3, generator=g, dtype=torch.float64)
        want = (images - mean[:, None, None]) / (std[:, None, None] + 0.5)
        worst["normalize"] = max(worst["normalize"], max_abs_error(impl.normalize(images, mean, std + 0.5, dim), want))
    return worst


def draw_views(ctx: RunContext, impl) -> None:
    """outer(a, b) for a of 3 and b of 4: which storage element each cell of the two expanded views reads."""
    a, b = torch.arange(3.0), torch.arange(4.0)
    shape = (3, 4)
    views = {"a as a column, expanded": impl.along(a, torch.empty(shape), 0),
             "b as a row, expanded": impl.along(b, torch.empty(shape), 1)}
    fig = ctx.figure(figsize=(10.5, 3.2))
    axes = fig.subplots(1, 3)
    for ax, (title, view) in zip(axes, views.items()):
        index = view.stride(0) * torch.arange(3)[:, None] + view.stride(1) * torch.arange(4)
        ax.imshow(index, cmap="Pastel1", vmin=0, vmax=8)
        for i in range(3):
            for j in range(4):
                ax.text(j, i, f"[{int(index[i, j])}]", ha="center", va="center", fontsize=9)
        ax.set_title(f"{title}\nshape (3, 4), strides {view.stride()}", fontsize=9)
        ax.set(xticks=[], yticks=[])
    out = impl.outer(a + 1, b + 1)
    axes[2].imshow(out, cmap="Blues")
    for i in range(3):
        for j in range(4):
            axes[2].text(j, i, f"{int(out[i, j])}", ha="center", va="center", fontsize=9)
    axes[2].set_title("outer(a + 1, b + 1): one multiply\nover the two views, nothing copied", fontsize=9)
    axes[2].set(xticks=[], yticks=[])
    fig.suptitle("b01-03: each cell shows the storage index it reads; stride 0 repeats an element", fontsize=10)
    ctx.save_figure(fig, "stride0_views")


def run(ctx: RunContext) -> None:
    p, g, impl = ctx.params, ctx.generator, ctx.impl
    worst = errors(impl, p, g)
    ctx.metrics.update(max_abs_error=max(worst.values()), max_abs_error_by_example=worst, cases=p["cases"])
    like = torch.empty(4, 3, 8, 8)
    v = torch.randn(3, generator=g)
    ctx.metrics["along_copies_data"] = int(impl.along(v, like, 1).data_ptr() != v.data_ptr())
    draw_views(ctx, impl)

    n, seconds, repeats = p["bench_n"], p["bench_seconds"], p["bench_repeats"]
    a, b = torch.randn(n, generator=g), torch.randn(n, generator=g)
    x, y = torch.randn(n // 4, 16, generator=g), torch.randn(n // 4, 16, generator=g)
    images = torch.randn(16, 3, n // 8, n // 8, generator=g)
    mean, std = torch.randn(3, generator=g), torch.rand(3, generator=g) + 0.5

    def implicit_distances():
        diff = x[:, None, :] - y[None, :, :]
        return (diff * diff).sum(-1)

    ctx.bench["outer"] = median_compare(lambda: impl.outer(a, b), lambda: torch.outer(a, b), seconds, repeats)
    ctx.bench["pairwise_sq_distances"] = median_compare(lambda: impl.pairwise_sq_distances(x, y), implicit_distances,
                                                        seconds, repeats)
    ctx.bench["pairwise_vs_cdist_mm"] = median_compare(lambda: impl.pairwise_sq_distances(x, y),
                                                       lambda: torch.cdist(x, y) ** 2, seconds, repeats)
    ctx.bench["normalize"] = median_compare(lambda: impl.normalize(images, mean, std),
                                            lambda: (images - mean[:, None, None]) / std[:, None, None],
                                            seconds, repeats)
    ctx.bench["ratio"] = max(ctx.bench[k]["ratio"] for k in ("outer", "pairwise_sq_distances", "normalize"))
    ctx.bench["sizes"] = {"outer": [n, n], "pairwise": [n // 4, n // 4, 16], "normalize": list(images.shape)}
