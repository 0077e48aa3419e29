"""b02-02: linear regression without nn.Module or autograd, graded against PyTorch: the linear forward against F.linear,
the hand-written backwards (linear and MSE) against autograd's and by torch.autograd.gradcheck in float64, a gradient
step against its formula, and gradient descent against torch.linalg.lstsq's closed form. a04 reuses the MSE checks."""
import pytest
import torch
import torch.nn.functional as F

from grading import failing_checks

EXERCISE = "b02-02"
# (x shape, out_features): a batch, a batch of batches, one row, an empty batch
LAYER_CASES = [((5, 3), 4), ((2, 5, 3), 2), ((1, 1), 1), ((0, 3), 2), ((7, 6), 1), ((2, 300), 1)]  # 300: no small int
MSE_SHAPES = [(7, 1), (3, 4), (2, 3, 4), (1,), ()]


@pytest.fixture(scope="module")
def impl(impl_for):
    return impl_for(EXERCISE)


def layer_case(x_shape, out_features, dtype=torch.float64):
    x = torch.randn(x_shape, dtype=dtype)
    weight, bias = torch.randn(out_features, x_shape[-1], dtype=dtype), torch.randn(out_features, dtype=dtype)
    return x, weight, bias


def autograd_linear(x, weight, bias, upstream):
    """F.linear's output and autograd's (dL/dx, dL/dweight, dL/dbias) for dL/dy = upstream."""
    leaves = [t.detach().clone().requires_grad_() for t in (x, weight, bias)]
    out = F.linear(*leaves)
    return out.detach(), torch.autograd.grad(out, leaves, upstream)


def regression_problem(rows=64, features=3, dtype=torch.float64):
    x = torch.randn(rows, features, dtype=dtype)
    y = x @ torch.tensor([[2.0, -1.0, 0.5]], dtype=dtype).T[:features] + 3.0 + 0.1 * torch.randn(rows, 1, dtype=dtype)
    design = torch.cat([x, torch.ones(rows, 1, dtype=dtype)], dim=1)
    return x, y, torch.linalg.lstsq(design, y).solution.squeeze(1)


class HandWrittenLinear(torch.autograd.Function):
    """The learner's forward and backward wired into autograd, so that gradcheck can judge the backward."""

    @staticmethod
    def forward(ctx, x, weight, bias, impl):
        ctx.save_for_backward(x, weight)
        ctx.impl = impl
        return impl.linear_forward(x, weight, bias)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        return (*ctx.impl.linear_backward(grad_out, x, weight), None)


class HandWrittenMSE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, prediction, target, impl):
        ctx.save_for_backward(prediction, target)
        ctx.impl = impl
        return impl.mse_loss(prediction, target)

    @staticmethod
    def backward(ctx, grad_out):
        grad = grad_out * ctx.impl.mse_backward(*ctx.saved_tensors)
        return grad, -grad, None


# --- the MSE (a04 grades its own with these) ------------------------------------------------------------------

def check_mse_matches_torch(impl):
    for shape in MSE_SHAPES:
        prediction, target = torch.randn(shape, dtype=torch.float64) * 3, torch.randn(shape, dtype=torch.float64)
        loss = impl.mse_loss(prediction, target)
        assert loss.shape == (), f"{shape}: the loss must be a 0-d tensor, got shape {tuple(loss.shape)}"
        torch.testing.assert_close(loss, F.mse_loss(prediction, target), rtol=1e-12, atol=0)
        leaf = prediction.clone().requires_grad_()
        (want,) = torch.autograd.grad(F.mse_loss(leaf, target), leaf)
        torch.testing.assert_close(impl.mse_backward(prediction, target), want, rtol=1e-12, atol=0,
                                   msg=lambda m: f"{shape}: {m}")
    prediction, target = torch.randn(32, 5), torch.randn(32, 5)  # float32
    torch.testing.assert_close(impl.mse_loss(prediction, target), F.mse_loss(prediction, target))
    assert impl.mse_backward(prediction, target).dtype == torch.float32


def check_mse_gradcheck(impl):
    prediction = torch.randn(6, 2, dtype=torch.float64, requires_grad=True)
    target = torch.randn(6, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p, t: HandWrittenMSE.apply(p, t, impl), (prediction, target))


