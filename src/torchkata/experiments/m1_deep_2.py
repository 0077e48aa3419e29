"""m1-deep-2 experiment: the mini engine's vjp and jvp against torch.func on randomly composed programs and against
central finite differences; full Jacobians built column by column (forward mode, one jvp per input) and row by
row (reverse mode, one vjp per output), timed as the input grows; and the engine's overhead against torch.func."""
from __future__ import annotations

import time

import torch

from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"cases": 6, "steps": 6, "inputs": [4, 16], "outputs": 8, "bench_batch": 32, "bench_width": 64,
              "bench_seconds": 0.02},
    "default": {"cases": 200, "steps": 10, "inputs": [4, 16, 64, 256], "outputs": 32, "bench_batch": 256,
                "bench_width": 512, "bench_seconds": 0.3},
    "full": {"cases": 2000, "steps": 16, "inputs": [4, 16, 64, 256, 1024], "outputs": 32, "bench_batch": 1024,
             "bench_width": 2048, "bench_seconds": 1.0},
}
SHAPES = [(4, 4), (1, 4), (4,), (4, 1), ()]  # all broadcast against (4, 4)


def random_program(g: torch.Generator, steps: int) -> list[tuple[str, int, int]]:
    ops = ["exp", "log", "tanh", "sin", "add", "mul", "sub", "matmul", "sum"]
    draw = lambda n: int(torch.randint(n, (), generator=g))  # noqa: E731
    return [(ops[draw(len(ops))], draw(100), draw(100)) for _ in range(steps)]


def evaluate(m, inputs, program):
    """Run the program with module m's ops: the engine's on Vars, or torch's on tensors (the same expressions)."""
    pool = list(inputs)
    for op, i, j in program:
        a, b = pool[i % len(pool)], pool[j % len(pool)]
        if op == "matmul" and len(a.shape) == len(b.shape) == 2 and a.shape[1] == b.shape[0]:
            value = a @ b
        elif op in ("add", "matmul"):
            value = a + b
        elif op in ("mul", "sub"):
            value = a * b if op == "mul" else a - b
        elif op == "sum":
            value = a.sum(j % len(a.shape), keepdim=True) if len(a.shape) else a
        else:  # exp of a bounded value, log of a positive one: finite whatever the program
            value = {"exp": lambda v: m.exp(m.sin(v)), "log": lambda v: m.log(v * v + 1.0), "tanh": m.tanh,
                     "sin": m.sin}[op](a)
        pool.append(value)
    return pool[-1].sum(-1) if len(pool[-1].shape) else pool[-1]


def max_error(got, want) -> float:
    return max((float((a - b).abs().max()) for a, b in zip(got, want) if a.numel()), default=0.0)


def mlp(engine_or_torch):
    return lambda x, w1, w2: engine_or_torch.tanh(x @ w1) @ w2


def jacobians(engine, f, primals, n_in: int, n_out: int):
    """The Jacobian of f wrt primals[0] (a (1, n_in) row) both ways: n_in jvps or n_out vjps, with seconds."""
    start = time.perf_counter()
    basis = torch.eye(n_in, dtype=primals[0].dtype)
    rest = tuple(torch.zeros_like(p) for p in primals[1:])
    forward = torch.stack([engine.jvp(f, primals, (basis[k:k + 1], *rest))[1][0] for k in range(n_in)], dim=1)
    forward_s = time.perf_counter() - start
    start = time.perf_counter()
    _, vjp_fn = engine.vjp(f, *primals)
    rows = torch.eye(n_out, dtype=primals[0].dtype)
    reverse = torch.stack([vjp_fn(rows[k:k + 1])[0][0] for k in range(n_out)])
    return forward, reverse, forward_s, time.perf_counter() - start


