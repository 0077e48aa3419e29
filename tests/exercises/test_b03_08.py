"""b03-08: Sigmoid, Tanh and GELU (exact and tanh approximation) by hand, against torch's: values and gradients in
float32 and float64 over shapes (0-d, empty, non-contiguous), large inputs that overflow a naive exp (no nan, no
inf), tiny inputs where a naive tanh loses its digits, gradcheck in float64; the modules against nn's."""
import ast
import inspect
import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grading import failing_checks

EXERCISE = "b03-08"
NATIVE = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "gelu": F.gelu,
          "gelu_tanh": lambda x: F.gelu(x, approximate="tanh")}
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-12, atol=1e-13)}


@pytest.fixture(scope="module")
def act(impl_for):
    return impl_for(EXERCISE)


def ours(act):
    return {"sigmoid": act.sigmoid, "tanh": act.tanh, "gelu": act.gelu,
            "gelu_tanh": lambda x: act.gelu(x, approximate="tanh")}


def inputs(dtype):
    g = torch.Generator().manual_seed(0)
    wide = torch.cat([torch.randn(200, generator=g, dtype=dtype) * 4, torch.linspace(-12, 12, 97, dtype=dtype),
                      torch.tensor([0.0, 1e-8, -1e-8, 1e-3, -30.0, 30.0], dtype=dtype)])
    return [wide, torch.randn(3, 4, 5, generator=g, dtype=dtype), torch.randn(6, 7, generator=g, dtype=dtype).t(),
            torch.tensor(0.7, dtype=dtype), torch.empty(0, 3, dtype=dtype)]


def check_values_and_gradients(act):
    for name, fn in ours(act).items():
        for dtype in (torch.float32, torch.float64):
            for x in inputs(dtype):
                a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
                out, expected = fn(a), NATIVE[name](b)
                assert out.dtype == dtype and out.shape == x.shape, name
                torch.testing.assert_close(out, expected, **TOL[dtype], msg=name)
                upstream = torch.randn(x.shape, dtype=dtype)
                (out * upstream).sum().backward()
                (expected * upstream).sum().backward()
                torch.testing.assert_close(a.grad, b.grad, **TOL[dtype], msg=f"{name} gradient")


def check_extremes_stay_finite(act):
    x = torch.tensor([-1e4, -100.0, -89.0, 89.0, 100.0, 1e4, float("-inf"), float("inf")], requires_grad=True)
    for name, fn in ours(act).items():
        out = fn(x)
        expected = NATIVE[name](x.detach())
        assert not out[:6].isnan().any(), (name, out)  # gelu(-inf) is -inf * 0: nan in torch too
        torch.testing.assert_close(out, expected, equal_nan=True, msg=name)
        (grad,) = torch.autograd.grad(out.sum(), x)
        assert not grad[:6].isnan().any(), (name, grad)  # finite inputs: a finite gradient, no inf/inf
        torch.testing.assert_close(grad[:6], torch.autograd.grad(NATIVE[name](x).sum(), x)[0][:6], msg=name)


def check_tiny_inputs_keep_their_digits(act):
    x = torch.tensor([1e-30, -1e-20, 1e-7, -3e-5, 2e-3], dtype=torch.float32)
    torch.testing.assert_close(act.tanh(x), torch.tanh(x), rtol=1e-6, atol=0)  # relative: tanh x ≈ x
    torch.testing.assert_close(act.gelu(x), F.gelu(x), rtol=1e-6, atol=0)


def check_gradcheck(act):
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    for name, fn in ours(act).items():
        assert torch.autograd.gradcheck(fn, (x,)), name


def check_modules(act):
    x = torch.randn(5, 6)
    pairs = [(act.ReLU(), nn.ReLU()), (act.Sigmoid(), nn.Sigmoid()), (act.Tanh(), nn.Tanh()), (act.GELU(), nn.GELU()),
             (act.GELU("tanh"), nn.GELU("tanh")), (act.GELU(approximate="tanh"), nn.GELU(approximate="tanh"))]
    for mine, theirs in pairs:
        assert isinstance(mine, nn.Module) and list(mine.parameters()) == []
        torch.testing.assert_close(mine(x), theirs(x), msg=type(theirs).__name__)
    name = "".join(["ta", "nh"])  # equal to "tanh" but a different object: compared by value, not identity
    torch.testing.assert_close(act.gelu(x, approximate=name), F.gelu(x, approximate="tanh"))
    with pytest.raises(ValueError, match="approximate"):
        act.gelu(x, approximate="erf")
    with pytest.raises(ValueError, match="approximate"):
        act.GELU("fast")(x)


CHECKS = [check_values_and_gradients, check_extremes_stay_finite, check_tiny_inputs_keep_their_digits,
          check_gradcheck, check_modules]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_activations(act, check):
    check(act)


def test_no_builtin_activation_in_reference():
    from torchkata.nn import activations as ref

    used = {node.attr for node in ast.walk(ast.parse(inspect.getsource(ref))) if isinstance(node, ast.Attribute)}
    assert not {n for n in used if any(k in n.lower() for k in ("sigmoid", "tanh", "gelu", "relu", "logistic"))
                and not n.endswith("Function")}, used


def broken_variants():
    from torchkata.nn import activations as ref

    def variant(**overrides):
        return types.SimpleNamespace(**{**vars(ref), **overrides})

    def naive_sigmoid(x):
        return 1 / (1 + torch.exp(-x))

    def naive_tanh(x):  # autograd through exp: inf / inf at large |x|
        e = torch.exp(2 * x)
        return (e - 1) / (e + 1)

    def sigmoid_gelu(x, approximate="none"):  # the sigmoid approximation x σ(1.702 x)
        return x * ref.sigmoid(1.702 * x)

    def tanh_with_sigmoid_grad(x):
        return ref.sigmoid(2 * x) * 2 - 1

    class WrongSlope(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            out = ref.tanh(x.detach())
            ctx.save_for_backward(out)
            return out

        @staticmethod
        def backward(ctx, grad_out):
            (out,) = ctx.saved_tensors
            return grad_out * (1 - out)

    return {  # name: (variant, the check that must reject it)
        "naive_tanh": (variant(tanh=naive_tanh), "check_extremes_stay_finite"),
        "naive_sigmoid_backward": (variant(sigmoid=naive_sigmoid), "check_extremes_stay_finite"),
        "sigmoid_approximation_of_gelu": (variant(gelu=sigmoid_gelu), "check_values_and_gradients"),
        "tanh_from_sigmoid_loses_digits": (variant(tanh=tanh_with_sigmoid_grad), "check_tiny_inputs_keep_their_digits"),
        "wrong_tanh_slope": (variant(tanh=WrongSlope.apply), "check_values_and_gradients"),
    }


@pytest.mark.suite_check
@pytest.mark.parametrize("name", list(broken_variants()))
def test_broken_activation_is_rejected(name):
    broken, rejected_by = broken_variants()[name]
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], broken) == [rejected_by]
