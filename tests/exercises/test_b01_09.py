"""b01-09: slicing 3-D tensors by hand, from strides: an index (ints, slices with steps, negative indices, None,
..., a boolean mask) becomes (offset, sizes, strides), shown with torch.as_strided, graded against x[index]."""
import inspect
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from grading import failing_checks
from strided_inputs import SETTINGS, basic_indices, shapes, strided_tensors

EXERCISE = "b01-09"


@pytest.fixture(scope="module")
def impl(impl_for):
    return impl_for(EXERCISE)


def shares_storage(a, b):
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def assert_same_view(got_offset, got_sizes, got_strides, want):
    assert tuple(got_sizes) == tuple(want.shape), (got_sizes, tuple(want.shape))
    if want.numel():
        assert got_offset == want.storage_offset(), (got_offset, want.storage_offset())
        for size, g, w in zip(want.shape, got_strides, want.stride()):
            assert size <= 1 or g == w, (tuple(got_strides), want.stride())


def check_contiguous_strides(impl):
    for shape in [(), (5,), (3, 4), (2, 3, 4), (4, 0, 3), (0,), (1, 1, 7), (3, 1, 0, 2)]:
        assert tuple(impl.contiguous_strides(shape)) == torch.empty(shape).stride(), shape


def check_index_view_like_torch(impl):
    @settings(**SETTINGS)
    @given(st.data())
    def case(data):
        x = data.draw(strided_tensors(min_rank=1, max_rank=4))
        index = data.draw(basic_indices(tuple(x.shape)))
        view = impl.index_view(tuple(x.shape), x.stride(), x.storage_offset(), index)
        assert_same_view(*view, x[index])
    case()


def check_slice_tensor_like_torch(impl):
    @settings(**SETTINGS)
    @given(st.data())
    def case(data):
        x = data.draw(strided_tensors(min_rank=3, max_rank=3))
        index = data.draw(basic_indices(tuple(x.shape)))
        got, want = impl.slice_tensor(x, index), x[index]
        assert got.shape == want.shape and torch.equal(got, want), (index, tuple(got.shape), tuple(want.shape))
        assert shares_storage(got, x)
        if want.numel():
            assert got.data_ptr() == want.data_ptr(), index
    case()


def check_3d_examples(impl):
    x = torch.arange(4 * 5 * 6).reshape(4, 5, 6)
    examples = [1, -1, (0, -2), (slice(1, 4, 2),), (slice(None), slice(-3, None)), (Ellipsis, slice(None, None, 3)),
                (slice(None, None, 2), Ellipsis, 5), (None, 2, slice(None), None), (-4, -5, -6), (Ellipsis,),
                (Ellipsis, None), (slice(10, 20),), (slice(-10, 2),), (slice(3, 1),), (1, slice(None, None, 4), -1),
                (slice(-2, None, 2), 3), ()]
    for index in examples:
        got, want = impl.slice_tensor(x, index), x[index]
        assert got.shape == want.shape and torch.equal(got, want), index
        assert_same_view(*impl.index_view(x.shape, x.stride(), 0, index), want)


def check_views_share_storage(impl):
    x = torch.zeros(3, 4, 5)
    view = impl.slice_tensor(x, (slice(None), -1, slice(1, None, 2)))
    view.fill_(7.0)
    assert x[:, 3, 1::2].eq(7).all() and x.sum() == 7 * 3 * 2
    base = torch.arange(200.0)
    y = base[10:130].as_strided((4, 5, 6), (30, 6, 1), 10)  # starts at storage offset 10
    assert impl.slice_tensor(y, (1, 2)).storage_offset() == y[1, 2].storage_offset()


def check_masks(impl):
    torch.manual_seed(1)
    x = torch.arange(3 * 4 * 5.0).reshape(3, 4, 5)
    xt = x.transpose(0, 2)  # non-contiguous, shape (5, 4, 3)
    for t in (x, xt):
        a, b, c = t.shape
        for make in (lambda: torch.rand(a, b, c) > 0.5, lambda: torch.zeros(a, b, c, dtype=torch.bool)):
            mask = make()
            assert torch.equal(impl.slice_tensor(t, mask), t[mask])
        for index in [lambda: (torch.rand(a, b) > 0.5,), lambda: (slice(None), torch.rand(b, c) > 0.5),
                      lambda: (1, torch.rand(b, c) > 0.3), lambda: (Ellipsis, torch.rand(c) > 0.5),
                      lambda: (None, torch.rand(a) > 0.5, slice(None, None, 2)), lambda: (slice(1, None), torch.rand(b) > 0.5, -1),
                      lambda: (torch.ones(a, dtype=torch.bool), 0), lambda: (slice(None), torch.tensor([True] + [False] * (b - 1)))]:
            index = index()
            got, want = impl.slice_tensor(t, index), t[index]
            assert got.shape == want.shape and torch.equal(got, want), [getattr(i, "shape", i) for i in index]
            if want.numel():
                assert not shares_storage(got, t)  # a mask gathers into a copy


