"""b01-01: matrix multiplication without torch.mm, graded against torch.mm; the blocked version's temporaries
are bounded (every tensor an op creates is seen through a dispatch mode)."""
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from grading import failing_checks

EXERCISE = "b01-01"
TOLERANCES = {torch.float64: (1e-10, 1e-10), torch.float32: (1e-4, 1e-4), torch.bfloat16: (2e-2, 0.5)}
SHAPES = [(1, 1, 1), (3, 5, 4), (7, 1, 6), (1, 9, 1), (16, 33, 8), (40, 40, 40), (2, 300, 3)]


@pytest.fixture(scope="module")
def impl(impl_for):
    return impl_for(EXERCISE)


class LargestTensor(TorchDispatchMode):
    """Bytes of the largest tensor any op creates while the mode is on (views and in-place results excluded),
    and of the largest product (aten.mul) alone."""

    def __init__(self):
        super().__init__()
        self.largest = self.product = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and not t._is_view() and t.untyped_storage().data_ptr() not in inputs:
                self.largest = max(self.largest, t.untyped_storage().nbytes())
                if func is torch.ops.aten.mul.Tensor:
                    self.product = max(self.product, t.untyped_storage().nbytes())
        return out


def largest_tensor(fn, product=False):
    with LargestTensor() as mode:
        fn()
    return mode.product if product else mode.largest


def check_matches_mm(impl):
    for n, k, m in SHAPES:
        for dtype, (rtol, atol) in TOLERANCES.items():
            a, b = torch.randn(n, k).to(dtype), torch.randn(k, m).to(dtype)
            want = torch.mm(a, b)
            for got in (impl.matmul(a, b), impl.matmul_naive(a, b)):
                assert got.dtype == dtype and got.shape == (n, m), (got.dtype, got.shape)
                torch.testing.assert_close(got, want, rtol=rtol, atol=atol)


def check_integers_exact(impl):
    a, b = torch.randint(-50, 50, (6, 7)), torch.randint(-50, 50, (7, 5))
    assert torch.equal(impl.matmul(a, b), torch.mm(a, b))
    assert torch.equal(impl.matmul_naive(a, b), torch.mm(a, b))


def check_block_sizes(impl):
    # budgets below one row of products, between, and above the whole product: the same result
    a, b = torch.randn(13, 21, dtype=torch.float64), torch.randn(21, 10, dtype=torch.float64)
    want = torch.mm(a, b)
    for block_bytes in (1, 8, 79, 80, 81, 400, 2000, 10**6):
        torch.testing.assert_close(impl.matmul(a, b, block_bytes=block_bytes), want, msg=f"block_bytes={block_bytes}")


def check_blocked_memory_is_bounded(impl):
    a, b = torch.randn(64, 96), torch.randn(96, 48)
    out_bytes = 64 * 48 * 4
    for block_bytes in (2048, 16384, 65536):
        largest = largest_tensor(lambda: impl.matmul(a, b, block_bytes=block_bytes))
        assert largest <= max(block_bytes, out_bytes), (block_bytes, largest)
    # the products use the budget, neither more nor less than half of it: slabs of one row would be slow
    for (n, k, m), block_bytes in [((64, 96, 48), 2048), ((64, 96, 48), 16384), ((8, 96, 1), 64), ((8, 96, 1), 100)]:
        a, b = torch.randn(n, k), torch.randn(k, m)
        product = largest_tensor(lambda: impl.matmul(a, b, block_bytes=block_bytes), product=True)
        assert block_bytes / 2 < product <= block_bytes, (n, k, m, block_bytes, product)
    # a budget below one row of products: one row at a time
    a, b = torch.randn(1, 96), torch.randn(96, 48)
    assert largest_tensor(lambda: impl.matmul(a, b, block_bytes=8)) == 48 * 4
    # the default budget is 16 MiB: of a product that needs 32 MiB, slabs of more than 8 and at most 16 MiB
    a, b = torch.randn(256, 256), torch.randn(256, 128)
    assert 8 << 20 < largest_tensor(lambda: impl.matmul(a, b), product=True) <= 16 << 20
    # and the naive version does blow up: all n * k * m products at once
    assert largest_tensor(lambda: impl.matmul_naive(a[:16], b)) >= 16 * 256 * 128 * 4


