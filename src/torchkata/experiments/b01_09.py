"""b01-09 experiment: the hand-written 3-D slicing against torch's own indexing over random indices (ints, slices
with steps, negative ends, None, ..., boolean masks), a picture of which storage elements an index reaches, and
the cost of doing it in Python."""
from __future__ import annotations

import torch

from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"cases": 40, "bench_shape": [32, 32, 16], "bench_seconds": 0.02},
    "default": {"cases": 3000, "bench_shape": [256, 256, 64], "bench_seconds": 0.3},
    "full": {"cases": 30000, "bench_shape": [512, 512, 64], "bench_seconds": 1.0},
}
PICTURED = {"x[1]": (1,), "x[:, ::2, -2:]": (slice(None), slice(None, None, 2), slice(-2, None)),
            "x[..., 3]": (Ellipsis, 3), "x[-2:, 1, ::3]": (slice(-2, None), 1, slice(None, None, 3))}


def randint(g: torch.Generator, low: int, high: int) -> int:
    return int(torch.randint(low, high + 1, (), generator=g))


def random_3d(g: torch.Generator) -> torch.Tensor:
    """A 3-D arange of sizes 1-5, contiguous or with its dims permuted."""
    sizes = [randint(g, 1, 5) for _ in range(3)]
    x = torch.arange(sizes[0] * sizes[1] * sizes[2], dtype=torch.float64).reshape(sizes)
    return x.permute(*torch.randperm(3, generator=g).tolist()) if randint(g, 0, 1) else x


def random_index(shape, g: torch.Generator, with_mask: bool) -> tuple:
    items = []
    for size in shape:
        if randint(g, 0, 2) == 0:
            items.append(randint(g, -size, size - 1))
        else:
            ends = [None if randint(g, 0, 2) == 0 else randint(g, -size - 2, size + 2) for _ in range(2)]
            items.append(slice(*ends, [None, 1, 2, 3][randint(g, 0, 3)]))
    if with_mask:
        dims = randint(g, 1, 3)
        first = randint(g, 0, 3 - dims)
        items[first:first + dims] = [torch.rand(*shape[first:first + dims], generator=g) > 0.5]
    trailing = randint(g, 0, len(items))  # the last `trailing` items become `...`
    if trailing and randint(g, 0, 1):
        items = items[:len(items) - trailing] + [Ellipsis]
    if randint(g, 0, 2) == 0:
        items.insert(randint(g, 0, len(items)), None)
    return tuple(items)


def plot_storage_rows(fig, rows: list[tuple[str, torch.Tensor]], storage_size: int):
    """One strip per (title, positions): the storage, with the positions a tensor reaches coloured by their order in
    it (row-major). `positions` holds storage positions, e.g. the tensor itself viewed on an arange storage."""
    axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
    for ax, (title, positions) in zip(axes, rows):
        order = torch.full((storage_size,), float("nan"))
        reached = positions.flatten()
        order[reached] = torch.arange(len(reached), dtype=torch.float32)
        ax.imshow(order[None], cmap="viridis", aspect="auto", interpolation="nearest")
        ax.set(yticks=[], xticks=range(0, storage_size, 5))
        ax.set_title(title, fontsize=9, loc="left")
    fig.tight_layout()
    return fig


def run(ctx: RunContext) -> None:
    p, g, impl = ctx.params, ctx.generator, ctx.impl
    mismatches = views = masks = 0
    for case in range(p["cases"]):
        x = random_3d(g)
        index = random_index(tuple(x.shape), g, with_mask=case % 4 == 0)
        got, want = impl.slice_tensor(x, index), x[index]
        same = got.shape == want.shape and torch.equal(got, want)
        shared = got.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
        if case % 4:
            same = same and shared and (not want.numel() or got.data_ptr() == want.data_ptr())
        mismatches += not same
        views += case % 4 != 0 and shared
        masks += case % 4 == 0
        ctx.log("mismatches_so_far", mismatches, case)
    ctx.metrics.update(mismatches=mismatches, cases=p["cases"], basic_index_views=views, mask_cases=masks)

    # which storage elements each index reaches, in the order of the result
    x = torch.arange(60).reshape(3, 4, 5)
    rows = []
    for label, index in PICTURED.items():
        offset, sizes, strides = impl.index_view(x.shape, x.stride(), 0, index)
        rows.append((f"{label}: offset {offset}, sizes {sizes}, strides {strides}", impl.slice_tensor(x, index)))
    fig = plot_storage_rows(ctx.figure(figsize=(8, 0.9 * len(rows) + 0.6)), rows, 60)
    fig.axes[-1].set_xlabel("storage position of x = arange(60).reshape(3, 4, 5) (colour: order in the result)")
    ctx.save_figure(fig, "storage_reached")

    x = torch.randn(*p["bench_shape"], generator=g)
    index = (slice(1, None, 2), -1, slice(None, None, 3))
    ctx.bench["basic_index"] = compare(lambda: impl.slice_tensor(x, index), lambda: x[index],
                                       min_run_time=p["bench_seconds"])
    mask = torch.rand(*p["bench_shape"][1:], generator=g) > 0.5
    ctx.bench["mask_index"] = compare(lambda: impl.slice_tensor(x, (slice(None), mask)), lambda: x[:, mask],
                                      min_run_time=p["bench_seconds"])
    ctx.bench["ratio"] = ctx.bench["mask_index"]["ratio"]
    ctx.bench["shape"] = p["bench_shape"]
