"""a05: ReLU as a custom autograd Function, graded against F.relu (values, gradients, the gradient at exactly 0)
and torch.autograd.gradcheck / gradgradcheck in float64. b02-01 grades the same Function with these checks."""
import pytest
import torch
import torch.nn.functional as F

from grading import failing_checks

EXERCISE = "a05"
SHAPES = [(7,), (3, 5), (2, 3, 4), (1, 1), ()]


@pytest.fixture(scope="module")
def relu(impl_for):
    return impl_for(EXERCISE).relu


def with_zeros(shape, dtype=torch.float64):
    """Random values with every third entry exactly 0 (and some -0.0): the kink is where ReLUs differ."""
    x = torch.randn(shape, dtype=dtype).flatten()
    x[::3] = 0.0
    x[1::6] = -0.0
    return x.reshape(shape)


def gradient(fn, x, upstream):
    x = x.detach().clone().requires_grad_()
    (grad,) = torch.autograd.grad(fn(x), x, upstream)
    return grad


def check_forward_matches_relu(relu):
    for shape in SHAPES:
        for dtype in (torch.float64, torch.float32, torch.float16, torch.bfloat16):
            x = with_zeros(shape, dtype) * 3
            y = relu(x)
            assert y.dtype == dtype and y.shape == x.shape
            torch.testing.assert_close(y, F.relu(x), rtol=0, atol=0)


def check_backward_matches_relu(relu):
    for shape in SHAPES:
        for dtype in (torch.float64, torch.float32):
            x, upstream = with_zeros(shape, dtype), torch.randn(shape, dtype=dtype)
            ours = gradient(relu, x, upstream)
            assert ours.dtype == dtype
            torch.testing.assert_close(ours, gradient(F.relu, x, upstream), rtol=0, atol=0)


def check_gradient_at_zero_is_zero(relu):
    x = torch.tensor([0.0, -0.0, 1e-30, -1e-30], dtype=torch.float64)
    grad = gradient(relu, x, torch.ones(4, dtype=torch.float64))
    assert grad.tolist() == [0.0, 0.0, 1.0, 0.0], grad  # torch: relu'(0) = 0, and exactly 0 is not > 0


def check_is_custom_function(relu):
    # the backward must be your own: a custom Function's node, not the one autograd builds for clamp/relu/where
    y = relu(torch.randn(3, requires_grad=True))
    assert isinstance(y.grad_fn, torch.autograd.function.BackwardCFunction), type(y.grad_fn).__name__


def check_gradcheck(relu):
    x = torch.randn(4, 5, dtype=torch.float64) + 0.05  # no entry within gradcheck's eps of the kink
    x = torch.where(x.abs() < 1e-3, torch.full_like(x, 0.5), x).requires_grad_()
    assert torch.autograd.gradcheck(relu, (x,))
    assert torch.autograd.gradgradcheck(relu, (x,))


def check_non_contiguous(relu):
    for x in [torch.randn(6, 8, dtype=torch.float64).t(), torch.randn(5, 1, dtype=torch.float64).expand(5, 4),
              torch.randn(4, 10, dtype=torch.float64)[:, ::3]]:
        assert not x.is_contiguous()
        upstream = torch.randn(x.shape, dtype=torch.float64)
        torch.testing.assert_close(relu(x), F.relu(x), rtol=0, atol=0)
        torch.testing.assert_close(gradient(relu, x, upstream), gradient(F.relu, x, upstream), rtol=0, atol=0)


def check_empty(relu):
    x = torch.empty(0, 3, requires_grad=True)
    y = relu(x)
    assert y.shape == (0, 3)
    y.sum().backward()
    assert x.grad.shape == (0, 3)


def check_input_untouched(relu):
    x = with_zeros((4, 5)) - 0.5
    before = x.clone()
    leaf = x.requires_grad_()
    relu(leaf).sum().backward()
    torch.testing.assert_close(leaf.detach(), before, rtol=0, atol=0)


def check_nan_and_inf(relu):
    x = torch.tensor([float("nan"), float("inf"), -float("inf"), 2.0])
    torch.testing.assert_close(relu(x), F.relu(x), rtol=0, atol=0, equal_nan=True)


def check_errors_name_the_problem(relu):
    with pytest.raises(TypeError, match="int64"):
        relu(torch.arange(4))
    with pytest.raises(TypeError, match="list"):
        relu([1.0, -1.0])


CHECKS = [check_forward_matches_relu, check_backward_matches_relu, check_gradient_at_zero_is_zero,
          check_is_custom_function, check_gradcheck, check_non_contiguous, check_empty, check_input_untouched,
          check_nan_and_inf, check_errors_name_the_problem]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_relu(relu, check):
    check(relu)


def relu_function(backward):
    """A custom Function whose forward is right and whose backward is `backward(out, grad_out)`."""
    class Broken(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            out = x.clamp_min(0)
            ctx.save_for_backward(out)
            return out

        @staticmethod
        def backward(ctx, grad_out):
            return backward(*ctx.saved_tensors, grad_out)

    def apply(x):
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"relu needs a float tensor, got {getattr(x, 'dtype', type(x).__name__)}")
        return Broken.apply(x)
    return apply


def autograd_only(x):
    if not x.is_floating_point():
        raise TypeError(f"got {x.dtype}")
    return x.clamp_min(0)


def in_place(x):
    if not x.is_floating_point():
        raise TypeError(f"got {x.dtype}")
    x.data.clamp_min_(0)  # overwrites the caller's tensor
    return relu_function(lambda out, g: g * (out > 0))(x)


BROKEN = {  # name: (implementation, the check that must reject it)
    "one_at_zero": (relu_function(lambda out, g: g * (out >= 0)), "check_gradient_at_zero_is_zero"),
    "passes_everything": (relu_function(lambda out, g: g), "check_backward_matches_relu"),
    "inverted_mask": (relu_function(lambda out, g: g * (out <= 0)), "check_backward_matches_relu"),
    "not_twice_differentiable": (relu_function(lambda out, g: g.detach() * (out > 0)), "check_gradcheck"),
    "autograd_only": (autograd_only, "check_is_custom_function"),
    "in_place": (in_place, "check_input_untouched"),
}


def rejected(checks, name, rejected_by):
    check = next(c for c in checks if c.__name__ == rejected_by)
    return failing_checks([check], BROKEN[name][0]) == [rejected_by]


@pytest.mark.suite_check
@pytest.mark.parametrize("name", BROKEN)
def test_broken_relu_is_rejected(name):
    assert rejected(CHECKS, name, BROKEN[name][1])


@pytest.mark.suite_check
def test_no_builtin_relu_in_reference():
    import inspect

    from torchkata.autograd import relu as module

    source = inspect.getsource(module)
    for builtin in ("F.relu(", "torch.relu(", "nn.ReLU(", ".relu(", "relu_(", "threshold"):
        assert builtin not in source, builtin
