"""b01-05 experiment: gradients, Jacobians and Hessians from torch.autograd.grad against their analytic forms and
against torch.autograd.functional, and what one backward pass per output row costs beside PyTorch's vectorised
Jacobian (vmap over the rows) as the output grows."""
from __future__ import annotations

import time

import torch
from torch.autograd.functional import jacobian as torch_jacobian

from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"n": 8, "sizes": [4, 16], "bench_size": 16, "bench_seconds": 0.05},
    "default": {"n": 32, "sizes": [4, 16, 64], "bench_size": 64, "bench_seconds": 0.3},
    "full": {"n": 128, "sizes": [4, 16, 64, 256, 1024], "bench_size": 1024, "bench_seconds": 1.0},
}


def max_abs(t: torch.Tensor) -> float:
    return float(t.abs().max())


def run(ctx: RunContext) -> None:
    p, g, impl = ctx.params, ctx.generator, ctx.impl
    n = p["n"]
    x = torch.randn(n, generator=g, dtype=torch.float64)
    a = torch.randn(n, n, generator=g, dtype=torch.float64)
    w = torch.randn(2 * n, n, generator=g, dtype=torch.float64)
    softmax = torch.softmax(x, 0)
    gradients = {  # name: (scalar function, its analytic gradient)
        "sum_sin_x": (lambda t: t.sin().sum(), x.cos()),
        "xT_A_x": (lambda t: t @ a @ t, (a + a.T) @ x),
        "logsumexp": (lambda t: t.logsumexp(0), softmax),
        "norm": (lambda t: t.norm(), x / x.norm()),
    }
    jacobians = {  # name: (vector function, its analytic Jacobian)
        "tanh": (torch.tanh, torch.diag(1 - x.tanh() ** 2)),
        "W_x_2n_by_n": (lambda t: w @ t, w),
        "softmax": (lambda t: torch.softmax(t, 0), torch.diag(softmax) - torch.outer(softmax, softmax)),
    }
    hessians = {
        "xT_A_x": (lambda t: t @ a @ t, a + a.T),
        "sum_x4": (lambda t: (t**4).sum(), torch.diag(12 * x**2)),
        "logsumexp": (lambda t: t.logsumexp(0), torch.diag(softmax) - torch.outer(softmax, softmax)),
    }
    errors = {"gradient": {k: max_abs(impl.gradient(f, x) - want) for k, (f, want) in gradients.items()},
              "jacobian": {k: max_abs(impl.jacobian(f, x) - want) for k, (f, want) in jacobians.items()},
              "hessian": {k: max_abs(impl.hessian(f, x) - want) for k, (f, want) in hessians.items()}}
    versus_torch = {k: max_abs(impl.jacobian(f, x) - torch_jacobian(f, x)) for k, (f, _) in jacobians.items()}
    ctx.metrics.update(max_abs_error=max(e for kind in errors.values() for e in kind.values()),
                       error_against_analytic=errors, jacobian_error_against_torch=versus_torch, n=n)

    # cost: a Jacobian of an n-vector function of n inputs, row by row, against PyTorch's vectorised version
    times = {"yours (n backward passes)": [], "autograd.functional (vectorize=True)": []}
    for size in p["sizes"]:
        z = torch.randn(size, generator=g, dtype=torch.float64)
        m = torch.randn(size, size, generator=g, dtype=torch.float64) / size**0.5
        f = lambda t: torch.tanh(m @ t)  # noqa: E731
        result = compare(lambda: impl.jacobian(f, z), lambda: torch_jacobian(f, z, vectorize=True),
                         min_run_time=p["bench_seconds"] / 4)
        times["yours (n backward passes)"].append(result["impl_s"])
        times["autograd.functional (vectorize=True)"].append(result["native_s"])
        ctx.bench[f"jacobian_{size}"] = result
    ctx.bench["ratio"] = ctx.bench[f"jacobian_{p['bench_size']}"]["ratio"]
    start = time.perf_counter()
    impl.hessian(hessians["xT_A_x"][0], x)
    ctx.bench["hessian_s"] = time.perf_counter() - start

    fig = ctx.figure(figsize=(5, 3.4))
    ax = fig.subplots()
    for (name, seconds), style in zip(times.items(), ("o-", "x--")):
        ax.plot(p["sizes"], [s * 1e3 for s in seconds], style, label=name)
    ax.set(xscale="log", yscale="log", xlabel="n (outputs = inputs)", ylabel="median ms",
           title="b01-05: Jacobian of tanh(Mx), n×n")
    ax.legend(fontsize=8)
    ctx.save_figure(fig, "jacobian_time_vs_size")
