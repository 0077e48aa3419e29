"""a42: the hand-written add kernel, a + alpha * b, forward and backward, graded KernelBench-style against torch.add:
seeded trials of sizes around the kernel's block (256) and the edge cases (empty, one element), both float dtypes,
non-contiguous operands, gradcheck in float64, the errors, and on a GPU the CUDA half against autograd. The
library is built once per session."""
import functools

import pytest
import torch

from grading import failing_checks
from kernel_source_checks import assert_no_aten_op

EXERCISE = "a42"
SIZES = [0, 1, 255, 256, 257, 1000, 4097]
ALPHAS = [1.0, -2.5, 0.0, 1e-3]
TOLERANCE = {torch.float32: dict(rtol=1e-6, atol=1e-6), torch.float64: dict(rtol=1e-14, atol=1e-14)}
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@pytest.fixture(scope="module")
def add(impl_for, extension_library):
    return functools.partial(impl_for(EXERCISE).add, library_path=str(extension_library("add")))


def operands(size, dtype, seed, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(size, generator=g, dtype=dtype).to(device) for _ in range(2)]


def check_values(add):
    for device in DEVICES:
        for seed, (size, alpha) in enumerate((s, a) for s in SIZES for a in ALPHAS):
            for dtype in TOLERANCE:
                a, b = operands(size, dtype, seed, device)
                expected = torch.add(a, b, alpha=alpha)
                out = add(a, b, alpha)
                assert out.shape == expected.shape and out.dtype == dtype and out.device == a.device
                torch.testing.assert_close(out, expected, **TOLERANCE[dtype])
                if size:  # an all-zero answer would pass any tolerance against an all-zero reference
                    assert float(expected.abs().max()) > 100 * TOLERANCE[dtype]["atol"]


def check_default_alpha_is_one(add):
    a, b = operands(300, torch.float64, 1)
    torch.testing.assert_close(add(a, b), a + b, rtol=0, atol=0)


def check_shapes_and_strides(add):
    g = torch.Generator().manual_seed(2)
    a = torch.randn(7, 33, dtype=torch.float64, generator=g).t()  # non-contiguous
    b = torch.randn(33, 7, dtype=torch.float64, generator=g)
    torch.testing.assert_close(add(a, b, 2.0), a + 2.0 * b, rtol=1e-14, atol=1e-14)
    c = torch.randn(2, 3, 4, dtype=torch.float64, generator=g)[:, ::2]  # a strided slice
    torch.testing.assert_close(add(c, c.clone(), -1.0), torch.zeros_like(c), rtol=0, atol=1e-15)
    out = add(a, b)
    assert out.data_ptr() not in (a.data_ptr(), b.data_ptr()), "the output must be a new tensor"
    scalar = torch.tensor(3.0, dtype=torch.float64)
    assert add(scalar, scalar, 2.0).shape == () and float(add(scalar, scalar, 2.0)) == 9.0


def check_gradients(add):
    for device in DEVICES:
        for alpha in ALPHAS:
            a, b = (t.requires_grad_() for t in operands(257, torch.float64, 3, device))
            weights = operands(257, torch.float64, 4, device)[0]
            grad_a, grad_b = torch.autograd.grad((add(a, b, alpha) * weights).sum(), (a, b))
            torch.testing.assert_close(grad_a, weights, rtol=0, atol=0)
            torch.testing.assert_close(grad_b, alpha * weights, rtol=1e-15, atol=0)
    a, b = (t.requires_grad_() for t in operands(9, torch.float64, 5))
    assert torch.autograd.gradcheck(lambda x, y: add(x, y, -1.5), (a, b))
    assert torch.autograd.gradgradcheck(lambda x, y: add(x, y, 0.7), (a, b))


def check_gradient_of_one_operand(add):
    a = operands(10, torch.float64, 6)[0].requires_grad_()
    b = operands(10, torch.float64, 7)[0]  # no gradient wanted for b
    (grad_a,) = torch.autograd.grad(add(a, b, 3.0).sum(), a)
    torch.testing.assert_close(grad_a, torch.ones_like(a), rtol=0, atol=0)


def check_errors_name_the_problem(add):
    with pytest.raises(RuntimeError, match="shape"):
        add(torch.randn(3), torch.randn(4))
    with pytest.raises(RuntimeError, match="dtype"):
        add(torch.randn(3), torch.randn(3, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="float32 or float64"):
        add(torch.arange(3), torch.arange(3))
    with pytest.raises(TypeError, match="b must be a Tensor"):
        add(torch.randn(3), [1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="a must be a Tensor"):
        add(1.0, torch.randn(3))


CHECKS = [check_values, check_default_alpha_is_one, check_shapes_and_strides, check_gradients,
          check_gradient_of_one_operand, check_errors_name_the_problem]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_add(add, check):
    check(add)


def broken(bug):
    """The reference's Function with one deliberate mistake."""
    from torchkata.extensions import add as reference

    class Broken(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a, b, alpha, lib):
            ctx.alpha, ctx.lib = alpha, lib
            return lib.forward(a, b, 1.0 if bug == "alpha_ignored" else alpha)

        @staticmethod
        def backward(ctx, grad_out):
            grad_a, grad_b = ctx.lib.backward(grad_out, 1.0 if bug == "alpha_not_in_backward" else ctx.alpha)
            return (grad_b, grad_a, None, None) if bug == "gradients_swapped" else (grad_a, grad_b, None, None)

    def add(a, b, alpha=1.0, library_path=None):
        if bug == "detached":
            return reference.add(a.detach(), b.detach(), alpha, library_path)
        if bug == "alpha_default_zero" and alpha == 1.0:
            alpha = 0.0
        return Broken.apply(a, b, float(alpha), reference.library(library_path))

    return add


@pytest.mark.suite_check
@pytest.mark.parametrize("bug", ["alpha_ignored", "alpha_not_in_backward", "gradients_swapped", "detached",
                                 "alpha_default_zero"])
def test_broken_add_is_rejected(bug, extension_library):
    assert failing_checks(CHECKS, functools.partial(broken(bug), library_path=str(extension_library("add"))))


@pytest.mark.suite_check
def test_kernels_are_hand_written():
    """The kernels loop over the elements themselves: no ATen arithmetic on the tensors."""
    assert_no_aten_op(["csrc/add/add.cpp", "csrc/add/add_cuda.cu"],
                      ["at::add", "torch::add", ".add(", ".add_(", "at::mul", "torch::mul", ".mul(", ".mul_("])
