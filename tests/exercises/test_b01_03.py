"""b01-03: a custom broadcasting example (along, outer, pairwise squared distances, per-channel normalize),
graded against torch.outer, torch.cdist and torch's own broadcasting."""
import types

import pytest
import torch

from grading import failing_checks

EXERCISE = "b01-03"
FLOATS = [(torch.float64, 1e-12), (torch.float32, 1e-5), (torch.float16, 1e-2), (torch.bfloat16, 2e-2)]


@pytest.fixture(scope="module")
def impl(impl_for):
    return impl_for(EXERCISE)


def stepped(t):
    """A non-contiguous copy of `t` with a storage offset: every other element of a bigger tensor, transposed back."""
    big = torch.zeros(tuple(2 * s + 1 for s in reversed(t.shape)), dtype=t.dtype)
    view = big.permute(*reversed(range(t.dim())))[tuple(slice(1, 1 + 2 * s, 2) for s in t.shape)]
    view.copy_(t)
    return view


def check_along_is_a_stride0_view(impl):
    like = torch.randn(2, 3, 4, 5)
    for dim in range(-4, 4):
        v = torch.randn(like.shape[dim])
        for vv in (v, stepped(v)):
            got = impl.along(vv, like, dim)
            shape = [1] * 4
            shape[dim] = -1
            torch.testing.assert_close(got, vv.reshape(shape).expand(like.shape), rtol=0, atol=0)
            assert got.data_ptr() == vv.data_ptr(), "along copied the data"
            assert [s for d, s in enumerate(got.stride()) if d != dim % 4] == [0, 0, 0]
            assert got.stride(dim) == vv.stride(0)


def check_along_errors(impl):
    like = torch.randn(2, 3, 4)
    for dim in (3, -4, 7):
        with pytest.raises(IndexError) as error:
            impl.along(torch.randn(3), like, dim)
        assert str(dim) in str(error.value)
    for v, dim in [(torch.randn(4), 1), (torch.randn(3, 1), 1), (torch.randn(2), -1), (torch.tensor(3.0), 1)]:
        with pytest.raises(ValueError) as error:
            impl.along(v, like, dim)
        assert str(tuple(v.shape)) in str(error.value) and str(tuple(like.shape)) in str(error.value)


def check_large_sizes(impl):
    # sizes above 256 are distinct int objects in CPython: comparing them with `is` instead of `==` fails here
    like, v = torch.randn(2, 300), torch.randn(300)
    torch.testing.assert_close(impl.along(v, like, -1), v.expand(2, 300))
    x, y = torch.randn(2, 300, dtype=torch.float64), torch.randn(3, 300, dtype=torch.float64)
    torch.testing.assert_close(impl.pairwise_sq_distances(x, y), torch.cdist(x, y) ** 2)


def check_outer_matches_torch(impl):
    for n, m in [(3, 4), (1, 5), (7, 1), (0, 3), (3, 0), (64, 33)]:
        for dtype, rtol in FLOATS:
            a, b = torch.randn(n).to(dtype), torch.randn(m).to(dtype)
            torch.testing.assert_close(impl.outer(a, b), torch.outer(a, b), rtol=rtol, atol=rtol)
            torch.testing.assert_close(impl.outer(stepped(a), stepped(b)), torch.outer(a, b), rtol=rtol, atol=rtol)
    a, b = torch.arange(4), torch.arange(3) - 1
    assert torch.equal(impl.outer(a, b), torch.outer(a, b))


def check_outer_errors(impl):
    for a, b in [(torch.randn(2, 3), torch.randn(3)), (torch.randn(3), torch.randn(())), (torch.randn(()),
                 torch.randn(3)), (torch.randn(3), torch.randn(2, 2)), (torch.randn(1, 1), torch.randn(1, 1))]:
        with pytest.raises(ValueError) as error:
            impl.outer(a, b)
        assert str(tuple(a.shape)) in str(error.value) and str(tuple(b.shape)) in str(error.value)


def check_pairwise_matches_cdist(impl):
    for xs, ys in [((5, 3), (4, 3)), ((1, 2), (6, 2)), ((2, 5, 4), (2, 3, 4)), ((2, 1, 5, 3), (3, 4, 3)),
                   ((4, 1), (4, 1)), ((0, 3), (2, 3)), ((3, 7), (0, 7))]:
        x, y = torch.randn(xs, dtype=torch.float64), torch.randn(ys, dtype=torch.float64)
        want = torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist") ** 2
        got = impl.pairwise_sq_distances(x, y)
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(impl.pairwise_sq_distances(stepped(x), stepped(y)), want, rtol=1e-10, atol=1e-12)
    for dtype, rtol in FLOATS[1:]:
        x, y = torch.randn(6, 3), torch.randn(5, 3)
        want = torch.cdist(x.double(), y.double()) ** 2
        got = impl.pairwise_sq_distances(x.to(dtype), y.to(dtype))
        assert got.dtype == dtype
        torch.testing.assert_close(got.double(), want, rtol=rtol, atol=rtol)


def check_pairwise_by_loop(impl):
    # a case small enough to spell out: point i of x against point j of y, by hand
    x = torch.tensor([[0.0, 0.0], [1.0, 2.0], [3.0, -1.0]], dtype=torch.float64)
    y = torch.tensor([[1.0, 1.0], [-2.0, 0.5]], dtype=torch.float64)
    want = torch.tensor([[float(((x[i] - y[j]) ** 2).sum()) for j in range(2)] for i in range(3)], dtype=torch.float64)
    torch.testing.assert_close(impl.pairwise_sq_distances(x, y), want, rtol=0, atol=1e-15)
    assert impl.pairwise_sq_distances(y, x).shape == (2, 3)


