"""b01-07: reshape and flatten by hand, graded against torch.reshape / torch.flatten: same values, and a view
(the same storage, the same strides) exactly where torch makes one, a copy exactly where it copies."""
import inspect
import math
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from grading import failing_checks
from strided_inputs import SETTINGS, shapes_of, strided_tensors

EXERCISE = "b01-07"


@pytest.fixture(scope="module")
def impl(impl_for):
    return impl_for(EXERCISE)


def shares_storage(a, b):
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def assert_same_strides(got, want):
    """Strides must agree on every dim of size > 1 (a size-1 dim is never stepped along: its stride is free)."""
    for size, g, w in zip(want.shape, got.stride(), want.stride()):
        assert size <= 1 or g == w, (tuple(got.stride()), tuple(want.stride()), tuple(want.shape))


def assert_like_torch(got, want, x):
    """Same shape, dtype and values as torch's result, and a view of x exactly when torch's is one."""
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, want.shape, got.dtype)
    assert torch.equal(got, want)
    assert shares_storage(got, x) == shares_storage(want, x), f"torch made {'a view' if shares_storage(want, x) else 'a copy'}"
    if shares_storage(want, x) and want.numel():
        assert got.data_ptr() == want.data_ptr()
        assert_same_strides(got, want)
    if not shares_storage(want, x):
        assert got.is_contiguous()


def torch_view_strides(x, shape):
    try:
        return x.view(shape).stride()
    except RuntimeError:
        return None


def check_infer_shape(impl):
    for shape, numel, want in [((2, -1), 12, (2, 6)), ((-1,), 7, (7,)), ((3, -1, 2), 0, (3, 0, 2)),
                               ((-1, 1, 4), 8, (2, 1, 4)), ((), 1, ()), ((5, 2), 10, (5, 2)), ((0, 4), 0, (0, 4)),
                               ((20, 30), 600, (20, 30)), ((-1, 30), 600, (20, 30))]:
        assert impl.infer_shape(shape, numel) == want, (shape, numel)


def check_infer_shape_errors(impl):
    for shape, numel, named in [((-1, -1), 4, "-1"), ((2, -2), 4, "-2"), ((-2, -2), 4, "-2"), ((-3, -1), 3, "-3"), ((5, 2), 12, "12"), ((5, -1), 12, "12"),
                                ((0, -1), 0, "-1"), ((2, 3), 0, "[2, 3]")]:
        with pytest.raises(RuntimeError) as error:
            impl.infer_shape(shape, numel)
        with pytest.raises(RuntimeError):  # torch refuses the same shapes
            torch.empty(numel).reshape(shape)
        assert named in str(error.value), (shape, numel, str(error.value))


def check_view_strides_like_torch(impl):
    @settings(**SETTINGS)
    @given(st.data())
    def case(data):
        x = data.draw(strided_tensors())
        shape = data.draw(shapes_of(x.numel()))
        got, want = impl.view_strides(tuple(x.shape), x.stride(), shape), torch_view_strides(x, shape)
        assert (got is None) == (want is None), (tuple(x.shape), x.stride(), shape, got, want)
        if want is not None:
            assert all(size <= 1 or g == w for size, g, w in zip(shape, got, want)), (tuple(x.shape), x.stride(), shape, got, want)
    case()


def check_view_strides_cases(impl):
    # hand-picked: merging a transposed pair is impossible, splitting one dim of it is fine, size-1 dims are free
    x = torch.empty(4, 6).t()
    assert impl.view_strides((6, 4), x.stride(), (24,)) is None
    assert impl.view_strides((6, 4), (1, 6), (2, 3, 4)) == (3, 1, 6)
    assert impl.view_strides((6, 4), (1, 6), (6, 2, 2)) == (1, 12, 6)
    assert impl.view_strides((3, 1, 4), (4, 99, 1), (12,)) == (1,)
    assert impl.view_strides((2, 3), (10, 2), (2, 3, 1))[:2] == (10, 2)
    assert impl.view_strides((), (), (1, 1)) is not None
    assert impl.view_strides((20, 30), (30, 1), (600,)) == (1,)  # chunks of more than 256 elements
    assert impl.view_strides((20, 30), (60, 1), (20, 5, 6)) == (60, 6, 1)
    assert impl.view_strides((2, 300), (300, 1), (600,)) == (1,)  # strides above 256 too
    assert impl.view_strides((3, 300), (600, 1), (3, 300)) == (600, 1)
    assert impl.view_strides((3, 300), (600, 1), (3, 20, 15)) == (600, 15, 1)


