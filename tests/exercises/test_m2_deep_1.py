"""m2-deep-1: AMP by hand, its casting rules graded against torch.autocast op by op and on a small CNN."""
import functools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grading import failing_checks

EXERCISE = "m2-deep-1"
LOW = (torch.bfloat16, torch.float16)


@pytest.fixture(scope="module")
def amp(impl_for):
    return impl_for(EXERCISE)


def ops():
    """(name, call): the ops the curriculum's models use, on float32 inputs drawn once."""
    g = torch.Generator().manual_seed(0)
    x, w, b = torch.randn(4, 8, generator=g), torch.randn(3, 8, generator=g), torch.randn(3, generator=g)
    img, kernel = torch.randn(2, 3, 8, 8, generator=g), torch.randn(4, 3, 3, 3, generator=g)
    seq, t, target = torch.randn(2, 5, 8, generator=g), torch.randint(0, 3, (4,), generator=g), torch.rand(4, 3, generator=g)
    return [
        ("linear", lambda: F.linear(x, w, b)),
        ("linear kwargs", lambda: F.linear(input=x, weight=w, bias=b)),
        ("conv2d, max_pool", lambda: F.max_pool2d(F.conv2d(img, kernel, padding=1), 2)),
        ("conv1d", lambda: F.conv1d(seq, seq[:, :, :3])),
        ("matmul @", lambda: x @ w.t()),
        ("torch.matmul", lambda: torch.matmul(x, w.t())),
        ("mm", lambda: torch.mm(x, w.t())),
        ("bmm", lambda: torch.bmm(seq, seq.transpose(1, 2))),
        ("addmm", lambda: torch.addmm(b, x, w.t())),
        ("baddbmm", lambda: torch.baddbmm(seq[:, :, :5], seq, seq.transpose(1, 2))),
        ("sdpa", lambda: F.scaled_dot_product_attention(seq, seq, seq)),
        ("relu of linear", lambda: F.relu(F.linear(x, w))),
        ("relu", lambda: F.relu(x)),
        ("cross_entropy of linear", lambda: F.cross_entropy(F.linear(x, w, b), t)),
        ("cross_entropy, low input", lambda: F.cross_entropy(x[:, :3].bfloat16(), t)),
        ("nll_loss", lambda: F.nll_loss(x[:, :3].half(), t)),
        ("mse_loss", lambda: F.mse_loss(F.linear(x, w), target)),
        ("bce with logits", lambda: F.binary_cross_entropy_with_logits(F.linear(x, w), target)),
        ("prod", lambda: F.linear(x, w).prod()),
        ("cdist", lambda: torch.cdist(F.linear(x, w), F.linear(x, w))),
        ("add low + float32", lambda: F.linear(x, w) + target),
        ("linear of float16 input", lambda: F.linear(x.half(), w)),
        ("float64 linear", lambda: F.linear(x.double(), w.double())),
        ("integer matmul", lambda: torch.arange(6).reshape(2, 3) @ torch.arange(6).reshape(3, 2)),
    ]


@functools.cache
def torch_autocast_results():
    """{(dtype, name): torch.autocast's result}, computed once for every grading."""
    results = {}
    for dtype in LOW:
        for name, call in ops():
            with torch.autocast("cpu", dtype=dtype):
                results[dtype, name] = call()
    return results


def check_ops_match_torch_autocast(amp):
    want = torch_autocast_results()
    for dtype in LOW:
        for name, call in ops():
            with amp.autocast(dtype):
                got = call()
            assert got.dtype == want[dtype, name].dtype, (name, dtype, got.dtype, want[dtype, name].dtype)
            assert torch.equal(got, want[dtype, name]), (name, dtype)


def small_cnn():
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 5 * 5, 10))


def loss_and_grads(model, context, images, labels):
    model.zero_grad(set_to_none=True)
    with context:
        loss = F.cross_entropy(model(images), labels)
    loss.backward()
    return loss, [p.grad for p in model.parameters()]


def check_model_gradients_match_torch_autocast(amp):
    model, images, labels = small_cnn(), torch.randn(6, 1, 12, 12), torch.randint(0, 10, (6,))
    for dtype in LOW:
        want_loss, want = loss_and_grads(model, torch.autocast("cpu", dtype=dtype), images, labels)
        loss, grads = loss_and_grads(model, amp.autocast(dtype), images, labels)
        assert loss.dtype == torch.float32 and torch.equal(loss, want_loss), dtype
        for got, expected, param in zip(grads, want, model.parameters()):
            assert got.dtype == torch.float32 and param.dtype == torch.float32  # float32 master weights
            assert torch.equal(got, expected), dtype
    fp32_loss, _ = loss_and_grads(model, amp.autocast(torch.bfloat16, enabled=False), images, labels)
    assert not torch.equal(fp32_loss, want_loss)  # the low precision really changed the numbers


