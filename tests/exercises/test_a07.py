"""a07: LayerNorm by hand, graded against F.layer_norm and nn.LayerNorm: any normalized_shape, with and without the
affine weight and bias, values and gradients (gradcheck in float64), eps, float16/bfloat16 and clear shape errors."""
import inspect
import types
import warnings
from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grading import failing_checks

EXERCISE = "a07"
# (input shape, normalized_shape): an int, tuples of one to three dims, a list and a torch.Size
CASES = [((4, 7), 7), ((3, 5), (5,)), ((2, 3, 4, 5), (4, 5)), ((2, 3, 4), [2, 3, 4]), ((6, 2, 3), torch.Size([2, 3])),
         ((9,), 9), ((3, 1), 1)]
FORBIDDEN = ("F.layer_norm", "functional.layer_norm", "torch.layer_norm", "native_layer_norm", "nn.LayerNorm(",
             "group_norm", "rms_norm")


@pytest.fixture(scope="module")
def impl(impl_for):
    return impl_for(EXERCISE)


def trailing(normalized_shape):
    return (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)


def affine(shape, dtype, weight, bias):
    """(weight, bias), each a random tensor of `shape` or None."""
    return (torch.randn(shape, dtype=dtype) if weight else None), (torch.randn(shape, dtype=dtype) if bias else None)


def grads(fn, *tensors):
    """Gradients of (fn(*tensors) * upstream).sum() into every tensor that is not None."""
    leaves = [t.detach().clone().requires_grad_() if t is not None else None for t in tensors]
    out = fn(*leaves)
    upstream = torch.linspace(-2, 3, out.numel(), dtype=out.dtype).reshape(out.shape)
    return torch.autograd.grad((out * upstream).sum(), [t for t in leaves if t is not None])


AFFINE = [(False, False, torch.float64, 1e-10), (True, False, torch.float64, 1e-10), (False, True, torch.float64, 1e-10),
          (True, True, torch.float32, 1e-5)]  # (weight, bias, dtype, rtol)


def check_matches_functional(impl):
    for shape, normalized in CASES:
        for weight, bias, dtype, rtol in AFFINE:
            x = torch.randn(shape, dtype=dtype) * 3 + 2
            w, b = affine(trailing(normalized), dtype, weight, bias)
            y = impl.layer_norm(x, normalized, w, b, eps=1e-5)
            assert y.dtype == dtype and y.shape == x.shape
            torch.testing.assert_close(y, F.layer_norm(x, trailing(normalized), w, b, 1e-5), rtol=rtol, atol=1e-6)


def check_gradients_match(impl):
    for (shape, normalized), (weight, bias) in zip(CASES, [(False, False), (True, True), (True, False)] * 3):
        x = torch.randn(shape, dtype=torch.float64) * 2 - 1
        w, b = affine(trailing(normalized), torch.float64, weight, bias)
        ours = grads(lambda *t: impl.layer_norm(t[0], normalized, t[1], t[2]), x, w, b)
        want = grads(lambda *t: F.layer_norm(t[0], trailing(normalized), t[1], t[2]), x, w, b)
        for got, expected in zip(ours, want, strict=True):
            torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-11)


def check_gradcheck(impl):
    for shape, normalized in [((3, 4), (4,)), ((2, 2, 3), (2, 3))]:
        x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
        w = torch.randn(normalized, dtype=torch.float64, requires_grad=True)
        b = torch.randn(normalized, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda x, w, b: impl.layer_norm(x, normalized, w, b, eps=0.1), (x, w, b))


def check_eps(impl):
    # rows whose variance is near eps: where eps sits (inside the square root, added to the biased variance) shows
    x = torch.randn(5, 8, dtype=torch.float64) * torch.tensor([1e-4, 1e-3, 3e-3, 1e-2, 1.0], dtype=torch.float64)[:, None]
    for eps in (1e-5, 1e-3, 0.5):
        torch.testing.assert_close(impl.layer_norm(x, 8, eps=eps), F.layer_norm(x, (8,), eps=eps), rtol=1e-10, atol=0)
    torch.testing.assert_close(impl.layer_norm(x, 8), F.layer_norm(x, (8,)), rtol=1e-10, atol=0)  # default 1e-5
    constant = torch.full((2, 6), 3.0, dtype=torch.float64)  # zero variance: 0 (then the bias), finite gradients
    bias = torch.arange(6, dtype=torch.float64)
    torch.testing.assert_close(impl.layer_norm(constant, 6, bias=bias), bias.expand(2, 6))
    for got, want in zip(grads(lambda x: impl.layer_norm(x, 6), constant), grads(lambda x: F.layer_norm(x, (6,)), constant)):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


