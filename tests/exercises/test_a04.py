"""a04: a Linear layer object without autograd, graded against PyTorch: forward against F.linear, the hand-written
backward against autograd's and by torch.autograd.gradcheck in float64, nn.Linear's initial range, the gradient step,
and gradient descent with the MSE (graded by b02-02's checks) reaching torch.linalg.lstsq's closed form."""
import pytest
import torch
import torch.nn.functional as F

from grading import failing_checks
from test_b02_02 import LAYER_CASES, MSE_CHECKS, autograd_linear, layer_case, regression_problem

EXERCISE = "a04"


@pytest.fixture(scope="module")
def impl(impl_for):
    return impl_for(EXERCISE)


def layer_with(impl, weight, bias):
    layer = impl.Linear(weight.shape[1], weight.shape[0], dtype=weight.dtype)
    layer.weight, layer.bias = weight, bias
    return layer


class HandWrittenLayer(torch.autograd.Function):
    """The learner's layer wired into autograd, so that gradcheck can judge its backward."""

    @staticmethod
    def forward(ctx, x, weight, bias, impl):
        ctx.layer = layer_with(impl, weight, bias)
        return ctx.layer.forward(x)

    @staticmethod
    def backward(ctx, grad_out):
        grad_x = ctx.layer.backward(grad_out)
        return grad_x, ctx.layer.grad_weight, ctx.layer.grad_bias, None


def check_initialisation(impl):
    layer = impl.Linear(400, 300, generator=torch.Generator().manual_seed(1))
    assert layer.weight.shape == (300, 400) and layer.bias.shape == (300,)
    assert layer.weight.dtype == layer.bias.dtype == torch.float64  # the default dtype of this layer
    assert not (layer.weight.requires_grad or layer.bias.requires_grad), "plain tensors: no autograd"
    assert layer.grad_weight is None and layer.grad_bias is None
    bound = 400 ** -0.5  # nn.Linear's: uniform in ±1/sqrt(in_features), the bias too
    for t in (layer.weight, layer.bias):
        assert t.abs().max() <= bound
        assert t.max() > 0.95 * bound and t.min() < -0.95 * bound, "uniform over the whole range"
        assert abs(float(t.mean())) < 0.1 * bound
    again = impl.Linear(400, 300, generator=torch.Generator().manual_seed(1))
    assert torch.equal(again.weight, layer.weight) and torch.equal(again.bias, layer.bias), "seeded by generator"
    assert impl.Linear(2, 3, dtype=torch.float32).weight.dtype == torch.float32
    torch.manual_seed(5)
    first = impl.Linear(3, 2).weight
    torch.manual_seed(5)
    assert torch.equal(impl.Linear(3, 2).weight, first), "without a generator, the global one"


def check_forward_and_backward_match_autograd(impl):
    for x_shape, out_features in LAYER_CASES:
        x, weight, bias = layer_case(x_shape, out_features)
        upstream = torch.randn(x_shape[:-1] + (out_features,), dtype=torch.float64)
        out, want = autograd_linear(x, weight, bias, upstream)
        layer = layer_with(impl, weight, bias)
        torch.testing.assert_close(layer.forward(x), out, rtol=1e-12, atol=1e-12)
        with torch.no_grad():  # a backward by hand needs no graph
            got = layer.backward(upstream), layer.grad_weight, layer.grad_bias
        for name, g, w in zip(("dL/dx", "grad_weight", "grad_bias"), got, want):
            torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12, msg=lambda m: f"{x_shape} {name}: {m}")
    x, weight, bias = layer_case((16, 8), 5, torch.float32)
    layer, upstream = layer_with(impl, weight, bias), torch.randn(16, 5)
    torch.testing.assert_close(layer(x), F.linear(x, weight, bias))  # calling the layer is its forward
    got = layer.backward(upstream), layer.grad_weight, layer.grad_bias
    for g, w in zip(got, autograd_linear(x, weight, bias, upstream)[1]):
        torch.testing.assert_close(g, w)


def check_backward_uses_the_last_input(impl):
    # backward differentiates at the input of the latest forward; gradients are replaced, not summed
    x1, weight, bias = layer_case((4, 3), 2)
    x2, upstream = torch.randn(6, 3, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64)
    layer = layer_with(impl, weight, bias)
    layer.forward(x1)
    layer.backward(torch.randn(4, 2, dtype=torch.float64))
    layer.forward(x2)
    layer.backward(upstream)
    _, want = autograd_linear(x2, weight, bias, upstream)
    torch.testing.assert_close(layer.grad_weight, want[1])
    torch.testing.assert_close(layer.grad_bias, want[2])


def check_gradcheck(impl):
    for x_shape, out_features in [((4, 3), 2), ((2, 3, 3), 4)]:
        args = [t.requires_grad_() for t in layer_case(x_shape, out_features)]
        assert torch.autograd.gradcheck(lambda x, w, b: HandWrittenLayer.apply(x, w, b, impl), args)


def check_non_contiguous(impl):
    x, weight = torch.randn(3, 6, dtype=torch.float64).T, torch.randn(3, 4, dtype=torch.float64).T
    bias, upstream = torch.randn(4, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64).T
    out, want = autograd_linear(x, weight, bias, upstream)
    layer = layer_with(impl, weight, bias)
    torch.testing.assert_close(layer.forward(x), out)
    torch.testing.assert_close(layer.backward(upstream), want[0])
    torch.testing.assert_close(layer.grad_weight, want[1])


