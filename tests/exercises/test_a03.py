"""a03: broadcasting by hand (broadcast_shapes, a stride-0 expand, broadcast_tensors), graded against torch."""
import types

import pytest
import torch
from hypothesis import Phase, given, settings, strategies as st

from grading import failing_checks

EXERCISE = "a03"
# no shrinking: a failing example is reported as found, so a wrong solution is rejected quickly
PROPERTY = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    phases=(Phase.explicit, Phase.generate))


@pytest.fixture(scope="module")
def impl(impl_for):
    return impl_for(EXERCISE)


@st.composite
def shape_groups(draw, max_shapes=4):
    """1-4 shapes of rank 0-5 cut from one base shape (some dims set to 1, leading dims dropped), so most groups
    broadcast; with a small chance one size is changed, so some do not."""
    base = draw(st.lists(st.integers(0, 4), max_size=5))
    shapes = []
    for _ in range(draw(st.integers(1, max_shapes))):
        rank = draw(st.integers(0, len(base)))
        shape = [1 if draw(st.booleans()) else size for size in base[len(base) - rank:]]
        if shape and draw(st.integers(0, 4)) == 0:
            shape[draw(st.integers(0, len(shape) - 1))] = draw(st.integers(0, 5))
        shapes.append(tuple(shape))
    return shapes


def torch_shape(*shapes):
    try:
        return torch.broadcast_shapes(*shapes)
    except RuntimeError:
        return None


def strided_input(shape, dtype=torch.float64):
    """A non-contiguous tensor of `shape` with a storage offset: a slice of a transposed, bigger tensor."""
    big = torch.randn(tuple(2 * s + 1 for s in reversed(shape)), dtype=torch.float64).to(dtype)
    view = big.permute(*reversed(range(len(shape)))) if shape else big
    return view[tuple(slice(1, 1 + 2 * s, 2) for s in shape)]


def assert_broadcast_view(expanded, x, shape):
    """Values, shape and strides of torch's expand; the same storage; stride 0 on every broadcast dim."""
    want = x.expand(shape)
    assert expanded.shape == want.shape
    torch.testing.assert_close(expanded, want, rtol=0, atol=0)
    assert expanded.untyped_storage().data_ptr() == x.untyped_storage().data_ptr(), "expand copied the data"
    assert expanded.data_ptr() == x.data_ptr() or expanded.numel() == 0  # an empty tensor's data_ptr is 0
    new = len(shape) - x.dim()
    for d, size in enumerate(shape):
        if size > 1:
            assert expanded.stride(d) == want.stride(d), (tuple(x.shape), shape, expanded.stride())
            if d < new or x.shape[d - new] == 1:
                assert expanded.stride(d) == 0


def check_shapes_match_torch(impl):
    @PROPERTY
    @given(shape_groups())
    def prop(shapes):
        want = torch_shape(*shapes)
        if want is None:
            with pytest.raises(RuntimeError):
                impl.broadcast_shapes(*shapes)
        else:
            got = impl.broadcast_shapes(*shapes)
            assert isinstance(got, torch.Size) and got == want, (shapes, got, want)

    prop()


def check_known_shapes(impl):
    cases = [[(2, 1, 3), (4, 1)], [(5,), ()], [(0, 1), (1, 4)], [(1, 0), (3, 1)], [(3,), 3], [(2, 1), 3],
             [(1, 1, 1), (2,), (3, 1)], [(6, 1, 5), (1, 7, 1), (1, 1)]]
    for shapes in cases:
        assert impl.broadcast_shapes(*shapes) == torch.broadcast_shapes(*shapes), shapes
    assert impl.broadcast_shapes() == torch.Size([])
    assert impl.broadcast_shapes(torch.Size([2, 1])) == (2, 1)