def check_mse_empty_and_non_contiguous(impl):
    empty = torch.empty(0, 3, dtype=torch.float64)
    assert torch.isnan(impl.mse_loss(empty, empty))  # a mean of nothing, as F.mse_loss
    assert impl.mse_backward(empty, empty).shape == (0, 3)
    prediction, target = torch.randn(5, 4, dtype=torch.float64).T, torch.randn(4, 5, dtype=torch.float64)
    assert not prediction.is_contiguous()
    torch.testing.assert_close(impl.mse_loss(prediction, target), F.mse_loss(prediction, target))
    torch.testing.assert_close(impl.mse_backward(prediction, target), 2 * (prediction - target) / 20)


def check_mse_errors_name_the_problem(impl):
    for fn in (impl.mse_loss, impl.mse_backward):
        with pytest.raises(ValueError, match=r"\(3, 1\).*\(3,\)"):  # F.mse_loss would broadcast to (3, 3)
            fn(torch.randn(3, 1), torch.randn(3))
        with pytest.raises(ValueError, match=r"\(3,\).*\(3, 1\)"):
            fn(torch.randn(3), torch.randn(3, 1))
        with pytest.raises(TypeError, match="int64"):
            fn(torch.arange(3), torch.randn(3))
        with pytest.raises(TypeError, match="int64"):
            fn(torch.randn(3), torch.arange(3))
        with pytest.raises(TypeError, match="list"):
            fn([1.0, 2.0], torch.randn(2))
        with pytest.raises(TypeError, match="float64"):
            fn(torch.randn(3), torch.randn(3, dtype=torch.float64))


MSE_CHECKS = [check_mse_matches_torch, check_mse_gradcheck, check_mse_empty_and_non_contiguous,
              check_mse_errors_name_the_problem]


# --- the linear layer as functions, and the gradient step ----------------------------------------------------

def check_linear_forward_matches_torch(impl):
    for x_shape, out_features in LAYER_CASES:
        x, weight, bias = layer_case(x_shape, out_features)
        out = impl.linear_forward(x, weight, bias)
        torch.testing.assert_close(out, F.linear(x, weight, bias), rtol=1e-12, atol=1e-12,
                                   msg=lambda m: f"{x_shape} -> {out_features}: {m}")
    x, weight, bias = layer_case((16, 8), 5, torch.float32)
    torch.testing.assert_close(impl.linear_forward(x, weight, bias), F.linear(x, weight, bias))


def check_linear_backward_matches_autograd(impl):
    for x_shape, out_features in LAYER_CASES:
        x, weight, bias = layer_case(x_shape, out_features)
        upstream = torch.randn(x_shape[:-1] + (out_features,), dtype=torch.float64)
        _, want = autograd_linear(x, weight, bias, upstream)
        with torch.no_grad():  # a backward by hand needs no graph
            got = impl.linear_backward(upstream, x, weight)
        for name, g, w in zip(("dL/dx", "dL/dweight", "dL/dbias"), got, want):
            torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12, msg=lambda m: f"{x_shape} {name}: {m}")
    x, weight, bias = layer_case((16, 8), 5, torch.float32)
    upstream = torch.randn(16, 5)
    for g, w in zip(impl.linear_backward(upstream, x, weight), autograd_linear(x, weight, bias, upstream)[1]):
        torch.testing.assert_close(g, w)


def check_linear_gradcheck(impl):
    for x_shape, out_features in [((4, 3), 2), ((2, 3, 3), 4)]:
        args = [t.requires_grad_() for t in layer_case(x_shape, out_features)]
        assert torch.autograd.gradcheck(lambda x, w, b: HandWrittenLinear.apply(x, w, b, impl), args)


def check_linear_non_contiguous(impl):
    x, weight = torch.randn(3, 6, dtype=torch.float64).T, torch.randn(3, 4, dtype=torch.float64).T
    bias, upstream = torch.randn(4, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64).T
    assert not (x.is_contiguous() or weight.is_contiguous() or upstream.is_contiguous())
    out, want = autograd_linear(x, weight, bias, upstream)
    torch.testing.assert_close(impl.linear_forward(x, weight, bias), out)
    for g, w in zip(impl.linear_backward(upstream, x, weight), want):
        torch.testing.assert_close(g, w)


