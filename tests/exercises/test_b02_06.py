"""b02-06: softmax as a custom autograd Function with a hand-written backward, graded against torch.softmax (values and
gradients along every dim) and torch.autograd.gradcheck / gradgradcheck in float64."""
import pytest
import torch

from grading import failing_checks

EXERCISE = "b02-06"
SHAPES = [(7,), (3, 5), (2, 3, 4), (1, 1), (4, 300)]


@pytest.fixture(scope="module")
def softmax(impl_for):
    return impl_for(EXERCISE).softmax


def gradient(fn, x, upstream):
    x = x.detach().clone().requires_grad_()
    (grad,) = torch.autograd.grad(fn(x), x, upstream)
    return grad


def check_forward_matches_torch(softmax):
    for shape in SHAPES:
        for dim in range(-len(shape), len(shape)):
            for dtype, rtol in [(torch.float64, 1e-10), (torch.float32, 1e-5)]:
                x = torch.randn(shape, dtype=dtype) * 5
                y = softmax(x, dim=dim)
                assert y.dtype == dtype
                torch.testing.assert_close(y, torch.softmax(x, dim=dim), rtol=rtol, atol=1e-7)


def check_many_rows(softmax):
    # hundreds of rows: an implementation that works through the tensor in pieces must still normalise every
    # whole row along `dim`, whichever dim that is
    for shape in [(300,), (300, 40), (300, 3, 20), (2, 300, 20)]:
        x = torch.randn(shape) * 5
        for dim in range(-len(shape), len(shape)):
            torch.testing.assert_close(softmax(x, dim=dim), torch.softmax(x, dim=dim), rtol=1e-5, atol=1e-7)


def check_backward_matches_torch(softmax):
    for shape in SHAPES:
        for dim in range(-len(shape), len(shape)):
            x, upstream = torch.randn(shape, dtype=torch.float64) * 3, torch.randn(shape, dtype=torch.float64)
            torch.testing.assert_close(gradient(lambda t: softmax(t, dim=dim), x, upstream),
                                       gradient(lambda t: torch.softmax(t, dim=dim), x, upstream), rtol=1e-9, atol=1e-12)


def check_jacobian_is_diag_minus_outer(softmax):
    # the backward against the analytic Jacobian diag(y) - y yᵀ, row by row
    x = torch.randn(6, dtype=torch.float64)
    y = torch.softmax(x, dim=0)
    jacobian = torch.autograd.functional.jacobian(lambda t: softmax(t, dim=0), x)
    torch.testing.assert_close(jacobian, torch.diag(y) - torch.outer(y, y), rtol=1e-10, atol=1e-12)


def check_is_custom_function(softmax):
    y = softmax(torch.randn(2, 3, requires_grad=True), dim=-1)
    assert isinstance(y.grad_fn, torch.autograd.function.BackwardCFunction), type(y.grad_fn).__name__


def check_gradcheck(softmax):
    x = torch.randn(3, 4, 5, dtype=torch.float64, requires_grad=True)
    for dim in (0, -1, 1):
        assert torch.autograd.gradcheck(lambda t: softmax(t, dim=dim), (x,))
        assert torch.autograd.gradgradcheck(lambda t: softmax(t, dim=dim), (x,))


def check_large_logits(softmax):
    x = torch.tensor([[1e4, 0.0, -1e4], [1e4, 1e4 - 1, 5.0], [-1e4, -1e4, -1e4]])
    upstream = torch.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0], [1.0, 0.0, -1.0]])
    y = softmax(x, dim=-1)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, torch.softmax(x, dim=-1))
    grad = gradient(lambda t: softmax(t, dim=-1), x, upstream)
    assert torch.isfinite(grad).all()
    torch.testing.assert_close(grad, gradient(lambda t: torch.softmax(t, dim=-1), x, upstream))


def check_non_contiguous(softmax):
    for x in [torch.randn(6, 8, dtype=torch.float64).t(), torch.randn(4, 10, dtype=torch.float64)[:, ::3]]:
        assert not x.is_contiguous()
        upstream = torch.randn(x.shape, dtype=torch.float64)
        for dim in (0, 1):
            torch.testing.assert_close(softmax(x, dim=dim), torch.softmax(x, dim=dim))
            torch.testing.assert_close(gradient(lambda t: softmax(t, dim=dim), x, upstream),
                                       gradient(lambda t: torch.softmax(t, dim=dim), x, upstream))