def check_disabled_and_exit(amp):
    x, w = torch.randn(4, 8), torch.randn(3, 8)
    with amp.autocast(torch.bfloat16, enabled=False):
        assert F.linear(x, w).dtype == torch.float32
        assert F.cross_entropy(x.bfloat16(), torch.arange(4)).dtype == torch.bfloat16  # not cast up either
    with amp.autocast(torch.float16):
        assert F.linear(x, w).dtype == torch.float16
    assert F.linear(x, w).dtype == torch.float32  # nothing is left cast once the block ends
    assert amp.autocast().dtype == torch.bfloat16  # bfloat16 by default, as on CPU


def check_rules(amp):
    assert amp.rule(F.linear) == "lower" and amp.rule(F.conv2d) == "lower" and amp.rule(torch.Tensor.__matmul__) == "lower"
    assert amp.rule(F.cross_entropy) == "float32" and amp.rule(F.mse_loss) == "float32"
    assert amp.rule(F.relu) == "keep" and amp.rule(torch.add) == "keep" and amp.rule(F.softmax) == "keep"


def check_cast_inputs_nested(amp):
    a, b, c, n = torch.randn(2), torch.randn(2).bfloat16(), torch.randn(2).double(), torch.arange(2)
    args, kwargs = amp.cast_inputs((a, [b, (c, n)], 3), {"k": a, "m": [b]}, (torch.float32,), torch.float16)
    assert args[0].dtype == torch.float16 and args[1][0].dtype == torch.bfloat16
    assert args[1][1][0].dtype == torch.float64 and args[1][1][1].dtype == torch.int64 and args[2] == 3
    assert kwargs["k"].dtype == torch.float16 and kwargs["m"][0].dtype == torch.bfloat16
    args, _ = amp.cast_inputs((a, b), {}, LOW, torch.float32)
    assert args[0] is a and args[1].dtype == torch.float32


def check_low_precision_dtype(amp):
    assert amp.low_precision_dtype("cpu") == torch.bfloat16
    assert amp.low_precision_dtype(torch.device("cuda", 0)) == torch.float16
    assert amp.low_precision_dtype("cuda") == torch.float16
    assert amp.low_precision_dtype("meta") == torch.bfloat16  # any device but CUDA


def check_bad_dtype_named(amp):
    for dtype in (torch.float32, torch.float64, torch.int8):
        with pytest.raises(ValueError, match=str(dtype)):
            amp.autocast(dtype)


CHECKS = [check_ops_match_torch_autocast, check_model_gradients_match_torch_autocast, check_disabled_and_exit,
          check_rules, check_cast_inputs_nested, check_low_precision_dtype, check_bad_dtype_named]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_amp(amp, check):
    check(amp)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the float16 CUDA path needs a GPU")
def test_cuda_matches_torch_autocast(amp):
    model = small_cnn().cuda()
    images, labels = torch.randn(6, 1, 12, 12, device="cuda"), torch.randint(0, 10, (6,), device="cuda")
    dtype = amp.low_precision_dtype("cuda")
    want_loss, want = loss_and_grads(model, torch.autocast("cuda", dtype=dtype), images, labels)
    loss, grads = loss_and_grads(model, amp.autocast(dtype), images, labels)
    torch.testing.assert_close(loss, want_loss)
    for got, expected in zip(grads, want):
        torch.testing.assert_close(got, expected)


class Broken:
    """The reference with one part replaced."""

    def __init__(self, amp, **parts):
        self.amp, self.parts = amp, parts

    def __getattr__(self, name):
        return self.parts.get(name, getattr(self.amp, name))


def broken_variants(amp):
    class losses_in_low(amp.autocast):  # the loss list ignored: cross-entropy on bfloat16 logits
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if amp.rule(func) == "float32":
                return func(*args, **(kwargs or {}))
            return super().__torch_function__(func, types, args, kwargs)

    class casts_everything(amp.autocast):  # every float input lowered, ReLU of float32 input too
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if amp.rule(func) == "keep":
                args, kwargs = amp.cast_inputs(args, kwargs or {}, (torch.float32,), self.dtype)
            return super().__torch_function__(func, types, args, kwargs)

    class lowers_float64(amp.autocast):  # float64 tensors cast down too
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if amp.rule(func) == "lower":
                args, kwargs = amp.cast_inputs(args, kwargs or {}, (torch.float64,), self.dtype)
            return super().__torch_function__(func, types, args, kwargs)

    return {"losses_in_low": Broken(amp, autocast=losses_in_low),
            "casts_everything": Broken(amp, autocast=casts_everything),
            "lowers_float64": Broken(amp, autocast=lowers_float64),
            "float16_on_cpu": Broken(amp, low_precision_dtype=lambda device: torch.float16)}


@pytest.mark.suite_check
def test_broken_amp_is_rejected(amp):
    for name, broken in broken_variants(amp).items():  # the cheap checks suffice to reject each
        assert failing_checks([check_low_precision_dtype, check_ops_match_torch_autocast], broken), name
