"""b01-02: min-max scaling per dim, graded against a float64 reference and scikit-learn's minmax_scale."""
import numpy as np
import pytest
import torch
from sklearn.preprocessing import minmax_scale

from grading import failing_checks

EXERCISE = "b01-02"
# dtype -> (rtol, atol) of a result in [0, 1] against the float64 reference
TOLERANCES = {torch.float64: (1e-12, 1e-12), torch.float32: (1e-5, 1e-6), torch.float16: (1e-2, 2e-3),
              torch.bfloat16: (2e-2, 1e-2)}


@pytest.fixture(scope="module")
def min_max_scale(impl_for):
    return impl_for(EXERCISE).min_max_scale


def expected(x, dim):
    """The float64 reference: (x - min) / (max - min), 0 where the slice is constant."""
    x = x.double()
    low, high = x.amin(dim, keepdim=True), x.amax(dim, keepdim=True)
    return torch.where(high > low, (x - low) / (high - low), 0.0)


def check_matches_reference(min_max_scale):
    for shape in [(7,), (3, 5), (2, 3, 4), (1, 1), (4, 300)]:
        for dim in range(-len(shape), len(shape)):
            for dtype, (rtol, atol) in TOLERANCES.items():
                x = (torch.randn(shape, dtype=torch.float64) * 3 + 1).to(dtype)
                y = min_max_scale(x, dim=dim)
                assert y.dtype == dtype and y.shape == x.shape, (dtype, y.dtype, y.shape)
                torch.testing.assert_close(y.double(), expected(x, dim), rtol=rtol, atol=atol)


def check_matches_sklearn(min_max_scale):
    # scikit-learn scales the columns of a 2-D array (dim 0), constant columns to 0 like ours
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20, 6)) * [1, 10, 1e3, 1, 0.1, 1] + [0, 5, -3, 0, 0, 1e4]
    a[:, 3] = 2.5  # a constant column
    torch.testing.assert_close(min_max_scale(torch.from_numpy(a), dim=0), torch.from_numpy(minmax_scale(a)))
    torch.testing.assert_close(min_max_scale(torch.from_numpy(a.T.copy()), dim=1),
                               torch.from_numpy(minmax_scale(a).T.copy()))


def check_constant_slices_map_to_zero(min_max_scale):
    x = torch.tensor([[4.0, 4.0, 4.0], [1.0, 3.0, 2.0], [-0.0, 0.0, 0.0]])
    y = min_max_scale(x, dim=1)
    assert torch.equal(y, torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 0.0]]))
    assert torch.equal(min_max_scale(x, dim=0)[:, 0], torch.tensor([1.0, 0.25, 0.0]))
    assert torch.equal(min_max_scale(torch.full((2, 5), -7.5), dim=-1), torch.zeros(2, 5))
    assert torch.equal(min_max_scale(torch.randn(4, 1), dim=1), torch.zeros(4, 1))  # one element: constant
    for dim in (0, -1):  # a 0-d tensor is one constant value
        y = min_max_scale(torch.tensor(3.0), dim=dim)
        assert y.shape == () and y.item() == 0.0


def check_exact_ends(min_max_scale):
    # every non-constant slice has its min at exactly 0 and its max at exactly 1, in float32 as in float64
    for dtype in (torch.float32, torch.float64):
        x = torch.randn(50, 33, dtype=dtype) * 1e3 + 7
        y = min_max_scale(x, dim=0)
        assert torch.equal(y.amin(0), torch.zeros(33, dtype=dtype))
        assert torch.equal(y.amax(0), torch.ones(33, dtype=dtype))
        assert y[x.argmax(0), torch.arange(33)].eq(1).all()


def check_non_contiguous(min_max_scale):
    x = torch.randn(6, 8, dtype=torch.float64).t()
    assert not x.is_contiguous()
    torch.testing.assert_close(min_max_scale(x, dim=0), expected(x, 0))
    x = torch.randn(5, 12, dtype=torch.float64)[:, ::3]
    torch.testing.assert_close(min_max_scale(x, dim=1), expected(x, 1))


def check_magnitudes(min_max_scale):
    # scaling is invariant to the units: 1e30 and 1e-30 spreads scale like 1 (sklearn would call 1e-30 constant)
    x = torch.randn(4, 9)
    want = expected(x, -1).float()
    for unit in (1e30, 1e-30):
        torch.testing.assert_close(min_max_scale(x * unit, dim=-1), want, rtol=1e-5, atol=1e-6)
    # a small spread far from 0 (subtract first, then divide)
    close = torch.tensor([1000.0, 1000.125, 1000.25, 1000.5])
    assert torch.equal(min_max_scale(close, dim=0), torch.tensor([0.0, 0.25, 0.5, 1.0]))