def check_error_names_both_shapes(impl):
    for a, b in [((2, 3), (4,)), ((3,), (2, 1, 5)), ((0,), (2,)), ((2, 1, 4), (1, 3, 5)), ((7, 2), (1, 3))]:
        with pytest.raises(RuntimeError) as error:
            impl.broadcast_shapes(a, b)
        assert str(a) in str(error.value) and str(b) in str(error.value), str(error.value)
    # a third shape clashes with the size that the first one set, not with the 1 of the second
    with pytest.raises(RuntimeError) as error:
        impl.broadcast_shapes((4, 3), (1, 1), (5, 3))
    assert "(4, 3)" in str(error.value) and "(5, 3)" in str(error.value), str(error.value)

    @PROPERTY
    @given(shape_groups(max_shapes=2))
    def prop(shapes):
        if len(shapes) == 2 and torch_shape(*shapes) is None:
            with pytest.raises(RuntimeError) as error:
                impl.broadcast_shapes(*shapes)
            assert all(str(s) in str(error.value) for s in shapes), (shapes, str(error.value))

    prop()


def check_large_sizes(impl):
    # sizes above 256 are distinct int objects in CPython: comparing them with `is` instead of `==` fails here
    n = int("300")
    assert impl.broadcast_shapes((300, 1), (n, 5)) == (300, 5)
    x = torch.randn(300, 1)
    assert_broadcast_view(impl.expand(x, (n, 2)), x, (300, 2))


def check_negative_size(impl):
    with pytest.raises(ValueError, match="negative"):
        impl.broadcast_shapes((2, -1), (2, 1))
    with pytest.raises(ValueError, match="negative"):
        impl.expand(torch.zeros(1), (-1,))


def check_expand_is_a_view(impl):
    for shape, target in [((3, 1), (3, 4)), ((1,), (2, 3, 5)), ((), (2, 3)), ((2, 1, 3), (4, 2, 5, 3)),
                          ((1, 1), (1, 6)), ((2, 3), (2, 3)), ((1, 2), (0, 2))]:
        for x in (torch.randn(shape), strided_input(shape)):
            assert_broadcast_view(impl.expand(x, target), x, target)


def check_expand_keeps_storage_offset(impl):
    base = torch.arange(24.0).reshape(4, 6)
    x = base[1:3, 2:3]  # offset 8, strides (6, 1)
    y = impl.expand(x, (3, 2, 4))
    assert y.storage_offset() == x.storage_offset() and y.untyped_storage().data_ptr() == base.data_ptr()
    assert_broadcast_view(y, x, (3, 2, 4))


def check_expand_errors(impl):
    for shape, target in [((2, 3), (3,)), ((1, 3), (3,)), ((2, 3), (2, 4)), ((3, 1), (2, 1)), ((2,), (2, 3))]:
        with pytest.raises(RuntimeError) as error:
            impl.expand(torch.zeros(shape), target)
        assert str(shape) in str(error.value) and str(target) in str(error.value), str(error.value)


def check_broadcast_tensors_match_torch(impl):
    @PROPERTY
    @given(shape_groups(max_shapes=3), st.booleans())
    def prop(shapes, strided):
        if torch_shape(*shapes) is None:
            with pytest.raises(RuntimeError):
                impl.broadcast_tensors(*(torch.zeros(s) for s in shapes))
            return
        inputs = [strided_input(s) if strided else torch.randn(s, dtype=torch.float64) for s in shapes]
        got = impl.broadcast_tensors(*inputs)
        want = torch.broadcast_tensors(*inputs)
        assert isinstance(got, tuple) and len(got) == len(want)
        for g, x, w in zip(got, inputs, want):
            assert_broadcast_view(g, x, w.shape)

    prop()


def check_dtypes_are_kept(impl):
    inputs = [torch.arange(3, dtype=torch.int64), torch.tensor([[True], [False]]),
              torch.randn(2, 1, dtype=torch.float16), torch.randn(1, 3, dtype=torch.bfloat16)]
    for got, x, want in zip(impl.broadcast_tensors(*inputs), inputs, torch.broadcast_tensors(*inputs)):
        assert got.dtype == x.dtype
        assert_broadcast_view(got, x, want.shape)


