"""a43: ReLU by hand-written kernels, forward and backward, graded against torch.relu to the bit: seeded trials of
sizes around the kernels' block (256) and the edge cases, all four float dtypes, the special values (-0.0, NaN,
±inf, subnormals), non-contiguous and 0-d inputs, the gradient at 0, gradcheck and gradgradcheck in float64, the
errors, and on a GPU the CUDA half. The library is built once per session."""
import functools

import pytest
import torch

from grading import failing_checks
from kernel_source_checks import assert_no_aten_op

EXERCISE = "a43"
SIZES = [0, 1, 255, 256, 257, 1000, 4097, 70_000]  # 70,000: past at::parallel_for's grain, so split over threads
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@pytest.fixture(scope="module")
def relu(impl_for, extension_library):
    return functools.partial(impl_for(EXERCISE).relu, library_path=str(extension_library("relu")))


def assert_bitwise_equal(ours, expected):
    """Values, -0.0's sign and NaN's places: a ReLU has no rounding, so nothing but the same bits will do."""
    assert ours.shape == expected.shape and ours.dtype == expected.dtype and ours.device == expected.device
    assert torch.equal(ours.isnan(), expected.isnan())
    finite = ~expected.isnan()
    assert torch.equal(ours[finite], expected[finite])
    assert torch.equal(ours[finite].signbit(), expected[finite].signbit()), "the sign of zero differs"


def seeded(size, dtype, seed, device="cpu"):
    return torch.randn(size, generator=torch.Generator().manual_seed(seed)).to(dtype).to(device)


def check_values(relu):
    for device in DEVICES:
        for seed, size in enumerate(SIZES):
            for dtype in DTYPES:
                x = seeded(size, dtype, seed, device)
                assert_bitwise_equal(relu(x), torch.relu(x))
                if size > 1:  # both signs present, so an all-zero or an identity answer fails
                    assert bool((x > 0).any()) and bool((x < 0).any())


def check_special_values(relu):
    for device in DEVICES:
        for dtype in DTYPES:
            tiny = torch.finfo(dtype).tiny
            x = torch.tensor([-0.0, 0.0, float("nan"), float("inf"), -float("inf"), tiny / 4, -tiny / 4, tiny,
                              -1.0, 1.0, torch.finfo(dtype).max, torch.finfo(dtype).min], dtype=dtype, device=device)
            assert_bitwise_equal(relu(x), torch.relu(x))


def check_shapes_and_strides(relu):
    g = torch.Generator().manual_seed(2)
    for x in (torch.randn(7, 33, dtype=torch.float64, generator=g).t(),  # transposed
              torch.randn(2, 3, 40, generator=g)[:, ::2, 1::3],  # a strided slice
              torch.randn(5, 1, generator=g).expand(5, 6),  # stride 0
              torch.tensor(-3.0), torch.tensor(2.5)):  # 0-d
        x_before = x.clone()
        out = relu(x)
        assert_bitwise_equal(out, torch.relu(x))
        assert torch.equal(x, x_before), "the input was written to"
        assert out.data_ptr() != x.data_ptr() or x.numel() == 0, "the output must be a new tensor"


def input_gradient(fn, x, weights):
    x = x.clone().requires_grad_()
    (grad,) = torch.autograd.grad((fn(x) * weights).sum(), x)
    return grad


def check_gradients(relu):
    """Against torch.relu's gradient to the bit, at 0 (none flows), -0.0, a tiny positive, NaN (it flows) too."""
    for device in DEVICES:
        for dtype in DTYPES:
            special = torch.tensor([-2.0, -0.0, 0.0, 1e-30, 3.0, float("nan")], dtype=dtype, device=device)
            x = torch.cat([special, seeded(1000, dtype, 3, device)])
            weights = seeded(len(x), dtype, 4, device) + 2  # no zero weight, so a wrong mask shows
            assert_bitwise_equal(input_gradient(relu, x, weights), input_gradient(torch.relu, x, weights))