def check_low_precision(impl):
    # magnitudes whose squares overflow float16 (65504): statistics must be taken in float32, as PyTorch does
    for dtype, tol in [(torch.float16, 2e-3), (torch.bfloat16, 2e-2)]:
        for scale in (1.0, 400.0):
            x = (torch.randn(16, 32) * scale + scale).to(dtype)
            w, b = torch.randn(32).to(dtype), torch.randn(32).to(dtype)
            y = impl.layer_norm(x, 32, w, b)
            assert y.dtype == dtype and torch.isfinite(y).all()
            torch.testing.assert_close(y.float(), F.layer_norm(x, (32,), w, b).float(), rtol=tol, atol=tol)


def check_non_contiguous(impl):
    for x in [torch.randn(6, 5, dtype=torch.float64).t(), torch.randn(4, 12, dtype=torch.float64)[:, ::2],
              torch.randn(3, 4, 5, dtype=torch.float64).permute(2, 0, 1)]:
        assert not x.is_contiguous()
        normalized = tuple(x.shape[1:])
        torch.testing.assert_close(impl.layer_norm(x, normalized), F.layer_norm(x, normalized))
        for got, want in zip(grads(lambda t: impl.layer_norm(t, normalized), x),
                             grads(lambda t: F.layer_norm(t, normalized), x)):
            torch.testing.assert_close(got, want)


def check_input_untouched(impl):
    x, w, b = torch.randn(4, 6), torch.randn(6), torch.randn(6)
    before = (x.clone(), w.clone(), b.clone())
    impl.layer_norm(x, 6, w, b)
    for after, was in zip((x, w, b), before):
        assert torch.equal(after, was)


def check_empty(impl):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "degrees of freedom" or empty-mean warnings either
        for shape, normalized in [((0, 4), 4), ((2, 0, 3), (3,)), ((0, 2, 3), (2, 3)), ((2, 0), 0)]:
            x = torch.empty(shape, requires_grad=True)
            y = impl.layer_norm(x, normalized)
            assert y.shape == shape
            y.sum().backward()
            assert x.grad.shape == shape


def check_shape_errors(impl):
    x = torch.randn(3, 4)
    for normalized in [5, (3,), (2, 3, 4), (4, 3)]:  # wrong size, wrong dim, more dims than the input, wrong order
        with pytest.raises(ValueError) as error:
            impl.layer_norm(x, normalized)
        message = str(error.value)
        assert str(trailing(normalized)) in message and "(3, 4)" in message, message
    with pytest.raises(ValueError, match="weight"):
        impl.layer_norm(x, 4, torch.ones(3))
    with pytest.raises(ValueError, match="bias"):
        impl.layer_norm(x, 4, torch.ones(4), torch.zeros(4, 1))
    with pytest.raises(ValueError, match="normalized_shape"):
        impl.layer_norm(x, ())
    with pytest.raises(TypeError, match="int64"):
        impl.layer_norm(torch.arange(8).reshape(2, 4), 4)
    module = impl.LayerNorm((2, 3))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        module(torch.randn(4, 3, 2))


def check_module_matches_nn(impl):
    for normalized, options in [(8, {}), ((2, 4), {}), (8, {"bias": False}), ((2, 4), {"elementwise_affine": False}),
                                (8, {"eps": 0.25})]:
        ours, theirs = impl.LayerNorm(normalized, **options), nn.LayerNorm(normalized, **options)
        assert [(k, v.shape) for k, v in ours.named_parameters()] == [(k, v.shape) for k, v in theirs.named_parameters()]
        for (k, mine), want in zip(ours.state_dict().items(), theirs.state_dict().values()):
            assert torch.equal(mine, want), k  # initial values: the identity transform
        assert ours.eps == theirs.eps
        with torch.no_grad():  # random affine parameters, loaded into ours from nn.LayerNorm's state_dict
            for p in theirs.parameters():
                p.normal_()
        ours.load_state_dict(theirs.state_dict())
        x = torch.randn(3, *trailing(normalized))
        torch.testing.assert_close(ours(x), theirs(x))
    half = impl.LayerNorm(4, dtype=torch.float64)
    assert half.weight.dtype == torch.float64 and half.bias.dtype == torch.float64
    assert sum(p.numel() for p in impl.LayerNorm((3, 5)).parameters()) == 30