def check_non_contiguous(impl):
    a, b = torch.randn(9, 6, dtype=torch.float64).t(), torch.randn(18, 5, dtype=torch.float64)[::2]
    assert not a.is_contiguous() and not b.is_contiguous()
    torch.testing.assert_close(impl.matmul(a, b, block_bytes=64), torch.mm(a, b))
    torch.testing.assert_close(impl.matmul_naive(a, b), torch.mm(a, b))


def check_gradients(impl):
    a = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y: impl.matmul(x, y, block_bytes=40), (a, b))
    assert torch.autograd.gradcheck(impl.matmul_naive, (a, b))


def check_empty(impl):
    for n, k, m in [(0, 3, 4), (3, 0, 4), (3, 4, 0), (0, 0, 0)]:
        a, b = torch.randn(n, k), torch.randn(k, m)
        for got in (impl.matmul(a, b), impl.matmul_naive(a, b)):
            assert got.shape == (n, m) and torch.equal(got, torch.mm(a, b)), (n, k, m, got)


def check_errors(impl):
    for fn in (impl.matmul, impl.matmul_naive):
        for s1, s2 in [((2, 3), (4, 2)), ((2, 5), (3, 2)), ((3,), (3, 2)), ((2, 3, 4), (4, 2)), ((2, 3, 4), (3, 2)),
                       ((2, 3), (3,)), ((2, 3), (3, 2, 4))]:
            with pytest.raises(ValueError) as error:
                fn(torch.randn(s1), torch.randn(s2))
            assert str(s1) in str(error.value) and str(s2) in str(error.value), str(error.value)
        with pytest.raises(TypeError) as error:
            fn(torch.randn(2, 3), torch.randn(3, 2, dtype=torch.float64))
        assert "float32" in str(error.value) and "float64" in str(error.value)
    for block_bytes in (0, -8):
        with pytest.raises(ValueError, match="block_bytes"):
            impl.matmul(torch.randn(2, 3), torch.randn(3, 2), block_bytes=block_bytes)


CHECKS = [check_matches_mm, check_integers_exact, check_block_sizes, check_blocked_memory_is_bounded,
          check_non_contiguous, check_gradients, check_empty, check_errors]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_matmul(impl, check):
    check(impl)


class Broken:
    """A module-like pair of functions: the reference's naive version and a broken blocked one."""

    def __init__(self, matmul):
        from torchkata.tensors.matmul import matmul_naive

        self.matmul, self.matmul_naive = matmul, matmul_naive


def one_slab(a, b, block_bytes=1 << 24):
    return (a[:, :, None] * b[None]).sum(1)  # correct, but not blocked: the whole n * k * m at once


def last_slab_dropped(a, b, block_bytes=1 << 24):
    depth = max(1, block_bytes // (b.shape[1] * a.element_size()))
    out = a.new_zeros(a.shape[0], b.shape[1])
    for j in range(0, a.shape[1] - depth, depth):
        out += (a[:, j:j + depth, None] * b[None, j:j + depth]).sum(1)
    return out


def overwrites_the_tile(a, b, block_bytes=1 << 24):
    depth = max(1, block_bytes // (b.shape[1] * a.element_size()))
    out = a.new_zeros(a.shape[0], b.shape[1])
    for j in range(0, a.shape[1], depth):
        out[:] = (a[:, j:j + depth, None] * b[None, j:j + depth]).sum(1)  # = for +=: only the last slab stays
    return out


@pytest.mark.suite_check
@pytest.mark.parametrize("broken", [one_slab, last_slab_dropped, overwrites_the_tile], ids=lambda f: f.__name__)
def test_broken_matmul_is_rejected(broken):
    assert failing_checks(CHECKS, Broken(broken))


@pytest.mark.suite_check
def test_no_builtin_matmul_in_reference():
    import inspect

    from torchkata.tensors import matmul as module

    source = inspect.getsource(module)
    for name in ("torch.mm", ".mm(", ".matmul(", "@", "bmm", "einsum", "tensordot", "linear", "addmm", "dot(",
                 "inner(", ".mv(", "vecdot", "baddbmm", "chain_matmul", "addmv", "addr("):
        assert name not in source, name