def check_gradcheck(relu):
    x = seeded(40, torch.float64, 5)
    x = torch.where(x.abs() < 1e-3, torch.full_like(x, 0.5), x).requires_grad_()  # away from the kink
    assert torch.autograd.gradcheck(relu, (x,))
    assert torch.autograd.gradgradcheck(relu, (x,))
    y = relu(x)  # a second derivative through the backward: linear in the incoming gradient
    (grad,) = torch.autograd.grad(y, x, torch.ones_like(y), create_graph=True)
    (second,) = torch.autograd.grad((grad * x).sum(), x)
    torch.testing.assert_close(second, (x > 0).double(), rtol=0, atol=0)


def check_errors_name_the_problem(relu):
    with pytest.raises(RuntimeError, match="relu_forward: x must be float32 or float64"):
        relu(torch.arange(3))
    with pytest.raises(RuntimeError, match="relu_forward: x must be float32 or float64"):
        relu(torch.ones(3, dtype=torch.complex64))
    with pytest.raises(TypeError, match="x must be a Tensor"):
        relu([1.0, -1.0])


CHECKS = [check_values, check_special_values, check_shapes_and_strides, check_gradients, check_gradcheck,
          check_errors_name_the_problem]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_relu(relu, check):
    check(relu)


def test_backward_op_checks_its_operands(extension_library):
    from torchkata.extensions import relu as reference

    ops = reference.ops(str(extension_library("relu")))
    with pytest.raises(RuntimeError, match="relu_backward: grad_y and y must have one shape"):
        ops.relu_backward(torch.ones(3), torch.ones(4))
    with pytest.raises(RuntimeError, match="relu_backward: grad_y and y must have one dtype"):
        ops.relu_backward(torch.ones(3), torch.ones(3, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="relu_backward: y must be float32 or float64"):
        ops.relu_backward(torch.ones(3, dtype=torch.long), torch.ones(3, dtype=torch.long))
    assert ops.relu_has_cuda() == (torch.version.cuda is not None and torch.cuda.is_available())


def broken(bug):
    """The reference's Function with one deliberate mistake, made around the kernels."""
    from torchkata.extensions import relu as reference

    class Broken(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, lib):
            y = lib.relu_forward(x)
            if bug == "zero_loses_its_sign":
                y = torch.where(y == 0, torch.zeros_like(y), y)
            if bug == "nan_becomes_zero":
                y = torch.nan_to_num(y, nan=0.0)
            if bug == "leaky":
                y = torch.where(x < 0, 0.01 * x, y)
            ctx.save_for_backward(x if bug == "mask_from_input_at_zero" else y)
            ctx.lib = lib
            return y

        @staticmethod
        def backward(ctx, grad_y):
            (saved,) = ctx.saved_tensors
            if bug == "mask_from_input_at_zero":  # x >= 0: a gradient of 1 at the kink
                return grad_y * (saved >= 0).to(grad_y.dtype), None
            if bug == "not_differentiable_twice":
                return ctx.lib.relu_backward(grad_y, saved), None
            return reference.ReLUBackward.apply(grad_y, saved, ctx.lib), None

    def relu(x, library_path=None):
        if bug == "detached":
            return reference.relu(x.detach(), library_path)
        if bug == "float64_through_float32" and x.dtype == torch.float64:
            return Broken.apply(x.float(), reference.ops(library_path)).double()
        return Broken.apply(x, reference.ops(library_path))

    return relu


@pytest.mark.suite_check
@pytest.mark.filterwarnings("ignore:.*an autograd kernel was not registered")  # not_differentiable_twice's point
@pytest.mark.parametrize("bug", ["zero_loses_its_sign", "nan_becomes_zero", "leaky", "mask_from_input_at_zero",
                                 "not_differentiable_twice", "detached", "float64_through_float32"])
def test_broken_relu_is_rejected(bug, extension_library):
    assert failing_checks(CHECKS, functools.partial(broken(bug), library_path=str(extension_library("relu"))))


@pytest.mark.suite_check
def test_kernels_are_hand_written():
    """The kernels compare and copy elements themselves: no ATen op does the ReLU."""
    assert_no_aten_op(["csrc/relu/relu.cpp", "csrc/relu/relu_cuda.cu"],
                      ["relu(", "relu_(", "clamp(", "clamp_min(", "threshold(", "threshold_backward(", "where(",
                       "maximum(", "max("])
