"""a10 experiment: gradcheck catching three wrong backwards (a sign, a missing transpose, a broadcast not reduced) and
passing the right one, on square and non-square shapes; the error of central differences against eps in float32 and
float64 (why float32 needs another eps); gradcheck's false-failure rate on the right backward in float32 against
float64 over seeds, at its default eps and tolerances and at ones sized for float32; and the Function's forward and
backward timed against the same op through autograd."""
from __future__ import annotations

import warnings

import torch

from torchkata.autograd.timing import forward_backward
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"seeds": 1, "epsilons": [1e-6, 1e-2], "bench_shape": [256, 256, 64], "bench_seconds": 0.02},
    "default": {"seeds": 10, "epsilons": [1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1],
                "bench_shape": [4096, 1024, 256], "bench_seconds": 0.3},
    "full": {"seeds": 100, "epsilons": [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 3e-1],
             "bench_shape": [4096, 1024, 1024], "bench_seconds": 1.0},
}
SHAPES = {"square": (4, 4, 4), "non_square": (5, 3, 2)}  # (N, in, out)
DEFAULTS = {"eps": 1e-6, "atol": 1e-5, "rtol": 1e-3}  # gradcheck's own
FLOAT32 = {"eps": 1e-2, "atol": 1e-2, "rtol": 1e-2}  # eps near cbrt(float32's 1.2e-7); tolerances for its error there
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def inputs(shape, dtype, generator):
    n, n_in, n_out = shape
    return [torch.randn(s, generator=generator, dtype=torch.float64).to(dtype).requires_grad_()
            for s in ((n, n_in), (n_out, n_in), (n,), (n_out,))]


