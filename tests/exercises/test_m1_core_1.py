"""m1-core-1: a Tensor class with stride-based views. Every operation is checked against torch: the same op on a
torch view of the same storage, compared with torch.as_strided(storage, shape, strides, offset) of yours."""
import inspect
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from grading import failing_checks
from strided_inputs import SETTINGS, basic_indices, shapes, shapes_of

EXERCISE = "m1-core-1"


@pytest.fixture(scope="module")
def impl(impl_for):
    return impl_for(EXERCISE)


def same_storage(a, b):
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def assert_matches(ours, want, base_storage):
    """`ours` (a Tensor) shows exactly `want` (a torch tensor): read through torch.as_strided on ours' storage,
    with the same offset and strides (on dims of size > 1), on the base storage exactly when `want` is."""
    assert tuple(ours.shape) == tuple(want.shape), (ours.shape, tuple(want.shape))
    assert torch.equal(torch.as_strided(ours.storage, ours.shape, ours.strides, ours.offset), want)
    assert (ours.storage is base_storage) == same_storage(want, base_storage)
    if want.numel() and ours.storage is base_storage:
        assert ours.offset == want.storage_offset(), (ours.offset, want.storage_offset())
        for size, g, w in zip(want.shape, ours.strides, want.stride()):
            assert size <= 1 or g == w, (ours.strides, want.stride())


@st.composite
def bases(draw):
    """(storage, shape, offset): a contiguous block of `shape` at `offset` inside a larger arange storage."""
    shape = draw(shapes(min_rank=1, max_rank=4, max_size=4))
    offset = draw(st.integers(0, 5))
    numel = 1
    for size in shape:
        numel *= size
    return torch.arange(float(offset + numel + draw(st.integers(0, 3)))), shape, offset


@st.composite
def expand_sizes(draw, shape):
    lead = [draw(st.integers(0, 3)) for _ in range(draw(st.integers(0, 2)))]
    return (*lead, *[draw(st.sampled_from([1, 2, 3, -1] if size == 1 else [size, -1])) for size in shape])


def apply(data, ours, theirs):
    """One random view operation, applied to both; returns (ours, theirs) after it, or None where torch refuses."""
    op = data.draw(st.sampled_from(["index", "transpose", "permute", "expand", "contiguous", "view"]))
    ndim = theirs.dim()
    if op == "index":
        index = data.draw(basic_indices(tuple(theirs.shape)))
        return ours[index], theirs[index]
    if op == "contiguous":
        return ours.contiguous(), theirs.contiguous()
    if op == "expand":
        sizes = data.draw(expand_sizes(tuple(theirs.shape)))
        return ours.expand(*sizes), theirs.expand(*sizes)
    if ndim == 0:
        return ours, theirs
    if op == "transpose":
        a, b = (data.draw(st.integers(-ndim, ndim - 1)) for _ in range(2))
        return ours.transpose(a, b), theirs.transpose(a, b)
    if op == "permute":
        dims = [d - ndim * data.draw(st.booleans()) for d in data.draw(st.permutations(range(ndim)))]
        return ours.permute(*dims), theirs.permute(*dims)
    shape = list(data.draw(shapes_of(theirs.numel())))
    if shape and theirs.numel() and data.draw(st.booleans()):
        shape[data.draw(st.integers(0, len(shape) - 1))] = -1
    try:
        want = theirs.view(shape)
    except RuntimeError:
        with pytest.raises(RuntimeError):
            ours.view(*shape)
        return ours, theirs
    return ours.view(*shape), want


def check_random_chains(impl):
    @settings(**SETTINGS)
    @given(st.data())
    def chain(data):
        storage, shape, offset = data.draw(bases())
        ours = impl.Tensor(storage, shape, None, offset)
        theirs = torch.as_strided(storage, shape, torch.empty(shape).stride(), offset)
        for _ in range(data.draw(st.integers(1, 5))):
            ours, theirs = apply(data, ours, theirs)
            assert_matches(ours, theirs, storage)
    chain()


