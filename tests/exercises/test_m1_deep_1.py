"""m1-deep-1: the Snake activation x + sin²(ax)/a as a custom autograd Function with a hand-written backward, graded
against autograd differentiating the formula (values, both gradients, broadcasting of a), gradcheck and
gradgradcheck in float64, and the Snake module."""
import math

import pytest
import torch

from grading import failing_checks

EXERCISE = "m1-deep-1"
F64 = torch.float64
# (x shape, alpha shape): one alpha per channel on dim 1, a scalar alpha, and alpha over the last dim
CASES = [((4, 5), (5,)), ((4, 5), ()), ((2, 3, 4, 4), (3, 1, 1)), ((6,), (6,)), ((3, 4), (3, 1)), ((2, 3), (2, 3))]


@pytest.fixture(scope="module")
def impl(impl_for):
    return impl_for(EXERCISE)


def formula(x, alpha):
    return x + torch.sin(alpha * x) ** 2 / alpha


def inputs(x_shape, alpha_shape, dtype=F64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(x_shape, generator=g, dtype=dtype) * 2
    alpha = torch.rand(alpha_shape, generator=g, dtype=dtype) * 2 + 0.2
    return x, alpha


def grads(fn, x, alpha, upstream):
    x, alpha = x.detach().clone().requires_grad_(), alpha.detach().clone().requires_grad_()
    y = fn(x, alpha)
    return (y.detach(), *torch.autograd.grad(y, (x, alpha), upstream))


def check_forward_matches_formula(impl):
    for x_shape, a_shape in CASES:
        for dtype, rtol in [(F64, 1e-12), (torch.float32, 1e-5)]:
            x, alpha = inputs(x_shape, a_shape, dtype)
            y = impl.snake(x, alpha)
            assert y.dtype == dtype and y.shape == x.shape
            torch.testing.assert_close(y, formula(x, alpha), rtol=rtol, atol=1e-6)


def check_backward_matches_autograd(impl):
    for x_shape, a_shape in CASES:
        x, alpha = inputs(x_shape, a_shape)
        upstream = torch.randn(x_shape, dtype=F64)
        for got, want in zip(grads(impl.snake, x, alpha, upstream), grads(formula, x, alpha, upstream)):
            assert got.shape == want.shape, (got.shape, want.shape)
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def check_derivatives_at_known_points(impl):
    # dy/dx = 1 + sin(2ax): 2 at ax = π/4, 0 at ax = 3π/4; dy/da = x sin(2ax)/a - sin²(ax)/a²
    alpha = torch.tensor([1.0, 2.0], dtype=F64, requires_grad=True)
    x = torch.tensor([math.pi / 4, 3 * math.pi / 8], dtype=F64, requires_grad=True)
    gx, ga = torch.autograd.grad(impl.snake(x, alpha).sum(), (x, alpha))
    torch.testing.assert_close(gx, torch.tensor([2.0, 0.0], dtype=F64), rtol=0, atol=1e-12)
    want_ga = torch.tensor([math.pi / 4 - 0.5, -3 * math.pi / 16 - 0.5 / 4], dtype=F64)
    torch.testing.assert_close(ga, want_ga, rtol=1e-12, atol=1e-12)


def check_gradcheck(impl):
    for x_shape, a_shape in [((3, 4), (4,)), ((2, 3, 2), (3, 1)), ((5,), ())]:
        x, alpha = inputs(x_shape, a_shape)
        args = (x.requires_grad_(), alpha.requires_grad_())
        assert torch.autograd.gradcheck(impl.snake, args)
        assert torch.autograd.gradgradcheck(impl.snake, args)


def check_is_custom_function(impl):
    x, alpha = inputs((2, 3), (3,))
    y = impl.snake(x.requires_grad_(), alpha)
    assert isinstance(y.grad_fn, torch.autograd.function.BackwardCFunction), type(y.grad_fn).__name__


def check_only_needed_gradients(impl):
    # x alone or alpha alone requiring grad: each gets its gradient, the other none
    x, alpha = inputs((3, 4), (4,))
    upstream = torch.randn(3, 4, dtype=F64)
    leaf = x.clone().requires_grad_()
    (gx,) = torch.autograd.grad(impl.snake(leaf, alpha), leaf, upstream)
    torch.testing.assert_close(gx, grads(formula, x, alpha, upstream)[1])
    a_leaf = alpha.clone().requires_grad_()
    (ga,) = torch.autograd.grad(impl.snake(x, a_leaf), a_leaf, upstream)
    torch.testing.assert_close(ga, grads(formula, x, alpha, upstream)[2])
    assert not impl.snake(x, alpha).requires_grad


def check_non_contiguous_and_empty(impl):
    x = torch.randn(5, 4, dtype=F64).t()
    alpha = torch.rand(5, dtype=F64) + 0.5
    assert not x.is_contiguous()
    upstream = torch.randn(4, 5, dtype=F64)
    for got, want in zip(grads(impl.snake, x, alpha, upstream), grads(formula, x, alpha, upstream)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    empty, a = torch.empty(0, 3, requires_grad=True), torch.ones(3, requires_grad=True)
    y = impl.snake(empty, a)
    assert y.shape == (0, 3)
    y.sum().backward()
    assert empty.grad.shape == (0, 3) and torch.equal(a.grad, torch.zeros(3))


def check_negative_alpha(impl):
    # the function is defined for any non-zero alpha (only the module asks for a positive start)
    x, alpha = inputs((3, 4), (4,))
    upstream = torch.randn(3, 4, dtype=F64)
    for got, want in zip(grads(impl.snake, x, -alpha, upstream), grads(formula, x, -alpha, upstream)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def check_large_and_small_values(impl):
    x = torch.tensor([1e4, -1e4, 0.0, 30.0], dtype=F64)
    alpha = torch.tensor([1e-3, 50.0, 1.0, 1e-6], dtype=F64)
    upstream = torch.ones(4, dtype=F64)
    for got, want in zip(grads(impl.snake, x, alpha, upstream), grads(formula, x, alpha, upstream)):
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def check_inputs_untouched(impl):
    x, alpha = inputs((3, 4), (4,))
    x0, a0 = x.clone(), alpha.clone()
    leaf, a_leaf = x.requires_grad_(), alpha.requires_grad_()
    impl.snake(leaf, a_leaf).pow(2).sum().backward()
    assert torch.equal(leaf.detach(), x0) and torch.equal(a_leaf.detach(), a0)


def check_module(impl):
    torch.manual_seed(0)
    layer = impl.Snake(3)
    assert [name for name, _ in layer.named_parameters()] == ["alpha"]
    assert torch.equal(layer.alpha.detach(), torch.ones(3))
    assert torch.equal(impl.Snake(4, alpha=0.5).alpha.detach(), torch.full((4,), 0.5))
    x = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(layer(x), formula(x, layer.alpha.detach().view(3, 1, 1)))
    x = torch.randn(5, 3)
    layer.alpha.data = torch.tensor([0.5, 1.0, 2.0])
    torch.testing.assert_close(layer(x), formula(x, layer.alpha.detach()))
    layer(x).sum().backward()
    assert layer.alpha.grad.shape == (3,)
    with pytest.raises(ValueError, match=r"\(5, 4\)"):
        layer(torch.randn(5, 4))
    with pytest.raises(ValueError, match=r"\(3,\)"):
        layer(torch.randn(3))
    with pytest.raises(ValueError, match=r"\(5, 4\)"):
        impl.Snake(1)(torch.randn(5, 4))  # one alpha would broadcast over 4 channels: the module must say no
    wide = impl.Snake(300)  # beyond the small ints Python caches: channel counts compared by value
    assert wide(torch.randn(2, 300)).shape == (2, 300)
    with pytest.raises(ValueError, match="-1"):
        impl.Snake(3, alpha=-1.0)
    with pytest.raises(ValueError, match="0"):
        impl.Snake(3, alpha=0.0)


def check_errors_name_the_problem(impl):
    x = torch.randn(3, 4)
    with pytest.raises(TypeError, match="int64"):
        impl.snake(torch.arange(4), torch.ones(4))
    with pytest.raises(TypeError, match="alpha"):
        impl.snake(x, 1.0)
    with pytest.raises(ValueError, match=r"\(3,\)"):
        impl.snake(x, torch.ones(3))
    with pytest.raises(ValueError, match=r"\(2, 3, 4\)"):
        impl.snake(x, torch.ones(2, 3, 4))  # broadcasts, but would change x's shape
    with pytest.raises(ValueError, match="zero"):
        impl.snake(x, torch.tensor([1.0, 0.0, 1.0, 1.0]))


CHECKS = [check_forward_matches_formula, check_backward_matches_autograd, check_derivatives_at_known_points,
          check_gradcheck, check_is_custom_function, check_only_needed_gradients, check_non_contiguous_and_empty,
          check_negative_alpha, check_large_and_small_values, check_inputs_untouched, check_module,
          check_errors_name_the_problem]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_snake(impl, check):
    check(impl)


def with_backward(backward, reduce=None):
    """The reference's module with SnakeFunction's backward replaced by backward(x, alpha, g) -> (gx, ga of x's
    shape), ga reduced to alpha's shape by `reduce` (autograd sums it when None)."""
    from torchkata.autograd import snake as module

    class Broken(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, alpha):
            ctx.save_for_backward(x, alpha)
            return formula(x, alpha).detach()

        @staticmethod
        def backward(ctx, g):
            x, alpha = ctx.saved_tensors
            gx, ga = backward(x, alpha, g)
            return gx, ga if reduce is None else reduce(ga, alpha.shape)

    class Impl:
        Snake = module.Snake

        @staticmethod
        def snake(x, alpha):
            return Broken.apply(x, alpha)
    return Impl


def right(x, alpha, g):
    s2 = torch.sin(2 * alpha * x)
    return g * (1 + s2), g * (x * s2 / alpha - torch.sin(alpha * x) ** 2 / alpha**2)


BROKEN = {  # name: (implementation, the check that must reject it)
    "dx_without_identity": (with_backward(lambda x, a, g: (g * torch.sin(2 * a * x), right(x, a, g)[1])),
                            "check_backward_matches_autograd"),
    "dx_sin_not_doubled": (with_backward(lambda x, a, g: (g * (1 + torch.sin(a * x)), right(x, a, g)[1])),
                           "check_derivatives_at_known_points"),
    "da_missing_second_term": (with_backward(lambda x, a, g: (right(x, a, g)[0], g * x * torch.sin(2 * a * x) / a)),
                               "check_backward_matches_autograd"),
    "alpha_grad_averaged": (with_backward(right, reduce=lambda g, shape: g.sum_to_size(shape) * math.prod(shape)
                                          / g.numel()), "check_backward_matches_autograd"),
    "not_twice_differentiable": (with_backward(lambda x, a, g: right(x.detach(), a.detach(), g)), "check_gradcheck"),
    "autograd_only": (type("Impl", (), {"snake": staticmethod(formula)}), "check_is_custom_function"),
}


@pytest.mark.suite_check
@pytest.mark.parametrize("name", BROKEN)
def test_broken_snake_is_rejected(name):
    broken, rejected_by = BROKEN[name]
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], broken) == [rejected_by]
