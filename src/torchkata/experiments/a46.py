"""a46 experiment: kNN by the hand-written kernel (the CPU twin, and the CUDA kernel where there is a GPU) against
torch.cdist + torch.topk(largest=False): squared distances and indices over seeded trials of clouds that are not
multiples of the tiles, and its speed over cloud sizes, with a picture of one query's neighbours."""
from __future__ import annotations

import math

import torch

from torchkata.extensions.kernel_bench import devices, relative_error
from torchkata.pipeline.bench import compare, median_compare
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"trials": 2, "max_points": 100, "sweep": [256], "k": 16, "dims": 3, "bench_seconds": 0.02,
              "repeats": 1},
    "default": {"trials": 20, "max_points": 2000, "sweep": [1024, 2048, 4096, 8192], "k": 16, "dims": 3,
                "bench_seconds": 0.2, "repeats": 3},
    "full": {"trials": 100, "max_points": 5000, "sweep": [1024, 2048, 4096, 8192, 16384, 32768], "k": 16, "dims": 3,
             "bench_seconds": 1.0, "repeats": 3},
}
# the exact answer's distances by differences, not by cdist's matmul expansion (which the bench times as torch's
# way): exact in float64 to the last bits
DIRECT = "donot_use_mm_for_euclid_dist"
# (N, M, D, k): one point, empty queries, k == M, and clouds around the tiles (CPU: 256 reference points, blocks of
# 64 queries; CUDA: 256 points, 128 queries a block) and the CUDA kernel's top-k capacities (16, 64, above)
FIXED = [(1, 1, 3, 1), (0, 5, 3, 2), (13, 13, 3, 13), (65, 257, 3, 16), (129, 300, 2, 17), (70, 513, 5, 65),
         (3, 40, 7, 40)]


def run(ctx: RunContext) -> None:
    p, g = ctx.params, ctx.generator
    library_path = str(ctx.input("knn"))
    impl = ctx.impl
    targets = devices(ctx, impl.ops(library_path).knn_has_cuda())
    worst = {"max_rel_error": 0.0, "float32_max_rel_error": 0.0, "mismatched_indices": 0, "compared_indices": 0}
    random = torch.randint(1, p["max_points"] + 1, (p["trials"], 2), generator=g).tolist()
    dims = torch.randint(1, 9, (p["trials"],), generator=g).tolist()
    cases = FIXED + [(n, m, d, min(m, 1 + (n * m) % 40)) for (n, m), d in zip(random, dims)]
    for trial, (n, m, d, k) in enumerate(cases):
        dtype = (torch.float64, torch.float32)[trial % 2]
        query, reference = (torch.randn(rows, d, generator=g, dtype=dtype) for rows in (n, m))
        exact_d, exact_i, distinct = exact_knn(query, reference, k)
        for device in targets:
            dist, index = impl.knn(query.to(device), reference.to(device), k, library_path)
            error, _ = relative_error(dist.cpu().double(), exact_d)
            key = "max_rel_error" if dtype == torch.float64 else "float32_max_rel_error"
            worst[key] = max(worst[key], error)
            worst["mismatched_indices"] += int((index.cpu() != exact_i)[distinct].sum())
            worst["compared_indices"] += int(distinct.sum())
        ctx.log("max_rel_error_so_far", worst["max_rel_error"], trial)
    ctx.metrics.update(worst, trials=len(cases))

    ops = impl.ops(library_path)
    sweeps = {device.type: speed_sweep(ctx, ops, device) for device in targets}
    ctx.bench["sweeps"] = {d: {str(n): v for n, v in s.items()} for d, s in sweeps.items()}
    ctx.bench["ratio"] = sweeps["cpu"][p["sweep"][-1]]["ratio"]  # ours / (cdist + topk) at the largest cloud
    plot(ctx, impl, library_path, sweeps)


def exact_knn(query: torch.Tensor, reference: torch.Tensor, k: int):
    """(squared distances, indices, mask of the indices that are decided) from float64 cdist + topk: an index is
    compared only where its distance is apart from its neighbours' in the sorted row (the (k+1)-th included), by
    more than float32 could blur; among tied points any order is right."""
    q, r = query.double(), reference.double()
    top = min(k + 1, r.shape[0])
    distances, indices = torch.topk(torch.cdist(q, r, compute_mode=DIRECT) ** 2, top, largest=False)
    gap = 1e-5 * max(float(distances.max()) if distances.numel() else 0.0, 1e-12)
    apart = torch.ones_like(distances, dtype=torch.bool)
    if top > 1:
        close = distances.diff(dim=1) <= gap
        apart[:, 1:] &= ~close
        apart[:, :-1] &= ~close
    return distances[:, :k], indices[:, :k], apart[:, :k]