def check_pairwise_errors(impl):
    # a D of 1 would broadcast against any other D without a word: the check must come first
    for xs, ys in [((5, 3), (4, 2)), ((5, 1), (4, 3)), ((5, 3), (4, 1)), ((3,), (4, 3)), ((5, 3), (3,)),
                   ((2, 5, 3), (3, 4, 3))]:
        x, y = torch.randn(xs), torch.randn(ys)
        with pytest.raises((ValueError, RuntimeError)) as error:
            impl.pairwise_sq_distances(x, y)
        assert str(xs) in str(error.value) and str(ys) in str(error.value), str(error.value)


def check_pairwise_gradients(impl):
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(impl.pairwise_sq_distances, (x, y))


def check_normalize_matches_torch(impl):
    for shape in [(2, 3, 4, 5), (3,), (4, 6), (1, 2, 1)]:
        for dim in range(-len(shape), len(shape)):
            for dtype, rtol in FLOATS:
                x = torch.randn(shape).to(dtype)
                mean, std = torch.randn(shape[dim]).to(dtype), (torch.rand(shape[dim]) + 0.5).to(dtype)
                view = [-1 if d == dim % len(shape) else 1 for d in range(len(shape))]
                want = (x - mean.view(view)) / std.view(view)
                torch.testing.assert_close(impl.normalize(x, mean, std, dim=dim), want, rtol=rtol, atol=rtol)
                torch.testing.assert_close(impl.normalize(stepped(x), stepped(mean), stepped(std), dim=dim), want,
                                           rtol=rtol, atol=rtol)


def check_normalize_default_dim_is_channels(impl):
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)  # NCHW: C = 3 is dim 1
    mean, std = torch.randn(3, dtype=torch.float64), torch.rand(3, dtype=torch.float64) + 0.5
    torch.testing.assert_close(impl.normalize(x, mean, std), (x - mean[:, None, None]) / std[:, None, None])


def check_normalize_errors(impl):
    x = torch.randn(2, 3, 4)
    with pytest.raises(ValueError):
        impl.normalize(x, torch.randn(4), torch.ones(3))
    with pytest.raises(ValueError):
        impl.normalize(x, torch.randn(3), torch.ones(4))
    with pytest.raises(IndexError):
        impl.normalize(x, torch.randn(3), torch.ones(3), dim=3)


CHECKS = [check_along_is_a_stride0_view, check_along_errors, check_large_sizes, check_outer_matches_torch,
          check_outer_errors, check_pairwise_matches_cdist, check_pairwise_by_loop, check_pairwise_errors,
          check_pairwise_gradients, check_normalize_matches_torch, check_normalize_default_dim_is_channels, check_normalize_errors]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_broadcast_examples(impl, check):
    check(impl)


# --- broken versions the checks must reject -------------------------------------------------------------------

def reference():
    from torchkata.tensors import broadcast_examples

    return broadcast_examples


def copying_along(v, like, dim):
    return reference().along(v, like, dim).contiguous()


def along_last_dim(v, like, dim):
    """Broadcasts v along the last dim whatever dim says: right only for the last dim (or a square-ish case)."""
    return reference().along(v, like, -1) if v.shape[0] == like.shape[-1] else reference().along(v, like, dim)


def pairwise_without_batch(x, y):
    """Flattens the batch dims away: right for 2-D points only."""
    return ((x[..., :, None, :] - y[None, :, :]) ** 2).sum(-1) if y.dim() == 2 else torch.cdist(x, y) ** 2 * 0


def pairwise_distances_not_squared(x, y):
    return reference().pairwise_sq_distances(x, y).sqrt()


def outer_sum(a, b):
    """Broadcasts right, adds instead of multiplying."""
    return a.view(-1, 1) + b


def normalize_swapped(x, mean, std, dim=1):
    return (x - reference().along(std, x, dim)) / reference().along(mean, x, dim)


def broken(**parts):
    ref = reference()
    return types.SimpleNamespace(**{name: getattr(ref, name) for name in
                                    ("along", "outer", "pairwise_sq_distances", "normalize")} | parts)


BROKEN = {
    "copying_along": dict(along=copying_along),
    "along_last_dim": dict(along=along_last_dim),
    "pairwise_without_batch": dict(pairwise_sq_distances=pairwise_without_batch),
    "pairwise_not_squared": dict(pairwise_sq_distances=pairwise_distances_not_squared),
    "outer_sum": dict(outer=outer_sum),
    "normalize_swapped": dict(normalize=normalize_swapped),
}


@pytest.mark.suite_check
@pytest.mark.parametrize("name", BROKEN)
def test_broken_example_is_rejected(name):
    assert failing_checks(CHECKS, broken(**BROKEN[name]))


@pytest.mark.suite_check
def test_reference_leaves_no_broadcasting_implicit():
    """Every broadcast in the reference goes through a03's expand: no indexing with None, no unsqueeze-and-hope
    arithmetic, no built-in outer product or distance."""
    import inspect

    from torchkata.tensors import broadcast_examples as module

    source = inspect.getsource(module)
    for builtin in ("None]", "None,", "torch.outer", "cdist", ".expand(", "torch.broadcast", "einsum", "@"):
        assert builtin not in source, builtin