def check_reshape_like_torch(impl):
    @settings(**SETTINGS)
    @given(st.data())
    def case(data):
        x = data.draw(strided_tensors())
        shape = list(data.draw(shapes_of(x.numel())))
        if shape and x.numel() and data.draw(st.booleans()):
            shape[data.draw(st.integers(0, len(shape) - 1))] = -1
        assert_like_torch(impl.reshape(x, shape), torch.reshape(x, shape), x)
    case()


def check_views_alias_and_copies_do_not(impl):
    x = torch.arange(24.0).reshape(4, 6)[:, :3]  # (4, 3), strides (6, 1): a gap after each row
    view = impl.reshape(x, (2, 2, 3))  # splits dim 0: a view
    view[1, 1, 2] = -1.0
    assert x[3, 2] == -1.0
    copy = impl.reshape(x, (12,))  # merges dims with a gap between rows: a copy
    copy[0] = -2.0
    assert x[0, 0] == 0.0
    assert torch.equal(copy[1:], x.flatten()[1:])
    assert torch.equal(impl.reshape(x[:, ::2], (8,)), x[:, ::2].flatten())


def check_offset_kept(impl):
    base = torch.arange(30.0)
    x = base[7:19].as_strided((3, 4), (4, 1), 7)  # a view that starts at storage offset 7
    got = impl.reshape(x, (2, 6))
    assert got.storage_offset() == 7 and torch.equal(got, x.reshape(2, 6))
    y = torch.arange(40.0).reshape(5, 8)[1:, 1::2]
    assert_like_torch(impl.reshape(y, (-1,)), y.reshape(-1), y)
    assert_like_torch(impl.reshape(y, (2, 2, 4)), y.reshape(2, 2, 4), y)


def check_dtypes(impl):
    for dtype in (torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.bool):
        x = (torch.arange(24) % 3).to(dtype).reshape(2, 3, 4).transpose(0, 2)
        for shape in ((4, 6), (-1,), (4, 3, 2)):
            assert_like_torch(impl.reshape(x, shape), x.reshape(shape), x)


def check_zero_dim_and_empty(impl):
    s = torch.tensor(5.0)
    for shape in ((), (1,), (1, 1), (-1,)):
        assert_like_torch(impl.reshape(s, shape), s.reshape(shape), s)
    e = torch.empty(0, 3)
    for shape in ((3, 0), (0,), (0, 3), (2, 0, 5)):
        assert_like_torch(impl.reshape(e, shape), e.reshape(shape), e)
    assert impl.reshape(e.t(), (3, 0)).stride() == e.t().reshape(3, 0).stride()  # unchanged shape keeps strides


def check_gradients(impl):
    x = torch.randn(4, 6, dtype=torch.float64).t().requires_grad_()
    w = torch.randn(3, 8, dtype=torch.float64)
    (ours,) = torch.autograd.grad((impl.reshape(x, (3, 8)) * w).sum(), x)
    (want,) = torch.autograd.grad((x.reshape(3, 8) * w).sum(), x)
    assert torch.allclose(ours, want)
    assert torch.autograd.gradcheck(lambda t: impl.flatten(t[:, ::2]), (x,))


def check_flatten_like_torch(impl):
    for shape in [(2, 3, 4, 5), (3, 4), (5,), (2, 1, 3)]:
        base = torch.arange(math.prod(shape), dtype=torch.float64).reshape(shape)
        inputs = [base, base.permute(*reversed(range(base.dim()))), base[..., ::2]]
        for x in inputs:
            for start in range(-x.dim(), x.dim()):
                for end in range(-x.dim(), x.dim()):
                    if start % x.dim() <= end % x.dim():
                        assert_like_torch(impl.flatten(x, start, end), torch.flatten(x, start, end), x)
            assert_like_torch(impl.flatten(x), torch.flatten(x), x)  # defaults: all dims
            assert_like_torch(impl.flatten(x, 1 % x.dim()), torch.flatten(x, 1 % x.dim()), x)


