"""a09 experiment: the hand-written RNN against nn.RNN with the same weights over every setting (tanh and relu, one
and two layers, batch_first or not, with and without an initial state): outputs, final states and gradients; how the
gradient of the last state reaches back through time (the same curve for both); and the time against nn.RNN."""
from __future__ import annotations

import itertools

import torch
from torch import nn

from torchkata.autograd.timing import forward_backward
from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext

SCALES = {
    # a backward timed with a given upstream gradient imports torch's symbolic shapes (sympy, 1.3 s, more than a
    # smoke run's budget): the smoke run times the forward only
    "smoke": {"max_size": 6, "max_length": 6, "trace_length": 20, "bench": [20, 8, 16, 32], "bench_seconds": 0.02,
              "bench_backward": False},
    "default": {"max_size": 16, "max_length": 24, "trace_length": 60, "bench": [100, 32, 64, 128],
                "bench_seconds": 0.3, "bench_backward": True},
    "full": {"max_size": 64, "max_length": 100, "trace_length": 200, "bench": [400, 64, 256, 512],
             "bench_seconds": 1.0, "bench_backward": True},
}
SETTINGS = list(itertools.product(("tanh", "relu"), (1, 2), (False, True), (False, True)))


def max_abs(t: torch.Tensor) -> float:
    return float(t.detach().abs().max()) if t.numel() else 0.0


def pair(impl, sizes: dict, nonlinearity: str, layers: int, batch_first: bool = False, dtype=torch.float64):
    """(ours, nn.RNN) with nn.RNN's weights loaded into ours."""
    theirs = nn.RNN(sizes["input"], sizes["hidden"], layers, nonlinearity=nonlinearity, batch_first=batch_first)
    ours = impl.SimpleRNN(sizes["input"], sizes["hidden"], layers, nonlinearity=nonlinearity, batch_first=batch_first)
    theirs.to(dtype)
    ours.to(dtype).load_state_dict(theirs.state_dict())
    return ours, theirs


def run(ctx: RunContext) -> None:
    p, g, impl = ctx.params, ctx.generator, ctx.impl
    value_error = grad_error = 0.0
    for case, (nonlinearity, layers, batch_first, with_state) in enumerate(SETTINGS):
        batch, size_in, hidden = torch.randint(1, p["max_size"] + 1, (3,), generator=g).tolist()
        length = int(torch.randint(1, p["max_length"] + 1, (), generator=g))
        ours, theirs = pair(impl, {"input": size_in, "hidden": hidden}, nonlinearity, layers, batch_first)
        x = torch.randn((batch, length, size_in) if batch_first else (length, batch, size_in), generator=g,
                        dtype=torch.float64).requires_grad_()
        h0 = torch.randn(layers, batch, hidden, generator=g, dtype=torch.float64).requires_grad_() if with_state else None
        upstream = torch.randn(x.shape[:-1] + (hidden,), generator=g, dtype=torch.float64)
        results, grads = [], []
        for model in (ours, theirs):
            out, h_n = model(x, h0)
            leaves = [x, *([h0] if with_state else []), *model.parameters()]
            results.append((out, h_n))
            # gradients of a scalar: the same as grad(out, upstream), without its sympy import
            grads.append(torch.autograd.grad((out * upstream).sum() + h_n.sum(), leaves))
        value_error = max([value_error] + [max_abs(a - b) for a, b in zip(*results)])
        grad_error = max([grad_error] + [max_abs(a - b) for a, b in zip(*grads)])
        ctx.log("grad_max_abs_error_so_far", grad_error, case)
    ctx.metrics.update(max_abs_error=value_error, grad_max_abs_error=grad_error, settings=len(SETTINGS))

    # learning through time: how much the last state depends on each step's input, |d h_T / d x_t|
    sizes, length = {"input": 8, "hidden": 32}, p["trace_length"]
    fig = ctx.figure(figsize=(5.5, 3.4))
    ax = fig.subplots()
    x = torch.randn(length, 1, sizes["input"], generator=g, dtype=torch.float64)
    ctx.metrics.update(grad_norm_by_step={}, grad_norm_max_abs_error=0.0)
    for i, nonlinearity in enumerate(("tanh", "relu")):
        ours, theirs = pair(impl, sizes, nonlinearity, 1)
        norms = {}
        for who, model in (("yours", ours), ("nn.RNN", theirs)):
            leaf = x.clone().requires_grad_()
            (grad,) = torch.autograd.grad(model(leaf)[1].sum(), leaf)
            norms[who] = grad.norm(dim=(1, 2))
        ctx.metrics["grad_norm_by_step"][nonlinearity] = {"first": float(norms["yours"][0]),
                                                          "last": float(norms["yours"][-1])}
        ctx.metrics["grad_norm_max_abs_error"] = max(ctx.metrics["grad_norm_max_abs_error"],
                                                     max_abs(norms["yours"] - norms["nn.RNN"]))
        steps = range(1, length + 1)
        ax.plot(steps, norms["yours"].clamp(min=1e-30), "-", color=f"C{i}", label=f"{nonlinearity}: yours")
        ax.plot(steps, norms["nn.RNN"].clamp(min=1e-30), "x", ms=4, color=f"C{i}", label=f"{nonlinearity}: nn.RNN")
    ax.set(yscale="log", xlabel="input step t", ylabel="|d sum(h_T) / d x_t|",
           title=f"a09: gradient through time (T = {length}, default init)")
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "gradient_through_time")

    length, batch, size_in, hidden = p["bench"]
    ours, theirs = pair(impl, {"input": size_in, "hidden": hidden}, "tanh", 1, dtype=torch.float32)
    x = torch.randn(length, batch, size_in, generator=g).requires_grad_()
    if p["bench_backward"]:
        ctx.bench["rnn"] = forward_backward(lambda t: ours(t)[0], lambda t: theirs(t)[0], (x,), p["bench_seconds"])
        ctx.bench["backward_ratio"] = ctx.bench["rnn"]["backward"]["ratio"]
    else:
        ctx.bench["rnn"] = {"forward": compare(lambda: ours(x), lambda: theirs(x), p["bench_seconds"])}
    ctx.bench["forward_ratio"] = ctx.bench["rnn"]["forward"]["ratio"]
    ctx.bench["shape"] = {"length": length, "batch": batch, "input": size_in, "hidden": hidden}