def check_gradients(impl):
    x = torch.randn(3, 4, 5, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(4, 5) > 0.5
    for index in ((slice(None), -1, slice(None, None, 2)), (1, mask)):
        w = torch.randn(x[index].shape, dtype=torch.float64)
        (ours,) = torch.autograd.grad((impl.slice_tensor(x, index) * w).sum(), x)
        (want,) = torch.autograd.grad((x[index] * w).sum(), x)
        assert torch.equal(ours, want), index


def check_errors(impl):
    x = torch.randn(3, 4, 5)
    cases = [((3,), IndexError, ["3", "0", "size 3"]), ((0, -5), IndexError, ["-5", "1", "size 4"]),
             ((1, 9), IndexError, ["9", "1", "size 4"]),
             ((slice(None), torch.ones(3, dtype=torch.bool)), IndexError, ["(3,)", "(4,)"]),
             ((0, 0, 0, 0), IndexError, ["dimension 3"]), ((slice(None, None, -1),), ValueError, ["step", "-1"]),
             ((slice(None, None, 0),), ValueError, ["step", "0"]), ((Ellipsis, 0, Ellipsis), IndexError, ["ellipsis"]),
             ((torch.ones(4, dtype=torch.bool),), IndexError, ["(4,)", "(3,)"]),
             ((0, torch.ones(4, 4, dtype=torch.bool)), IndexError, ["(4, 4)", "(4, 5)"]),
             ((torch.tensor([0, 2]),), TypeError, ["int64"]), ((1.5,), TypeError, ["float"]), ((True,), TypeError, ["bool"]),
             (([0, 1],), TypeError, ["list"]), ((torch.tensor(True),), IndexError, ["dimension"]),
             ((torch.ones(3, dtype=torch.bool), torch.ones(4, dtype=torch.bool)), IndexError, ["one boolean mask"])]
    for index, error_type, named in cases:
        with pytest.raises(error_type) as error:
            impl.slice_tensor(x, index)
        for word in named:
            assert word in str(error.value), (index, word, str(error.value))
    with pytest.raises(IndexError):
        impl.index_view((3, 4), (4, 1), 0, (0, 4))
    with pytest.raises(TypeError):  # a mask is not a view
        impl.index_view((3,), (1,), 0, torch.ones(3, dtype=torch.bool))


CHECKS = [check_contiguous_strides, check_index_view_like_torch, check_slice_tensor_like_torch, check_3d_examples,
          check_views_share_storage, check_masks, check_gradients, check_errors]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_slicing(impl, check):
    check(impl)


# deliberately broken solutions: the reference with one typical mistake written into it


def broken(old, new):
    from torchkata.tensors import strides

    source = inspect.getsource(strides)
    assert old in source, old
    namespace = {"__name__": "broken_strides"}
    exec(compile(source.replace(old, new), "broken_strides", "exec"), namespace)
    return SimpleNamespace(**namespace)


BROKEN = {
    "negative_ints_not_wrapped": (("offset += (item % size) * stride", "offset += item * stride"), check_3d_examples),
    "length_rounded_down": (("max(0, -(-(stop - start) // step))", "max(0, (stop - start) // step)"), check_3d_examples),
    "step_ignored_in_stride": (("new_strides.append(stride * step)", "new_strides.append(stride)"), check_slice_tensor_like_torch),
    "offset_from_zero": (("x.as_strided(sizes, strides, offset)", "x.as_strided(sizes, strides, offset - x.storage_offset())"),
                         check_views_share_storage),
    "ellipsis_fills_the_front": (("return [*index[:at], *fill, *index[at + 1:]]", "return [*fill, *index[:at], *index[at + 1:]]"),
                                 check_3d_examples),
    "mask_dims_moved_to_front": (("index_select(0, positions).movedim(0, first)", "index_select(0, positions)"), check_masks),
    "strides_of_size_zero": (("step *= max(size, 1)", "step *= size"), check_contiguous_strides),
}


@pytest.mark.suite_check
@pytest.mark.parametrize("name", BROKEN)
def test_broken_slicing_is_rejected(name):
    (old, new), check = BROKEN[name]
    assert failing_checks([check], broken(old, new))


@pytest.mark.suite_check
def test_reference_does_not_index_the_tensor():
    import ast

    from torchkata.tensors import strides

    tree = ast.parse(inspect.getsource(strides))
    indexed = {node.value.id for node in ast.walk(tree) if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)}
    assert not indexed & {"x", "view", "merged", "mask"}, indexed  # tensors: their [] is what is being written
    for builtin in ("__getitem__", "narrow(", ".select(", "unsqueeze("):
        assert builtin not in inspect.getsource(strides), builtin