def check_gradients(min_max_scale):
    x = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 5, dtype=torch.float64)
    for dim in (0, -1):
        assert torch.autograd.gradcheck(lambda t: min_max_scale(t, dim=dim), (x,))
        (ours,) = torch.autograd.grad((min_max_scale(x, dim=dim) * w).sum(), x)
        (want,) = torch.autograd.grad((expected(x, dim) * w).sum(), x)
        torch.testing.assert_close(ours, want)
    flat = torch.ones(2, 3, dtype=torch.float64, requires_grad=True)  # constant rows: a finite gradient
    (grad,) = torch.autograd.grad((min_max_scale(flat, dim=1) * w[:2, :3]).sum(), flat)
    assert torch.isfinite(grad).all(), grad


def check_input_untouched(min_max_scale):
    x = torch.randn(4, 6)
    before = x.clone()
    min_max_scale(x, dim=0)
    min_max_scale(x, dim=1)
    assert torch.equal(x, before)


def check_empty(min_max_scale):
    for shape, dim in [((0, 3), 0), ((0, 3), 1), ((3, 0), 0), ((3, 0), -1), ((0,), 0)]:
        y = min_max_scale(torch.empty(shape), dim=dim)
        assert y.shape == shape and y.dtype == torch.float32


def check_default_dim(min_max_scale):
    x = torch.randn(2, 3, 4, dtype=torch.float64)  # three axes of different sizes: the wrong one shows
    torch.testing.assert_close(min_max_scale(x), expected(x, -1))


def check_errors(min_max_scale):
    with pytest.raises(TypeError, match="floating"):
        min_max_scale(torch.arange(4), dim=0)
    # just past each end, for 2-D, 1-D and 0-d tensors, empty ones too: an IndexError that says which dim is wrong
    for shape, dim in [((2, 3), 2), ((2, 3), 5), ((2, 3), -3), ((3,), 1), ((3,), -2), ((), 1), ((), -2),
                       ((0, 3), 2), ((0, 3), 5), ((0, 3), -3), ((0,), 1), ((0,), -2)]:
        with pytest.raises(IndexError) as error:
            min_max_scale(torch.randn(shape), dim=dim)
        assert str(dim) in str(error.value), (shape, dim, str(error.value))


def check_non_finite_range_is_an_error(min_max_scale):
    # inf or nan in a slice, or a spread beyond the dtype (float16's max is 65504): a ValueError, not silent nan
    cases = [torch.tensor([[1.0, float("inf")], [0.0, 1.0]]), torch.tensor([[0.0, 1.0], [float("nan"), 1.0]]),
             torch.tensor([-4e4, 4e4], dtype=torch.float16)]
    for x in cases:
        with pytest.raises(ValueError, match="not finite"):
            min_max_scale(x, dim=-1)
    assert torch.isfinite(min_max_scale(torch.tensor([-3e4, 3e4], dtype=torch.float16), dim=0)).all()


CHECKS = [check_matches_reference, check_matches_sklearn, check_constant_slices_map_to_zero, check_exact_ends,
          check_non_contiguous, check_magnitudes, check_gradients, check_input_untouched, check_empty,
          check_default_dim, check_errors, check_non_finite_range_is_an_error]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_min_max_scale(min_max_scale, check):
    check(min_max_scale)


def global_range(x, dim=-1):
    return (x - x.min()) / (x.max() - x.min())


def zero_span_is_nan(x, dim=-1):
    return (x - x.amin(dim, keepdim=True)) / (x.amax(dim, keepdim=True) - x.amin(dim, keepdim=True))


def divide_by_max(x, dim=-1):
    return x / x.amax(dim, keepdim=True)


def scales_in_place(x, dim=-1):
    low = x.amin(dim, keepdim=True)
    span = x.amax(dim, keepdim=True) - low
    return x.sub_(low).div_(torch.where(span == 0, 1, span))


def folded_affine(x, dim=-1):
    # one multiply-add instead of subtract-then-divide: x * scale rounds before the shift cancels
    low = x.amin(dim, keepdim=True)
    scale = 1 / torch.where(x.amax(dim, keepdim=True) == low, 1, x.amax(dim, keepdim=True) - low)
    return x * scale - low * scale


@pytest.mark.suite_check
@pytest.mark.parametrize("broken", [global_range, zero_span_is_nan, divide_by_max, scales_in_place, folded_affine],
                         ids=lambda f: f.__name__)
def test_broken_min_max_scale_is_rejected(broken):
    assert failing_checks(CHECKS, broken)


@pytest.mark.suite_check
def test_no_builtin_scaler_in_reference():
    import inspect

    from torchkata.tensors import minmax as module

    source = inspect.getsource(module)
    assert "sklearn" not in source and "minmax_scale(" not in source and "F.normalize" not in source