def check_linear_errors_name_the_problem(impl):
    x, weight, bias = layer_case((5, 3), 4)
    with pytest.raises(ValueError, match=r"\(5, 2\).*in_features = 3"):
        impl.linear_forward(torch.randn(5, 2, dtype=torch.float64), weight, bias)
    with pytest.raises(ValueError, match=r"\(\).*in_features = 1"):
        impl.linear_forward(torch.tensor(1.0, dtype=torch.float64), torch.randn(4, 1, dtype=torch.float64), bias)
    with pytest.raises(ValueError, match=r"\(5, 4\).*in_features = 3"):  # too wide as well as too narrow
        impl.linear_forward(torch.randn(5, 4, dtype=torch.float64), weight, bias)
    for bad in (torch.randn(3, dtype=torch.float64), torch.randn(1, 4, 3, dtype=torch.float64)):
        with pytest.raises(ValueError, match=rf"2-D.*{tuple(bad.shape)}"):
            impl.linear_forward(x, bad, bias)
    for size in (3, 5):
        with pytest.raises(ValueError, match=rf"bias.*\(4,\).*\({size},\)"):
            impl.linear_forward(x, weight, torch.randn(size, dtype=torch.float64))
    with pytest.raises(TypeError, match="int64"):
        impl.linear_forward(torch.ones(5, 3, dtype=torch.int64), weight, bias)
    with pytest.raises(TypeError, match="int64"):
        impl.linear_forward(x, weight, torch.ones(4, dtype=torch.int64))
    with pytest.raises(TypeError, match="float32.*float64"):
        impl.linear_forward(x.float(), weight, bias)
    with pytest.raises(TypeError, match="float32.*float64"):
        impl.linear_forward(x, weight, bias.float())
    for bad in ((5, 3), (5, 5)):
        with pytest.raises(ValueError, match=rf"{bad}.*\(5, 4\)"):
            impl.linear_backward(torch.randn(bad, dtype=torch.float64), x, weight)
    with pytest.raises(ValueError, match=r"\(2, 5, 3\).*\(2, 5, 4\)"):  # the output's shape for a batch of batches
        impl.linear_backward(torch.randn(2, 5, 3, dtype=torch.float64), torch.randn(2, 5, 3, dtype=torch.float64),
                             weight)
    with pytest.raises(ValueError, match=r"\(5, 2\).*in_features = 3"):
        impl.linear_backward(torch.randn(5, 4, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64), weight)
    with pytest.raises(TypeError, match="grad_out.*int64"):
        impl.linear_backward(torch.ones(5, 4, dtype=torch.int64), x, weight)