def check_no_builtin(impl):
    source = inspect.getsource(impl)
    for builtin in FORBIDDEN:
        assert builtin not in source, builtin
    refuse = mock.Mock(side_effect=AssertionError("a built-in layer norm was called"))
    with mock.patch("torch.nn.functional.layer_norm", refuse), mock.patch("torch.layer_norm", refuse), \
            mock.patch("torch.native_layer_norm", refuse):
        impl.layer_norm(torch.randn(2, 3), 3)
        impl.LayerNorm(3)(torch.randn(2, 3))


CHECKS = [check_matches_functional, check_gradients_match, check_gradcheck, check_eps, check_low_precision,
          check_non_contiguous, check_input_untouched, check_empty, check_shape_errors, check_module_matches_nn,
          check_no_builtin]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_layer_norm(impl, check):
    check(impl)


# deliberately broken layer norms, each with the check that must reject it
def broken(variance=lambda c, dims: c.pow(2).mean(dims, keepdim=True), eps_inside=True, last_dim_only=False,
           upcast=True, detach_mean=False, checked=True):
    def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
        shape = trailing(normalized_shape)
        if not shape:
            raise ValueError("normalized_shape is empty")
        if not x.is_floating_point():
            raise TypeError(f"got {x.dtype}")
        if checked and tuple(x.shape[max(x.dim() - len(shape), 0):]) != shape or len(shape) > x.dim():
            raise ValueError(f"normalized_shape {shape} against input {tuple(x.shape)}")
        for name, p in (("weight", weight), ("bias", bias)):
            if checked and p is not None and tuple(p.shape) != shape:
                raise ValueError(name)
        dims = (-1,) if last_dim_only else tuple(range(-len(shape), 0))
        xf = x.float() if upcast and x.dtype in (torch.float16, torch.bfloat16) else x
        mean = xf.mean(dims, keepdim=True)
        centred = xf - (mean.detach() if detach_mean else mean)
        var = variance(centred, dims)
        y = centred / (var + eps).sqrt() if eps_inside else centred / (var.sqrt() + eps)
        y = y if weight is None else y * weight
        return (y if bias is None else y + bias).to(x.dtype)

    class LayerNorm(nn.Module):
        def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, dtype=None):
            super().__init__()
            self.normalized_shape, self.eps = trailing(normalized_shape), eps
            self.weight = nn.Parameter(torch.ones(self.normalized_shape, dtype=dtype)) if elementwise_affine else None
            self.bias = nn.Parameter(torch.zeros(self.normalized_shape, dtype=dtype)) if elementwise_affine and bias else None

        def forward(self, x):
            return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    return types.SimpleNamespace(layer_norm=layer_norm, LayerNorm=LayerNorm)


def unbiased(c, dims):
    n = torch.tensor([c.shape[d] for d in dims]).prod()
    return c.pow(2).sum(dims, keepdim=True) / (n - 1)


class RandomInit(nn.Module):
    def __new__(cls, *args, **kwargs):
        module = broken().LayerNorm(*args, **kwargs)
        if module.weight is not None:
            nn.init.normal_(module.weight)
        return module


BROKEN = {
    "unbiased_variance": (broken(variance=unbiased), "check_matches_functional"),
    "last_dim_only": (broken(last_dim_only=True), "check_matches_functional"),
    "eps_outside_sqrt": (broken(eps_inside=False), "check_eps"),
    "no_float32_statistics": (broken(upcast=False), "check_low_precision"),
    "mean_detached": (broken(detach_mean=True), "check_gradients_match"),
    "shapes_unchecked": (broken(checked=False), "check_shape_errors"),
    "random_init": (types.SimpleNamespace(layer_norm=broken().layer_norm, LayerNorm=RandomInit), "check_module_matches_nn"),
    "calls_torch": (types.SimpleNamespace(layer_norm=lambda x, s, w=None, b=None, eps=1e-5: F.layer_norm(x, trailing(s), w, b, eps),
                                          LayerNorm=nn.LayerNorm), "check_no_builtin"),
}


@pytest.mark.suite_check
@pytest.mark.parametrize("name", BROKEN)
def test_broken_layer_norm_is_rejected(name):
    implementation, rejected_by = BROKEN[name]
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], implementation) == [rejected_by]