def run(ctx: RunContext) -> None:
    p, g, impl = ctx.params, ctx.generator, ctx.impl
    warnings.filterwarnings("ignore", message=".*double precision floating point.*")  # float32 on purpose here
    cases = [(seed, name, {dtype: inputs(shape, DTYPES[dtype], torch.Generator().manual_seed(seed))
                           for dtype in DTYPES}) for seed in range(p["seeds"]) for name, shape in SHAPES.items()]

    def verdicts(bug, dtype, options, squash=False):
        """gradcheck_passes over the cases; squash: of tanh(the layer), curved, so that a large eps errs too (the
        layer alone is linear in each input, and central differences are exact on a line at any eps)."""
        fn = lambda *a: impl.scaled_linear(*a, bug=bug)  # noqa: E731
        return [impl.gradcheck_passes((lambda *a: torch.tanh(fn(*a))) if squash else fn, case[dtype], **options)
                for _, _, case in cases]

    # 1. float64 at gradcheck's defaults: the right backward passes, each bug is caught, on both kinds of shape
    caught = {}
    for bug in (None, *impl.BUGS):
        passed = verdicts(bug, "float64", DEFAULTS)
        for shape in SHAPES:
            caught[f"{bug or 'right'}_{shape}"] = sum(not ok for ok, (_, s, _) in zip(passed, cases) if s == shape)
    ctx.metrics["float64_failures"] = caught  # of `cases_per_shape` each: 0 for the right one, all for each bug
    ctx.metrics["cases_per_shape"] = p["seeds"]
    ctx.metrics["right_passes_and_bugs_caught"] = all(
        (caught[f"{b}_{s}"] == 0) if b == "right" else (caught[f"{b}_{s}"] == p["seeds"])
        for b in ("right", *impl.BUGS) for s in SHAPES)

    # 2. gradcheck's verdict on tanh(the right layer) against eps, float32 and float64 (default tolerances, float32's)
    rates = {}
    for dtype in DTYPES:
        for tolerance, options in (("default", DEFAULTS), ("float32", FLOAT32)):
            rates[f"{dtype}_{tolerance}_tol"] = [
                sum(not ok for ok in verdicts(None, dtype, options | {"eps": eps}, squash=True)) / len(cases)
                for eps in p["epsilons"]]
    ctx.metrics["false_failure_rate"] = rates | {"epsilons": p["epsilons"]}
    ctx.metrics["float32_default_false_failure_rate"] = rates["float32_default_tol"][p["epsilons"].index(1e-6)]
    ctx.metrics["float64_default_false_failure_rate"] = rates["float64_default_tol"][p["epsilons"].index(1e-6)]
    ctx.metrics["float32_bugs_caught_at_float32_settings"] = {
        bug: sum(not ok for ok in verdicts(bug, "float32", FLOAT32, squash=True)) / len(cases) for bug in impl.BUGS}

    # 3. why: the error of central differences of tanh(the layer) against eps (truncation ~eps², rounding ~u/eps)
    x64, w, s, b = inputs(SHAPES["non_square"], torch.float64, g)
    exact = torch.autograd.functional.jacobian(lambda x: torch.tanh(impl.scaled_linear(x, w, s, b)), x64.detach())
    errors = {}
    for dtype in DTYPES:
        args = [t.detach().to(DTYPES[dtype]) for t in (w, s, b)]
        errors[dtype] = [float((impl.numerical_jacobian(lambda x: torch.tanh(impl.scaled_linear(x, *args)), x64.detach()
                                                        .to(DTYPES[dtype]), eps).double() - exact).abs().max())
                         for eps in p["epsilons"]]
        for eps, error in zip(p["epsilons"], errors[dtype]):
            ctx.log(f"{dtype}_difference_error", error, p["epsilons"].index(eps))
    ctx.metrics["central_difference_max_abs_error"] = errors
    ctx.metrics["best_eps"] = {dtype: p["epsilons"][min(range(len(e)), key=e.__getitem__)]
                               for dtype, e in errors.items()}

    fig = ctx.figure(figsize=(11, 3.8))
    ax_err, ax_rate = fig.subplots(1, 2)
    for i, dtype in enumerate(DTYPES):
        ax_err.plot(p["epsilons"], errors[dtype], "o-", color=f"C{i}", label=f"{dtype}: central differences")
        u = torch.finfo(DTYPES[dtype]).eps
        ax_err.plot(p["epsilons"], [u / e for e in p["epsilons"]], ":", color=f"C{i}", label=f"u/eps ({dtype})")
    ax_err.plot(p["epsilons"], [e ** 2 for e in p["epsilons"]], "k--", lw=1, label="eps² (truncation)")
    ax_err.axhline(DEFAULTS["atol"], color="0.5", lw=1, label="gradcheck's default atol")
    ax_err.set(xscale="log", yscale="log", xlabel="eps", ylabel="max |numerical − analytic|",
               title="a10: d tanh(layer) / dx, central differences")
    ax_err.legend(fontsize=7)
    for key, rate in rates.items():
        ax_rate.plot(p["epsilons"], rate, "o-" if "float32" in key[:7] else "x--", label=key.replace("_", " "))
    ax_rate.set(xscale="log", xlabel="eps", ylabel="false-failure rate (right backward)",
                title=f"gradcheck of tanh(right layer), {len(cases)} cases")
    ax_rate.legend(fontsize=7)
    ctx.save_figure(fig, "gradcheck_eps")

    rows, n_in, n_out = p["bench_shape"]
    args = tuple(torch.randn(shape, generator=g).requires_grad_()
                 for shape in ((rows, n_in), (n_out, n_in), (rows,), (n_out,)))
    ctx.bench["scaled_linear"] = forward_backward(lambda *a: impl.scaled_linear(*a),
                                                  lambda x, w, s, b: (x @ w.T) * s[:, None] + b, args,
                                                  p["bench_seconds"])
    ctx.bench.update(forward_ratio=ctx.bench["scaled_linear"]["forward"]["ratio"],
                     backward_ratio=ctx.bench["scaled_linear"]["backward"]["ratio"], shape=p["bench_shape"])
