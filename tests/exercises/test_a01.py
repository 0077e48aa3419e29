"""a01: softmax by hand, graded against torch.softmax."""
import pytest
import torch

from grading import failing_checks

EXERCISE = "a01"


@pytest.fixture(scope="module")
def softmax(impl_for):
    return impl_for(EXERCISE).softmax


def check_matches_torch(softmax):
    for shape in [(7,), (3, 5), (2, 3, 4), (1, 1), (4, 1000)]:
        for dim in range(-len(shape), len(shape)):
            for dtype, rtol in [(torch.float64, 1e-6), (torch.float32, 1e-5)]:
                x = torch.randn(shape, dtype=dtype) * 5
                torch.testing.assert_close(softmax(x, dim=dim), torch.softmax(x, dim=dim), rtol=rtol, atol=1e-7)


def check_many_rows(softmax):
    # hundreds of rows: an implementation that works through the tensor in pieces must still normalise every
    # whole row along `dim`, whichever dim that is
    for shape in [(300,), (300, 40), (300, 3, 20), (2, 300, 20)]:
        x = torch.randn(shape) * 5
        for dim in range(-len(shape), len(shape)):
            torch.testing.assert_close(softmax(x, dim=dim), torch.softmax(x, dim=dim), rtol=1e-5, atol=1e-7)


def check_non_contiguous(softmax):
    x = torch.randn(6, 8).t()
    assert not x.is_contiguous()
    torch.testing.assert_close(softmax(x, dim=0), torch.softmax(x, dim=0))


def check_large_logits(softmax):
    x = torch.tensor([[1e4, 0.0, -1e4], [1e4, 1e4 - 1, 5.0]])
    y = softmax(x, dim=-1)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y.sum(-1), torch.ones(2))
    torch.testing.assert_close(y, torch.softmax(x, dim=-1))


def check_gradients(softmax):
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 4, dtype=torch.float64)
    (ours,) = torch.autograd.grad((softmax(x, dim=1) * w).sum(), x)
    (want,) = torch.autograd.grad((torch.softmax(x, dim=1) * w).sum(), x)
    torch.testing.assert_close(ours, want)
    assert torch.autograd.gradcheck(lambda t: softmax(t, dim=0), (x,))


def check_empty(softmax):
    assert softmax(torch.empty(0, 3), dim=0).shape == (0, 3)
    assert softmax(torch.empty(3, 0), dim=0).shape == (3, 0)
    assert softmax(torch.empty(0), dim=0).shape == (0,)  # a 1-D empty tensor too


def check_default_dim(softmax):
    x = torch.randn(2, 3, 4, dtype=torch.float64)  # three axes of different sizes: the wrong one shows
    torch.testing.assert_close(softmax(x), torch.softmax(x, dim=-1))


def check_zero_dim(softmax):
    x = torch.tensor(3.0)  # a 0-d tensor: torch.softmax accepts dim 0 and -1, and gives 1
    for dim in (0, -1):
        y = softmax(x, dim=dim)
        assert y.shape == ()
        torch.testing.assert_close(y, torch.softmax(x, dim=dim))


def check_errors(softmax):
    with pytest.raises(TypeError):
        softmax(torch.arange(4), dim=0)
    with pytest.raises(IndexError):
        softmax(torch.randn(2, 3), dim=2)


def check_dim_error_names_the_dim(softmax):
    # just past each end, for 2-D, 1-D and 0-d tensors: an IndexError that says which dim is wrong
    # (torch.softmax's own error does; Python's "tuple index out of range" does not)
    for shape, dim in [((2, 3), 2), ((2, 3), 5), ((2, 3), -3), ((3,), 1), ((3,), -2), ((), 1), ((), -2)]:
        with pytest.raises(IndexError) as error:
            softmax(torch.randn(shape), dim=dim)
        assert str(dim) in str(error.value), (shape, dim, str(error.value))


CHECKS = [check_matches_torch, check_many_rows, check_non_contiguous, check_large_logits, check_gradients, check_empty,
          check_errors, check_default_dim, check_zero_dim, check_dim_error_names_the_dim]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_softmax(softmax, check):
    check(softmax)


def naive(x, dim=-1):
    e = x.exp()
    return e / e.sum(dim, keepdim=True)


def wrong_dim(x, dim=-1):
    shifted = x - x.amax(dim=dim, keepdim=True)
    return shifted.exp() / shifted.exp().sum(dim=0, keepdim=True)


def unnormalised(x, dim=-1):
    return (x - x.amax(dim=dim, keepdim=True)).exp()


@pytest.mark.suite_check
@pytest.mark.parametrize("broken", [naive, wrong_dim, unnormalised], ids=lambda f: f.__name__)
def test_broken_softmax_is_rejected(broken):
    assert failing_checks(CHECKS, broken)


@pytest.mark.suite_check
def test_no_builtin_softmax_in_reference():
    import inspect

    from torchkata.tensors import softmax as module

    source = inspect.getsource(module)
    assert "torch.softmax(" not in source and "F.softmax" not in source and "nn.Softmax" not in source
