"""a41: the add-constant C++ extension, graded against native x + c (the library is built once per session)."""
import functools

import pytest
import torch

from grading import failing_checks

EXERCISE = "a41"


@pytest.fixture(scope="module")
def add_constant(impl_for, extension_library):
    return functools.partial(impl_for(EXERCISE).add_constant, library_path=str(extension_library("add_constant")))


def check_values(add_constant):
    for x in [torch.randn(5), torch.randn(3, 4, dtype=torch.float64), torch.randn(4, 6).t(), torch.empty(0, 2)]:
        torch.testing.assert_close(add_constant(x, 2.5), x + 2.5)


def check_gradients(add_constant):
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 3, dtype=torch.float64)
    (grad,) = torch.autograd.grad((add_constant(x, -1.0) * w).sum(), x)
    torch.testing.assert_close(grad, w)
    assert torch.autograd.gradcheck(lambda t: add_constant(t, 3.0), (x,))


def check_errors(add_constant):
    with pytest.raises(RuntimeError, match="floating-point"):
        add_constant(torch.arange(3), 1.0)
    with pytest.raises(TypeError):
        add_constant([1.0, 2.0], 1.0)


CHECKS = [check_values, check_gradients, check_errors]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_add_constant(add_constant, check):
    check(add_constant)


def adds_twice(x, c, library_path=None):
    return x + 2 * c


def detached(x, c, library_path=None):
    if not isinstance(x, torch.Tensor):
        raise TypeError("x")
    return (x.detach() + c).requires_grad_(x.requires_grad)


@pytest.mark.suite_check
@pytest.mark.parametrize("broken", [adds_twice, detached], ids=lambda f: f.__name__)
def test_broken_add_constant_is_rejected(broken):
    assert failing_checks(CHECKS, broken)


@pytest.mark.suite_check
def test_library_is_the_compiled_extension(extension_library):
    from torchkata.pipeline.extensions import load

    library = load("add_constant", extension_library("add_constant"))
    assert library.__file__.endswith(".so")
    torch.testing.assert_close(library.forward(torch.ones(2), 1.0), torch.full((2,), 2.0))