def run(ctx: RunContext) -> None:
    p, g, engine = ctx.params, ctx.generator, ctx.impl
    vjp_error = jvp_error = fd_error = 0.0
    for case in range(p["cases"]):
        shapes = [(4, 4), SHAPES[int(torch.randint(len(SHAPES), (), generator=g))]]
        primals = tuple(torch.randn(s, generator=g, dtype=torch.float64) * 0.7 for s in shapes)
        tangents = tuple(torch.randn(s, generator=g, dtype=torch.float64) for s in shapes)
        program = random_program(g, p["steps"])
        ours, theirs = (lambda *xs: evaluate(engine, xs, program)), (lambda *xs: evaluate(torch, xs, program))
        out, vjp_fn = engine.vjp(ours, *primals)
        want, want_vjp_fn = torch.func.vjp(theirs, *primals)
        cotangent = torch.randn(want.shape, generator=g, dtype=torch.float64)
        vjp_error = max(vjp_error, max_error((out, *vjp_fn(cotangent)), (want, *want_vjp_fn(cotangent))))
        _, tangent = engine.jvp(ours, primals, tangents)
        jvp_error = max(jvp_error, max_error([tangent], [torch.func.jvp(theirs, primals, tangents)[1]]))
        eps = 1e-6
        plus = engine.vjp(ours, *(x + eps * t for x, t in zip(primals, tangents)))[0]
        minus = engine.vjp(ours, *(x - eps * t for x, t in zip(primals, tangents)))[0]
        scale = max(1.0, float(tangent.abs().max()) if tangent.numel() else 1.0)
        fd_error = max(fd_error, max_error([(plus - minus) / (2 * eps)], [tangent]) / scale)
        ctx.log("vjp_max_abs_error_so_far", vjp_error, case)
    ctx.metrics.update(max_abs_error=vjp_error, jvp_max_abs_error=jvp_error, finite_difference_max_rel_error=fd_error,
                       cases=p["cases"], steps_per_program=p["steps"])

    # Jacobians of a (1, n) -> (1, m) MLP: forward mode costs n jvps, reverse mode m vjps; they cross near n = m
    gaps, timings = {}, []
    for n_in in p["inputs"]:
        primals = (torch.randn(1, n_in, generator=g, dtype=torch.float64),
                   torch.randn(n_in, 32, generator=g, dtype=torch.float64) / n_in**0.5,
                   torch.randn(32, p["outputs"], generator=g, dtype=torch.float64))
        forward, reverse, forward_s, reverse_s = jacobians(engine, mlp(engine), primals, n_in, p["outputs"])
        want = torch.func.jacrev(mlp(torch))(*primals)[0, :, 0, :]
        gaps[str(n_in)] = max(max_error([forward], [want]), max_error([reverse], [want]))
        timings.append((forward_s, reverse_s))
    ctx.metrics["jacobian_max_abs_error_by_inputs"] = gaps
    ctx.bench["jacobian_seconds"] = {str(n): {"forward_mode": f, "reverse_mode": r}
                                     for n, (f, r) in zip(p["inputs"], timings)}
    fig = ctx.figure(figsize=(5.5, 3.6))
    ax = fig.subplots()
    ax.plot(p["inputs"], [t[0] * 1e3 for t in timings], "o-", label="forward mode: n jvps")
    ax.plot(p["inputs"], [t[1] * 1e3 for t in timings], "s-", label=f"reverse mode: {p['outputs']} vjps")
    ax.set(xscale="log", yscale="log", xlabel="inputs n", ylabel="ms for the whole Jacobian",
           title=f"m1-deep-2: Jacobian of R^n -> R^{p['outputs']} with your engine")
    ax.legend()
    ctx.save_figure(fig, "jacobian_cost")

    # the engine's per-op overhead against torch.func on one MLP layer pair
    x = torch.randn(p["bench_batch"], p["bench_width"], generator=g)
    w1 = torch.randn(p["bench_width"], p["bench_width"], generator=g) / p["bench_width"] ** 0.5
    w2 = torch.randn(p["bench_width"], 10, generator=g)
    primals, cotangent = (x, w1, w2), torch.ones(p["bench_batch"], 10)
    ctx.bench["vjp"] = compare(lambda: engine.vjp(mlp(engine), *primals)[1](cotangent),
                               lambda: torch.func.vjp(mlp(torch), *primals)[1](cotangent), p["bench_seconds"])
    ctx.bench["jvp"] = compare(lambda: engine.jvp(mlp(engine), primals, primals),
                               lambda: torch.func.jvp(mlp(torch), primals, primals), p["bench_seconds"])
    ctx.bench["ratio"] = ctx.bench["vjp"]["ratio"]
    ctx.bench["jvp_ratio"] = ctx.bench["jvp"]["ratio"]
    ctx.bench["bench_shape"] = [p["bench_batch"], p["bench_width"]]
