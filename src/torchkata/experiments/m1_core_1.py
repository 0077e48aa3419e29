"""m1-core-1 experiment: random chains of view operations on the hand-written strided Tensor, each step compared
with torch doing the same on the same storage; a picture of one chain walking its storage; and the price of views
and copies computed in Python."""
from __future__ import annotations

import math

import torch

from torchkata.experiments.b01_09 import plot_storage_rows, random_index
from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"chains": 30, "max_ops": 4, "bench_side": 128, "bench_seconds": 0.02},
    "default": {"chains": 1500, "max_ops": 6, "bench_side": 1024, "bench_seconds": 0.3},
    "full": {"chains": 15000, "max_ops": 8, "bench_side": 2048, "bench_seconds": 1.0},
}
OPS = ["index", "transpose", "permute", "expand", "contiguous", "view"]


def randint(g: torch.Generator, low: int, high: int) -> int:
    return int(torch.randint(low, high + 1, (), generator=g))


def step(op: str, ours, theirs: torch.Tensor, g: torch.Generator):
    """The same view operation on both; torch's refusals (a view that needs a copy) are skipped."""
    ndim = theirs.dim()
    if op == "index" and theirs.numel():
        index = random_index(tuple(theirs.shape), g, with_mask=False)
        return ours[index], theirs[index]
    if op == "transpose" and ndim:
        a, b = randint(g, -ndim, ndim - 1), randint(g, -ndim, ndim - 1)
        return ours.transpose(a, b), theirs.transpose(a, b)
    if op == "permute" and ndim:
        dims = torch.randperm(ndim, generator=g).tolist()
        return ours.permute(*dims), theirs.permute(*dims)
    if op == "expand":
        sizes = [randint(g, 1, 3)] * randint(g, 0, 1) + [randint(g, 1, 3) if s == 1 else -1 for s in theirs.shape]
        return ours.expand(*sizes), theirs.expand(sizes)
    if op == "contiguous":
        return ours.contiguous(), theirs.contiguous()
    if op == "view" and theirs.numel():
        shape = [theirs.numel()] if randint(g, 0, 1) else [-1, *theirs.shape[-1:]]
        try:
            want = theirs.view(shape)
        except RuntimeError:
            return ours, theirs
        return ours.view(*shape), want
    return ours, theirs


def matches(ours, theirs: torch.Tensor) -> bool:
    shown = torch.as_strided(ours.storage, ours.shape, ours.strides, ours.offset)
    return tuple(ours.shape) == tuple(theirs.shape) and torch.equal(shown, theirs) and (
        not theirs.numel() or ours.storage.data_ptr() != theirs.untyped_storage().data_ptr()
        or ours.offset == theirs.storage_offset())


def run(ctx: RunContext) -> None:
    p, g, Tensor = ctx.params, ctx.generator, ctx.impl.Tensor
    mismatches = steps = copies = 0
    for chain in range(p["chains"]):
        shape = [randint(g, 1, 4) for _ in range(randint(g, 1, 4))]
        storage = torch.arange(float(math.prod(shape)))
        ours, theirs = Tensor(storage, shape), storage.view(shape)
        for _ in range(randint(g, 1, p["max_ops"])):
            ours, theirs = step(OPS[randint(g, 0, len(OPS) - 1)], ours, theirs, g)
            mismatches += not matches(ours, theirs)
            steps += 1
        copies += ours.storage is not storage
        ctx.log("mismatches_so_far", mismatches, chain)
    ctx.metrics.update(mismatches=mismatches, chains=p["chains"], steps=steps, chains_that_copied=copies)

    # one chain, step by step: which storage positions the tensor reaches, in its row-major order
    storage = torch.arange(60)
    t = Tensor(storage, (3, 4, 5))
    chain = [("Tensor(arange(60), (3, 4, 5))", t), ("  .transpose(0, 2)", t := t.transpose(0, 2)),
             ("  [1:, ::2]", t := t[1:, ::2]), ("  [..., None].expand(4, 2, 3, 2)", t := t[..., None].expand(4, 2, 3, 2)),
             ("  [:, 0, -1]", t := t[:, 0, -1])]
    rows = [(f"{label}: shape {u.shape}, strides {u.strides}, offset {u.offset}", u.to_torch()) for label, u in chain]
    fig = plot_storage_rows(ctx.figure(figsize=(8, 0.9 * len(rows) + 0.6)), rows, 60)
    fig.axes[-1].set_xlabel("storage position (colour: order in the tensor; all five share this one storage)")
    ctx.save_figure(fig, "chain_on_storage")

    n = p["bench_side"]
    storage = torch.randn(n * n, generator=g)
    ours, theirs = Tensor(storage, (n, n)), storage.view(n, n)
    ctx.bench["view_chain"] = compare(lambda: ours.transpose(0, 1)[1:, ::2].permute(1, 0)[None].expand(2, -1, -1),
                                      lambda: theirs.transpose(0, 1)[1:, ::2].permute(1, 0)[None].expand(2, -1, -1),
                                      min_run_time=p["bench_seconds"])
    transposed, theirs_t = ours.transpose(0, 1), theirs.t()
    ctx.bench["contiguous_copy"] = compare(transposed.contiguous, theirs_t.contiguous, min_run_time=p["bench_seconds"])
    ctx.bench["ratio"] = ctx.bench["contiguous_copy"]["ratio"]
    ctx.bench["shape"] = [n, n]