def check_construction(impl):
    storage = torch.arange(30.0)
    t = impl.Tensor(storage, (2, 3, 4), None, 5)
    assert t.strides == (12, 4, 1) and t.offset == 5 and t.shape == (2, 3, 4) and t.storage is storage
    assert t.ndim == 3 and t.numel() == 24
    assert impl.Tensor(storage, (0, 3)).strides == torch.empty(0, 3).stride()
    view = t.to_torch()
    assert same_storage(view, storage) and torch.equal(view, storage[5:29].reshape(2, 3, 4))
    data = torch.randn(3, 4).t()
    copy = impl.Tensor.from_torch(data)
    assert torch.equal(copy.to_torch(), data) and copy.strides == (3, 1) and not same_storage(copy.storage, data)
    assert impl.Tensor(torch.arange(1.0), ()).to_torch().shape == ()


def check_construction_errors(impl):
    storage = torch.arange(10.0)
    cases = [((torch.zeros(2, 5), (10,)), ["(2, 5)"]), ((storage, (2, 3), (3,)), ["strides"]),
             ((storage, (3, 4)), ["11", "10"]), ((storage, (2, 3), None, 5), ["10", "5"]),
             ((storage, (2,), None, -1), ["-1"]), ((storage, (2, 2), (-1, 1), 3), ["-1"])]
    for args, named in cases:
        with pytest.raises(ValueError) as error:
            impl.Tensor(*args)
        for word in named:
            assert word in str(error.value), (args[1:], word, str(error.value))
    impl.Tensor(storage, (2, 5), None, 0)  # exactly fits
    impl.Tensor(storage, (0, 7), None, 10)  # nothing to reach


def check_transpose_and_permute(impl):
    storage = torch.arange(60.0)
    t, x = impl.Tensor(storage, (3, 4, 5)), storage.view(3, 4, 5)
    for a in range(-3, 3):
        for b in range(-3, 3):
            assert_matches(t.transpose(a, b), x.transpose(a, b), storage)
    for dims in [(2, 0, 1), (-1, -3, -2), (0, 1, 2), (1, 0, -1)]:
        assert_matches(t.permute(*dims), x.permute(*dims), storage)
    with pytest.raises(ValueError):
        t.permute(0, 0, 1)
    with pytest.raises(ValueError):
        t.permute(0, 1)
    for dims in ((0, 1, 3), (-4, 0, 1)):
        with pytest.raises(IndexError) as error:
            t.permute(*dims)
        assert str(dims[0] if dims[0] < -3 else dims[2]) in str(error.value)
    with pytest.raises(IndexError):
        t.transpose(0, 3)


def check_expand(impl):
    storage = torch.arange(6.0)
    t, x = impl.Tensor(storage, (3, 1, 2)), storage.view(3, 1, 2)
    for sizes in [(3, 4, 2), (2, 3, 4, 2), (-1, 5, -1), (3, 1, 2), (0, 3, 0, 2), (3, 0, 2)]:
        got = t.expand(*sizes)
        assert_matches(got, x.expand(*sizes), storage)
        assert all(stride == 0 for size, old, stride in zip(got.shape[-3:], t.shape, got.strides[-3:]) if old == 1 and size != 1)
        assert all(stride == 0 for stride in got.strides[:len(sizes) - 3])
    for sizes, named in [((3, 4, 3), ["3", "2"]), ((4, 1, 2), ["4", "3"]), ((1, 2), ["(1, 2)"]), ((-1, 3, 1, 2), ["-1"]),
                         ((3, -2, 2), ["-2"])]:
        with pytest.raises(ValueError) as error:
            t.expand(*sizes)
        for word in named:
            assert word in str(error.value), (sizes, str(error.value))