def check_flatten_nothing_to_merge(impl):
    x = torch.randn(3, 4).t()
    assert impl.flatten(x, 1, 1) is x and impl.flatten(x, -2, 0) is x  # torch returns the input itself
    s = torch.tensor(2.0)
    for start, end in ((0, 0), (0, -1), (-1, 0)):
        got = impl.flatten(s, start, end)
        assert got.shape == (1,) and torch.equal(got, torch.flatten(s, start, end))


def check_flatten_errors(impl):
    x = torch.randn(2, 3, 4)
    with pytest.raises(RuntimeError) as error:
        impl.flatten(x, 2, 1)
    assert "start_dim" in str(error.value) and "end_dim" in str(error.value)
    with pytest.raises(RuntimeError):
        impl.flatten(x, -1, 0)  # -1 is dim 2: after 0
    for start, end, named in ((3, -1, "3"), (0, 3, "3"), (5, -1, "5"), (0, 7, "7"), (-4, -1, "-4"), (0, -4, "-4")):
        with pytest.raises(IndexError) as error:
            impl.flatten(x, start, end)
        assert named in str(error.value), str(error.value)
    for start, end in ((1, 0), (0, 1), (-2, 0)):
        with pytest.raises(IndexError):
            impl.flatten(torch.tensor(1.0), start, end)


CHECKS = [check_infer_shape, check_infer_shape_errors, check_view_strides_like_torch, check_view_strides_cases,
          check_reshape_like_torch, check_views_alias_and_copies_do_not, check_offset_kept, check_dtypes,
          check_zero_dim_and_empty, check_gradients, check_flatten_like_torch, check_flatten_nothing_to_merge,
          check_flatten_errors]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_reshape(impl, check):
    check(impl)


# deliberately broken solutions: the reference with one part wrong


def reference(**broken):
    from torchkata.tensors import reshape as module

    parts = {name: getattr(module, name) for name in ("infer_shape", "view_strides", "reshape", "flatten")}
    return SimpleNamespace(**{**parts, **broken})


def always_copy(x, shape):
    return x.clone(memory_format=torch.contiguous_format).reshape(shape)


def view_only_if_contiguous(x, shape):
    return x.view(shape) if x.is_contiguous() else always_copy(x, shape)


def fresh_strides(x, shape):
    """Row-major strides on x's storage whatever x's own strides are: reads the wrong elements."""
    from torchkata.tensors.reshape import infer_shape
    from torchkata.tensors.strides import contiguous_strides

    shape = infer_shape(shape, x.numel())
    return x.as_strided(shape, contiguous_strides(shape))


def end_exclusive(x, start_dim=0, end_dim=-1):
    return torch.flatten(x, start_dim, max(end_dim % max(x.dim(), 1) - 1, start_dim % max(x.dim(), 1)))


def no_inference(shape, numel):
    if math.prod(shape) != numel:
        raise RuntimeError(f"shape {list(shape)} is invalid for input of size {numel}")
    return tuple(shape)


def merges_across_chunks(shape, strides, new_shape):
    """Claims every reshape is a view with row-major strides scaled by the last stride."""
    from torchkata.tensors.strides import contiguous_strides

    return tuple(s * (strides[-1] if strides else 1) for s in contiguous_strides(new_shape))


# each broken version, and a check that must reject it
BROKEN = {"always_copy": (reference(reshape=always_copy), check_reshape_like_torch),
          "view_only_if_contiguous": (reference(reshape=view_only_if_contiguous), check_reshape_like_torch),
          "fresh_strides": (reference(reshape=fresh_strides), check_offset_kept),
          "end_exclusive": (reference(flatten=end_exclusive), check_flatten_like_torch),
          "no_inference": (reference(infer_shape=no_inference), check_infer_shape),
          "merges_across_chunks": (reference(view_strides=merges_across_chunks), check_view_strides_like_torch)}


@pytest.mark.suite_check
@pytest.mark.parametrize("name", BROKEN)
def test_broken_reshape_is_rejected(name):
    broken, check = BROKEN[name]
    assert failing_checks([check], broken)


@pytest.mark.suite_check
def test_no_builtin_reshape_in_reference():
    from torchkata.tensors import reshape as module

    source = inspect.getsource(module)
    for builtin in (".reshape(", ".view(", ".flatten(", "torch.reshape", "torch.flatten", ".contiguous(", "unflatten"):
        assert builtin not in source, builtin