def check_empty_and_zero_dim(softmax):
    for shape, dim in [((0, 3), 0), ((0, 3), 1), ((3, 0), 1), ((0,), 0)]:
        x = torch.empty(shape, requires_grad=True)
        y = softmax(x, dim=dim)
        assert y.shape == shape
        y.sum().backward()
        assert x.grad.shape == shape
    x = torch.tensor(3.0, requires_grad=True)  # 0-d: softmax is 1, its gradient 0
    for dim in (0, -1):
        y = softmax(x, dim=dim)
        assert y.shape == () and y.item() == 1.0
        assert float(torch.autograd.grad(y, x)[0]) == 0.0


def check_default_dim(softmax):
    x = torch.randn(2, 3, 4, dtype=torch.float64)
    torch.testing.assert_close(softmax(x), torch.softmax(x, dim=-1))


def check_input_untouched(softmax):
    x = torch.randn(4, 5, dtype=torch.float64)
    before = x.clone()
    leaf = x.requires_grad_()
    softmax(leaf, dim=0).pow(2).sum().backward()
    torch.testing.assert_close(leaf.detach(), before, rtol=0, atol=0)


def check_errors_name_the_problem(softmax):
    with pytest.raises(TypeError, match="int64"):
        softmax(torch.arange(4), dim=0)
    with pytest.raises(TypeError, match="list"):
        softmax([1.0, 2.0], dim=0)
    for shape, dim in [((2, 3), 2), ((2, 3), -3), ((3,), 1), ((), 1), ((), -2)]:
        with pytest.raises(IndexError, match=str(dim)):
            softmax(torch.randn(shape), dim=dim)


CHECKS = [check_forward_matches_torch, check_many_rows, check_backward_matches_torch,
          check_jacobian_is_diag_minus_outer, check_is_custom_function, check_gradcheck, check_large_logits,
          check_non_contiguous, check_empty_and_zero_dim, check_default_dim, check_input_untouched,
          check_errors_name_the_problem]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_softmax(softmax, check):
    check(softmax)


def softmax_function(backward, shift=True):
    """A custom Function with a max-shifted forward (unless shift=False) and `backward(y, grad_out, dim)`."""
    class Broken(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, dim):
            e = (x - x.amax(dim, keepdim=True) if shift and x.numel() else x).exp()
            y = e / e.sum(dim, keepdim=True)
            ctx.dim = dim
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad_out):
            return backward(*ctx.saved_tensors, grad_out, ctx.dim), None

    def apply(x, dim=-1):
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"softmax needs a float tensor, got {getattr(x, 'dtype', type(x).__name__)}")
        if not -max(x.dim(), 1) <= dim < max(x.dim(), 1):
            raise IndexError(f"dim {dim}")
        return Broken.apply(x, dim)
    return apply


def right(y, g, dim):
    return y * (g - (g * y).sum(dim, keepdim=True))


def autograd_only(x, dim=-1):
    if not x.is_floating_point():
        raise TypeError(f"got {x.dtype}")
    e = (x - x.amax(dim, keepdim=True)).exp()
    return e / e.sum(dim, keepdim=True)


BROKEN = {  # name: (implementation, the check that must reject it)
    "no_dot_term": (softmax_function(lambda y, g, dim: y * g), "check_backward_matches_torch"),
    "dot_over_dim_0": (softmax_function(lambda y, g, dim: y * (g - (g * y).sum(0, keepdim=True))),
                       "check_backward_matches_torch"),
    "wrong_sign": (softmax_function(lambda y, g, dim: y * ((g * y).sum(dim, keepdim=True) - g)),
                   "check_jacobian_is_diag_minus_outer"),
    "diagonal_only": (softmax_function(lambda y, g, dim: y * (1 - y) * g), "check_jacobian_is_diag_minus_outer"),
    "not_twice_differentiable": (softmax_function(lambda y, g, dim: right(y.detach(), g, dim)), "check_gradcheck"),
    "no_max_shift": (softmax_function(right, shift=False), "check_large_logits"),
    "autograd_only": (autograd_only, "check_is_custom_function"),
}


@pytest.mark.suite_check
@pytest.mark.parametrize("name", BROKEN)
def test_broken_softmax_is_rejected(name):
    broken, rejected_by = BROKEN[name]
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], broken) == [rejected_by]


@pytest.mark.suite_check
def test_no_builtin_softmax_in_reference():
    import inspect

    from torchkata.autograd import softmax as module

    source = inspect.getsource(module)
    for builtin in ("torch.softmax(", "F.softmax(", "nn.Softmax(", "log_softmax", "_softmax_backward_data", ".softmax("):
        assert builtin not in source, builtin