def check_gradients_flow_back(impl):
    # the view is differentiable: each element's gradient counts how often the broadcast reads it
    x = torch.randn(3, 1, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: impl.expand(t, (2, 3, 4)) * 1.0, (x,))
    a, b = torch.randn(3, 1, dtype=torch.float64, requires_grad=True), torch.randn(4, dtype=torch.float64)
    ea, eb = impl.broadcast_tensors(a, b)
    (ea * eb).sum().backward()
    torch.testing.assert_close(a.grad, b.sum().expand(3, 1))


CHECKS = [check_shapes_match_torch, check_known_shapes, check_large_sizes, check_error_names_both_shapes,
          check_negative_size, check_expand_is_a_view, check_expand_keeps_storage_offset, check_expand_errors,
          check_broadcast_tensors_match_torch, check_dtypes_are_kept, check_gradients_flow_back]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_broadcasting(impl, check):
    check(impl)


# --- broken versions the checks must reject -------------------------------------------------------------------

def left_aligned_shapes(*shapes):
    """Aligns shapes on their first dim instead of their last."""
    shapes = [(s,) if isinstance(s, int) else tuple(s) for s in shapes]
    ndim = max((len(s) for s in shapes), default=0)
    return torch.broadcast_shapes(*(tuple(s) + (1,) * (ndim - len(s)) for s in shapes))


def max_of_sizes(*shapes):
    """Takes the largest size of each dim and never raises."""
    shapes = [(s,) if isinstance(s, int) else tuple(s) for s in shapes]
    ndim = max((len(s) for s in shapes), default=0)
    padded = [(1,) * (ndim - len(s)) + s for s in shapes]
    return torch.Size(max(sizes) for sizes in zip(*padded)) if padded else torch.Size([])


def copying_expand(x, shape):
    """Right values, but a fresh copy of the data."""
    return x.expand(tuple(shape)).clone()


def contiguous_strides_expand(x, shape):
    """Ignores the input's own strides and offset: right only for contiguous, offset-0 input."""
    shape = tuple(shape)
    new = len(shape) - x.dim()
    strides, step = [], 1
    for d in reversed(range(len(shape))):
        src = d - new
        strides.insert(0, 0 if src < 0 or x.shape[src] != shape[d] else step)
        step *= x.shape[src] if src >= 0 else 1
    return x.as_strided(shape, strides)


def vague_error_shapes(*shapes):
    """torch's own broadcast_shapes: its error names the clashing size but not both shapes."""
    return torch.broadcast_shapes(*shapes)


def broken(**parts):
    """torch's own functions, but for the broken `parts`."""
    module = types.SimpleNamespace(**{"broadcast_shapes": torch.broadcast_shapes,
                                      "expand": lambda x, shape: x.expand(tuple(shape)), **parts})
    if "broadcast_tensors" not in parts:
        module.broadcast_tensors = lambda *ts: tuple(
            module.expand(t, module.broadcast_shapes(*(u.shape for u in ts))) for t in ts)
    return module


BROKEN = {
    "left_aligned": broken(broadcast_shapes=left_aligned_shapes),
    "max_of_sizes": broken(broadcast_shapes=max_of_sizes),
    "copying_expand": broken(expand=copying_expand),
    "contiguous_strides": broken(expand=contiguous_strides_expand),
    "vague_error": broken(broadcast_shapes=vague_error_shapes),
    "materialised_tensors": broken(broadcast_tensors=lambda *ts: tuple(t.contiguous() for t in
                                                                       torch.broadcast_tensors(*ts))),
}


@pytest.mark.suite_check
@pytest.mark.parametrize("name", BROKEN)
def test_broken_broadcasting_is_rejected(name):
    assert failing_checks(CHECKS, BROKEN[name])


@pytest.mark.suite_check
def test_reference_uses_no_builtin_broadcasting():
    import inspect

    from torchkata.tensors import broadcasting as module

    source = inspect.getsource(module)
    for builtin in ("torch.broadcast_shapes", "torch.broadcast_tensors", "torch.broadcast_to", ".expand(",
                    ".expand_as("):
        assert builtin not in source, builtin