def check_sgd_step(impl):
    x, y, _ = regression_problem(rows=10)
    weight, bias = torch.randn(1, 3, dtype=torch.float64), torch.randn(1, dtype=torch.float64)
    before = weight.clone(), bias.clone()
    leaves = [t.clone().requires_grad_() for t in before]
    want_loss = F.mse_loss(F.linear(x, *leaves), y)
    grads = torch.autograd.grad(want_loss, leaves)
    pointers = weight.data_ptr(), bias.data_ptr()
    loss = impl.sgd_step(weight, bias, x, y, 0.05)
    torch.testing.assert_close(loss, want_loss.detach())  # the loss before the step
    assert (weight.data_ptr(), bias.data_ptr()) == pointers, "the step must update weight and bias in place"
    torch.testing.assert_close(weight, before[0] - 0.05 * grads[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(bias, before[1] - 0.05 * grads[1], rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="lr.*0"):
        impl.sgd_step(weight, bias, x, y, 0.0)
    with pytest.raises(ValueError, match="-0.1"):
        impl.sgd_step(weight, bias, x, y, -0.1)
    with pytest.raises(ValueError, match=r"\(10,\)"):
        impl.sgd_step(weight, bias, x, y.squeeze(1), 0.1)


def check_sgd_step_on_parameters(impl):
    # weights that autograd tracks (nn.Parameter) are updated all the same, and no graph is built
    x, y, _ = regression_problem(rows=10)
    layer = torch.nn.Linear(3, 1, dtype=torch.float64)
    before = layer.weight.detach().clone()
    loss = impl.sgd_step(layer.weight, layer.bias, x, y, 0.1)
    assert loss.grad_fn is None and layer.weight.grad_fn is None and layer.weight.grad is None
    assert not torch.equal(layer.weight.detach(), before)


def check_gradient_descent_reaches_lstsq(impl):
    x, y, optimum = regression_problem()
    weight, bias = torch.zeros(1, 3, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
    losses = [float(impl.sgd_step(weight, bias, x, y, 0.3)) for _ in range(200)]
    assert all(b <= a * (1 + 1e-12) for a, b in zip(losses, losses[1:])), "full-batch descent must not go up"
    torch.testing.assert_close(torch.cat([weight.flatten(), bias]), optimum, rtol=0, atol=1e-8)


CHECKS = [check_linear_forward_matches_torch, check_linear_backward_matches_autograd, check_linear_gradcheck,
          check_linear_non_contiguous, check_linear_errors_name_the_problem, *MSE_CHECKS, check_sgd_step,
          check_sgd_step_on_parameters, check_gradient_descent_reaches_lstsq]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_linear_regression(impl, check):
    check(impl)


def variant(**changes):
    """The reference module with some functions replaced: a broken solution."""
    from types import SimpleNamespace

    from torchkata.autograd import linear_regression as reference

    names = ("linear_forward", "linear_backward", "mse_loss", "mse_backward", "sgd_step")
    return SimpleNamespace(**{name: getattr(reference, name) for name in names} | changes)


def backward_without_reduction(grad_out, x, weight):
    return grad_out @ weight, grad_out.mT @ x, grad_out.sum(dim=0)  # on [B, N, in]: the batch dim B not summed


def backward_sign_flipped(grad_out, x, weight):
    from torchkata.autograd.linear_regression import linear_backward

    grad_x, grad_weight, grad_bias = linear_backward(grad_out, x, weight)
    return grad_x, -grad_weight, grad_bias


def backward_without_bias_sum(grad_out, x, weight):
    from torchkata.autograd.linear_regression import linear_backward

    grad_x, grad_weight, _ = linear_backward(grad_out, x, weight)
    return grad_x, grad_weight, grad_out.reshape(-1, weight.shape[0]).mean(dim=0)


def backward_by_autograd(grad_out, x, weight):
    leaves = [x.clone().requires_grad_(), weight.clone().requires_grad_()]
    bias = torch.zeros(weight.shape[0], dtype=weight.dtype, requires_grad=True)
    return torch.autograd.grad(F.linear(*leaves, bias), (*leaves, bias), grad_out)


def mse_backward_without_two(prediction, target):
    return (prediction - target) / prediction.numel()


def mse_summed(prediction, target):
    return ((prediction - target) ** 2).sum()


def mse_broadcasting(prediction, target):
    return ((prediction - target) ** 2).mean()


def sgd_step_ascending(weight, bias, x, y, lr):
    from torchkata.autograd.linear_regression import sgd_step

    return sgd_step(weight, bias, x, y, -lr)


def sgd_step_copying(weight, bias, x, y, lr):
    from torchkata.autograd.linear_regression import linear_backward, linear_forward, mse_backward, mse_loss

    prediction = linear_forward(x, weight, bias)
    _, grad_weight, grad_bias = linear_backward(mse_backward(prediction, y), x, weight)
    weight, bias = weight - lr * grad_weight, bias - lr * grad_bias  # new tensors: the caller's never move
    return mse_loss(prediction, y)


BROKEN = {  # name: (broken solution, the check that must reject it)
    "leading_dims_not_summed": (variant(linear_backward=backward_without_reduction),
                                "check_linear_backward_matches_autograd"),
    "weight_gradient_sign": (variant(linear_backward=backward_sign_flipped), "check_linear_gradcheck"),
    "bias_gradient_averaged": (variant(linear_backward=backward_without_bias_sum),
                               "check_linear_backward_matches_autograd"),
    "backward_through_autograd": (variant(linear_backward=backward_by_autograd),
                                  "check_linear_backward_matches_autograd"),
    "mse_backward_without_two": (variant(mse_backward=mse_backward_without_two), "check_mse_matches_torch"),
    "mse_summed": (variant(mse_loss=mse_summed), "check_mse_matches_torch"),
    "mse_broadcasting": (variant(mse_loss=mse_broadcasting), "check_mse_errors_name_the_problem"),
    "gradient_ascent": (variant(sgd_step=sgd_step_ascending), "check_sgd_step"),
    "step_not_in_place": (variant(sgd_step=sgd_step_copying), "check_sgd_step"),
}


@pytest.mark.suite_check
@pytest.mark.parametrize("name", BROKEN)
def test_broken_solution_is_rejected(name):
    broken, rejected_by = BROKEN[name]
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], broken) == [rejected_by]


@pytest.mark.suite_check
def test_no_autograd_in_reference():
    import inspect

    from torchkata.autograd import linear_layer, linear_regression

    for module in (linear_regression, linear_layer):
        source = inspect.getsource(module)
        for builtin in (".backward(", "autograd.grad", "requires_grad", "F.linear(", "F.mse_loss(", "nn.Module",
                        "torch.optim"):
            assert builtin not in source, f"{module.__name__}: {builtin}"
