"""a13 experiment: the hand-written encoder layer against nn.TransformerEncoderLayer with the same weights
(post-norm and pre-norm, padding masks, train and eval mode, outputs and gradients, float64 and float32), its
speed beside PyTorch's, and a tiny Transformer trained on scikit-learn's digits read as sequences of 8 rows,
with our layers and with PyTorch's from the same initial weights: the two training curves lie on each other."""
from __future__ import annotations

import functools

import torch
from torch import nn

from torchkata.data import digits
from torchkata.nn.transformer import SequenceClassifier, digit_rows
from torchkata.pipeline.bench import compare
from torchkata.training.loop import fit, plot_histories

SCALES = {
    "smoke": {"cases": 4, "max_len": 8, "d_model": 16, "train_size": 96, "epochs": 1, "lr": 2e-3, "batch_size": 32,
              "bench_shape": [8, 16, 32], "bench_seconds": 0.02},
    "default": {"cases": 32, "max_len": 24, "d_model": 32, "train_size": 800, "epochs": 8, "lr": 2e-3,
                "batch_size": 32, "bench_shape": [32, 64, 128], "bench_seconds": 0.3},
    "full": {"cases": 128, "max_len": 64, "d_model": 64, "train_size": None, "epochs": 40, "lr": 1e-3,
             "batch_size": 32, "bench_shape": [64, 256, 256], "bench_seconds": 1.0},
}
HEADS = 4


def layer_pair(impl, d_model: int, norm_first: bool, activation: str, dtype: torch.dtype):
    theirs = nn.TransformerEncoderLayer(d_model, HEADS, 2 * d_model, dropout=0.0, activation=activation,
                                        batch_first=True, norm_first=norm_first).to(dtype)
    ours = impl.EncoderLayer(d_model, HEADS, 2 * d_model, dropout=0.0, activation=activation,
                             norm_first=norm_first).to(dtype)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def errors(ours, theirs, x, mask) -> tuple[float, float]:
    """Max |difference| of the outputs and of all the gradients (input and weights) for a random weighting."""
    x2 = x.clone().requires_grad_()
    x = x.clone().requires_grad_()
    out_ours, out_theirs = ours(x, src_key_padding_mask=mask), theirs(x2, src_key_padding_mask=mask)
    w = torch.randn_like(out_theirs)
    g_ours = torch.autograd.grad((out_ours * w).sum(), [x, *ours.parameters()])
    g_theirs = torch.autograd.grad((out_theirs * w).sum(), [x2, *theirs.parameters()])
    out_ours, out_theirs = out_ours.detach(), out_theirs.detach()
    return (float((out_ours - out_theirs).abs().max()),
            max(float((a - b).abs().max()) for a, b in zip(g_ours, g_theirs)))


def run(ctx) -> None:
    p, g = ctx.params, ctx.generator
    worst = {torch.float64: [0.0, 0.0], torch.float32: [0.0, 0.0]}
    for case in range(p["cases"]):
        dtype = (torch.float64, torch.float32)[case % 2]
        norm_first, activation = bool(case // 2 % 2), ("relu", "gelu")[case // 4 % 2]
        ours, theirs = layer_pair(ctx.impl, p["d_model"], norm_first, activation, dtype)
        ours.train(case % 3 != 0)
        theirs.train(case % 3 != 0)
        n, length = int(torch.randint(1, 5, (), generator=g)), int(torch.randint(1, p["max_len"] + 1, (), generator=g))
        lengths = torch.randint(1, length + 1, (n,), generator=g)  # every sequence keeps at least one token
        mask = torch.arange(length) >= lengths[:, None]
        x = torch.randn(n, length, p["d_model"], generator=g, dtype=dtype)
        out_error, grad_error = errors(ours, theirs, x, mask)
        worst[dtype] = [max(worst[dtype][0], out_error), max(worst[dtype][1], grad_error)]
        ctx.log("max_abs_error_so_far", worst[torch.float64][0], case)
    ctx.metrics.update(max_abs_error=worst[torch.float64][0], grad_max_abs_error=worst[torch.float64][1],
                       float32_max_abs_error=worst[torch.float32][0], float32_grad_max_abs_error=worst[torch.float32][1],
                       cases=p["cases"])

    # the same tiny Transformer with our layers and with PyTorch's, from the same weights and batch order
    (x_train, y_train), (x_test, y_test) = digits.split(ctx.input("digits"), 360, torch.Generator().manual_seed(0),
                                                        p["train_size"])
    train, test = (digit_rows(x_train), y_train), (digit_rows(x_test), y_test)
    builders = {"ours": ctx.impl.EncoderLayer, "nn.TransformerEncoderLayer":
                functools.partial(nn.TransformerEncoderLayer, batch_first=True)}
    torch.manual_seed(ctx.seed)
    models = {name: SequenceClassifier(8, 10, 8, d_model=p["d_model"], heads=HEADS, dim_feedforward=2 * p["d_model"],
                                       layer=build) for name, build in builders.items()}
    models["nn.TransformerEncoderLayer"].load_state_dict(models["ours"].state_dict())
    histories = {}
    for name, model in models.items():
        optimizer = torch.optim.Adam(model.parameters(), lr=p["lr"])
        histories[name] = fit(model, optimizer, train, test, p["epochs"], p["batch_size"],
                              torch.Generator().manual_seed(ctx.seed), log=ctx.log, prefix=f"{name}/")
    ours_final, theirs_final = histories["ours"][-1], histories["nn.TransformerEncoderLayer"][-1]
    ctx.metrics.update(test_accuracy=ours_final["test_accuracy"], test_loss=ours_final["test_loss"],
                       nn_test_accuracy=theirs_final["test_accuracy"],
                       curve_max_abs_diff=max(abs(a["train_loss"] - b["train_loss"]) for a, b in
                                              zip(histories["ours"], histories["nn.TransformerEncoderLayer"])),
                       train_size=len(x_train), test_size=len(x_test), epochs=p["epochs"])
    plot_histories(ctx, histories, f"a13, digits ({len(x_train)} train)")

    # speed: forward + backward of one layer, and the eval forward (PyTorch's fused fast path under no_grad)
    n, length, d_model = p["bench_shape"]
    ours, theirs = layer_pair(ctx.impl, d_model, True, "relu", torch.float32)
    x = torch.randn(n, length, d_model, generator=g, requires_grad=True)

    def step(layer):
        def go():
            with torch.enable_grad():
                layer(x).sum().backward()
        return go

    ctx.bench["forward_backward"] = compare(step(ours), step(theirs), min_run_time=p["bench_seconds"])
    ours.eval()
    theirs.eval()
    ctx.bench["eval_forward"] = compare(lambda: ours(x), lambda: theirs(x), min_run_time=p["bench_seconds"])
    ctx.bench["ratio"] = ctx.bench["forward_backward"]["ratio"]
    ctx.bench["shape"] = p["bench_shape"]
    ctx.bench["train_seconds"] = {name: sum(h["seconds"] for h in history) for name, history in histories.items()}