def check_step(impl):
    x, weight, bias = layer_case((5, 3), 2)
    layer = layer_with(impl, weight.clone(), bias.clone())
    pointers = layer.weight.data_ptr(), layer.bias.data_ptr()
    layer.forward(x)
    layer.backward(torch.randn(5, 2, dtype=torch.float64))
    grads = layer.grad_weight.clone(), layer.grad_bias.clone()
    layer.step(0.1)
    torch.testing.assert_close(layer.weight, weight - 0.1 * grads[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(layer.bias, bias - 0.1 * grads[1], rtol=1e-12, atol=1e-12)
    assert (layer.weight.data_ptr(), layer.bias.data_ptr()) == pointers, "step updates the parameters in place"
    for lr in (0.0, -0.5):
        with pytest.raises(ValueError, match=str(lr)):
            layer.step(lr)


def check_gradient_descent_reaches_lstsq(impl):
    x, y, optimum = regression_problem()
    layer, losses = impl.Linear(3, 1, generator=torch.Generator().manual_seed(0)), []
    for _ in range(200):
        prediction = layer.forward(x)
        losses.append(float(impl.mse_loss(prediction, y)))
        layer.backward(impl.mse_backward(prediction, y))
        layer.step(0.3)
    assert all(b <= a * (1 + 1e-12) for a, b in zip(losses, losses[1:])), "full-batch descent must not go up"
    torch.testing.assert_close(torch.cat([layer.weight.flatten(), layer.bias]), optimum, rtol=0, atol=1e-8)


def check_errors_name_the_problem(impl):
    for sizes in ((0, 3), (3, 0), (-1, 2)):
        with pytest.raises(ValueError, match=f"{sizes[0]}.*{sizes[1]}"):
            impl.Linear(*sizes)
    layer = impl.Linear(3, 4)
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(torch.randn(5, 4, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="backward"):
        layer.step(0.1)
    with pytest.raises(ValueError, match=r"\(5, 2\).*in_features = 3"):
        layer.forward(torch.randn(5, 2, dtype=torch.float64))
    with pytest.raises(TypeError, match="int64"):
        layer.forward(torch.ones(5, 3, dtype=torch.int64))
    with pytest.raises(TypeError, match="float32.*float64"):
        layer.forward(torch.randn(5, 3))
    layer.forward(torch.randn(5, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\(5, 3\).*\(5, 4\)"):
        layer.backward(torch.randn(5, 3, dtype=torch.float64))


CHECKS = [check_initialisation, check_forward_and_backward_match_autograd, check_backward_uses_the_last_input,
          check_gradcheck, check_non_contiguous, check_step, check_gradient_descent_reaches_lstsq,
          check_errors_name_the_problem, *MSE_CHECKS]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_linear_layer(impl, check):
    check(impl)


def broken_layer(**overrides):
    """A module-like namespace whose Linear is the reference's with some methods replaced."""
    from types import SimpleNamespace

    from torchkata.autograd import linear_layer as reference

    return SimpleNamespace(Linear=type("Broken", (reference.Linear,), overrides), mse_loss=reference.mse_loss,
                           mse_backward=reference.mse_backward)


def backward_transpose_missing(self, grad_out):
    grad_x = grad_out @ self.weight
    self.grad_weight, self.grad_bias = self.input.T @ grad_out, grad_out.sum(dim=0)  # [in, out], not [out, in]
    return grad_x


def backward_accumulating(self, grad_out):
    from torchkata.autograd.linear_regression import linear_backward

    grad_x, grad_weight, grad_bias = linear_backward(grad_out, self.input, self.weight)
    self.grad_weight = grad_weight if self.grad_weight is None else self.grad_weight + grad_weight
    self.grad_bias = grad_bias if self.grad_bias is None else self.grad_bias + grad_bias
    return grad_x


def backward_no_input_gradient(self, grad_out):
    from torchkata.autograd.linear_regression import linear_backward

    _, self.grad_weight, self.grad_bias = linear_backward(grad_out, self.input, self.weight)
    return torch.zeros_like(self.input)


def step_forgetting_the_bias(self, lr):
    self.weight -= lr * self.grad_weight


def init_too_wide(self, in_features, out_features, *, generator=None, dtype=torch.float64):
    self.weight = torch.randn(out_features, in_features, generator=generator, dtype=dtype)
    self.bias = torch.zeros(out_features, dtype=dtype)
    self.grad_weight = self.grad_bias = self.input = None


BROKEN = {  # name: (broken solution, the check that must reject it)
    "weight_gradient_not_transposed": (broken_layer(backward=backward_transpose_missing), "check_gradcheck"),
    "gradients_accumulated": (broken_layer(backward=backward_accumulating), "check_backward_uses_the_last_input"),
    "no_input_gradient": (broken_layer(backward=backward_no_input_gradient),
                          "check_forward_and_backward_match_autograd"),
    "bias_never_trained": (broken_layer(step=step_forgetting_the_bias), "check_gradient_descent_reaches_lstsq"),
    "normal_initialisation": (broken_layer(__init__=init_too_wide), "check_initialisation"),
}


@pytest.mark.suite_check
@pytest.mark.parametrize("name", BROKEN)
def test_broken_layer_is_rejected(name):
    broken, rejected_by = BROKEN[name]
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], broken) == [rejected_by]