def check_contiguous(impl):
    storage = torch.arange(24.0)
    t = impl.Tensor(storage, (2, 3, 4))
    assert t.is_contiguous() and t.contiguous() is t
    for op in (lambda u: u.transpose(0, 2), lambda u: u[:, ::2], lambda u: u[:, 1:2].expand(2, 5, 4), lambda u: u[1:, 1]):
        view, want = op(t), op(storage.view(2, 3, 4))
        assert view.is_contiguous() == want.is_contiguous()
        copy = view.contiguous()
        assert copy.is_contiguous() and (copy is view if want.is_contiguous() else copy.offset == 0)
        assert copy.strides == want.contiguous().stride() or want.is_contiguous()
        assert torch.equal(torch.as_strided(copy.storage, copy.shape, copy.strides, copy.offset), want)
        assert (copy.storage is storage) == want.is_contiguous()
    for shape, strides, contiguous in [((3, 1, 4), (4, 99, 1), True), ((1, 5), (7, 1), True), ((0, 3), (1, 7), True),
                                       ((2, 3), (1, 2), False), ((4,), (2,), False), ((2, 2), (2, 0), False), ((), (), True)]:
        assert impl.Tensor(torch.arange(40.0), shape, strides).is_contiguous() == contiguous, (shape, strides)


def check_view(impl):
    storage = torch.arange(24.0)
    t = impl.Tensor(storage, (4, 6))
    assert_matches(t.view(2, -1, 3), storage.view(2, 4, 3), storage)
    tt = t.transpose(0, 1)
    assert_matches(tt.view(3, 2, 4), storage.view(4, 6).t().view(3, 2, 4), storage)
    with pytest.raises(RuntimeError):
        tt.view(24)
    assert_matches(tt.contiguous().view(24), storage.view(4, 6).t().reshape(24), storage)


CHECKS = [check_construction, check_construction_errors, check_transpose_and_permute, check_expand, check_contiguous,
          check_view, check_random_chains]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_strided_tensor(impl, check):
    check(impl)


# deliberately broken Tensor classes: the reference with one typical mistake written into it


def broken(old, new):
    from torchkata.tensors import strided_tensor

    source = inspect.getsource(strided_tensor)
    assert old in source, old
    namespace = {"__name__": "broken_strided_tensor"}
    exec(compile(source.replace(old, new), "broken_strided_tensor", "exec"), namespace)
    return SimpleNamespace(**namespace)


BROKEN = {
    "permute_keeps_strides": (("[self.strides[d] for d in order]", "self.strides"), check_transpose_and_permute),
    "expand_keeps_stride": (("strides.append(old_stride if size == old_size else 0)", "strides.append(old_stride)"),
                            check_expand),
    "contiguous_never_copies": (("        if self.is_contiguous():\n            return self", "        return self"),
                                check_contiguous),
    "size_one_strides_matter": (("if size != 1 and stride != expected:", "if stride != expected:"), check_contiguous),
    "view_ignores_strides": (("strides = view_strides(self.shape, self.strides, new_shape)",
                              "strides = contiguous_strides(new_shape)"), check_view),
    "index_forgets_offset": (("return Tensor(self.storage, shape, strides, offset)",
                              "return Tensor(self.storage, shape, strides, offset - self.offset)"), check_random_chains),
}


@pytest.mark.suite_check
@pytest.mark.parametrize("name", BROKEN)
def test_broken_tensor_is_rejected(name):
    (old, new), check = BROKEN[name]
    assert failing_checks([check], broken(old, new))


@pytest.mark.suite_check
def test_reference_views_without_torch_view_ops():
    from torchkata.tensors import strided_tensor

    source = inspect.getsource(strided_tensor).replace("torch.as_strided(self.storage", "")  # to_torch's, the one use
    for builtin in ("as_strided", ".reshape(", ".view(", "movedim", "torch.permute", "torch.transpose", ".expand(",
                    ".contiguous(", ".t()"):
        assert builtin not in source, builtin