def speed_sweep(ctx: RunContext, ops, device: torch.device) -> dict:
    """{n: compare(ours, cdist + topk)} for n queries against n reference points in D dims, float32; at the largest
    n (the bench's `ratio`) the median of `repeats` comparisons, as one slow spell of a shared machine would
    otherwise decide the figure."""
    g, k = ctx.generator, ctx.params["k"]
    sweep = {}
    for n in ctx.params["sweep"]:
        query, reference = (torch.rand(n, ctx.params["dims"], generator=g).to(device) for _ in range(2))

        def ours():
            return synced(ops.knn(query, reference, k), device)

        def native():
            return synced(torch.topk(torch.cdist(query, reference), k, largest=False), device)

        seconds = ctx.params["bench_seconds"]
        if n == ctx.params["sweep"][-1]:
            sweep[n] = median_compare(ours, native, seconds, ctx.params["repeats"])
        else:
            sweep[n] = compare(ours, native, seconds)
    return sweep


def synced(out, device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # a CUDA launch returns before the kernel ends
    return out


def plot(ctx: RunContext, impl, library_path: str, sweeps: dict[str, dict]) -> None:
    """Left: a 2-D cloud (a noisy spiral) and one query; middle: its k neighbours by ours and by cdist + topk, inside
    the circle of the k-th distance. Right: seconds over cloud size, ours against cdist + topk, per device."""
    g, k = ctx.generator, ctx.params["k"]
    t = torch.rand(400, generator=g) * 3 * math.pi
    cloud = torch.stack([t * torch.cos(t), t * torch.sin(t)], 1) + 0.4 * torch.randn(400, 2, generator=g)
    query = cloud[:1] + torch.tensor([[0.3, -0.2]])
    dist, index = impl.knn(query, cloud, k, library_path)
    native = torch.topk(torch.cdist(query, cloud), k, largest=False).indices[0]
    fig = ctx.figure(figsize=(14, 4.2))
    overview, zoom, right = fig.subplots(1, 3)
    radius = float(dist[0, -1]) ** 0.5
    for ax in (overview, zoom):
        ax.plot(cloud[:, 0], cloud[:, 1], ".", ms=3, c="0.7", label="reference points")
        ax.plot(cloud[index[0], 0], cloud[index[0], 1], "o", ms=7, mfc="none", c="C0", label=f"{k} nearest (ours)")
        ax.plot(cloud[native, 0], cloud[native, 1], "x", ms=4, c="C1", label="cdist + topk")
        ax.plot(query[:, 0], query[:, 1], "*", ms=10, c="C3", label="query")
        ax.add_patch(circle(query[0], radius))
        ax.set(aspect="equal")
    overview.set(title="a point cloud and one query")
    zoom.set(xlim=(float(query[0, 0]) - 1.5 * radius, float(query[0, 0]) + 1.5 * radius),
             ylim=(float(query[0, 1]) - 1.5 * radius, float(query[0, 1]) + 1.5 * radius),
             title=f"its {k} nearest, inside the k-th distance")
    zoom.legend(fontsize=7, loc="lower right")
    for device, sweep in sweeps.items():
        sizes = list(sweep)
        right.plot(sizes, [sweep[n]["impl_s"] for n in sizes], "o-", label=f"kNN kernel ({device})")
        right.plot(sizes, [sweep[n]["native_s"] for n in sizes], "s--", label=f"cdist + topk ({device})")
    right.set(xscale="log", yscale="log", xlabel=f"N queries = M reference points (D={ctx.params['dims']}, k={k})",
              ylabel="seconds", title=f"time, {next(iter(sweeps.values()))[sizes[0]]['threads']} threads")
    right.set_xticks(sizes, [str(n) for n in sizes])
    right.minorticks_off()
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    ctx.save_figure(fig, "knn")


def circle(center, radius):
    from matplotlib.patches import Circle

    return Circle((float(center[0]), float(center[1])), radius, fill=False, ls=":", color="C0")
