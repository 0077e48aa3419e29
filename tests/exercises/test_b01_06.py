"""b01-06: cosine similarity, graded against F.cosine_similarity (values, eps, zero vectors, broadcasting, grads)."""
import pytest
import torch
import torch.nn.functional as F

from grading import failing_checks

EXERCISE = "b01-06"
# dtype -> (rtol, atol) against torch's result in float64
TOLERANCES = {torch.float64: (1e-10, 1e-12), torch.float32: (1e-5, 1e-6), torch.float16: (1e-2, 3e-3),
              torch.bfloat16: (2e-2, 2e-2)}


@pytest.fixture(scope="module")
def cosine_similarity(impl_for):
    return impl_for(EXERCISE).cosine_similarity


def check_matches_torch(cosine_similarity):
    for shape in [(7,), (3, 5), (2, 3, 4), (1, 1), (4, 300)]:
        for dim in range(-len(shape), len(shape)):
            for dtype, (rtol, atol) in TOLERANCES.items():
                a, b = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
                b[..., :1] += a[..., :1]  # some correlation, so results are not all near 0
                got = cosine_similarity(a.to(dtype), b.to(dtype), dim=dim)
                assert got.dtype == dtype, (dtype, got.dtype)
                want = F.cosine_similarity(a.to(dtype).double(), b.to(dtype).double(), dim=dim)
                torch.testing.assert_close(got.double(), want, rtol=rtol, atol=atol)


def check_parallel_and_opposite(cosine_similarity):
    x = torch.randn(6, 10, dtype=torch.float64)
    torch.testing.assert_close(cosine_similarity(x, 3 * x), torch.ones(6, dtype=torch.float64))
    torch.testing.assert_close(cosine_similarity(x, -0.5 * x), -torch.ones(6, dtype=torch.float64))
    e = torch.eye(4)
    torch.testing.assert_close(cosine_similarity(e[:, None], e[None], dim=-1), e)  # orthogonal axes: 0


def check_eps_semantics(cosine_similarity):
    # each norm is clamped on its own: max(||x1||, eps) * max(||x2||, eps), not max(||x1|| * ||x2||, eps)
    u = torch.tensor([[0.6, 0.8, 0.0]], dtype=torch.float64)
    v = torch.tensor([[0.0, 0.6, 0.8]], dtype=torch.float64)
    for s1, s2 in [(1e-10, 1.0), (1e-6, 1e-5), (1e-10, 1e3), (3e-9, 4e-9), (0.0, 1e-10), (1.0, 1.0)]:
        for eps in (1e-8, 1e-3, 0.5):
            got = cosine_similarity(s1 * u, s2 * v, eps=eps)
            want = F.cosine_similarity(s1 * u, s2 * v, eps=eps)
            torch.testing.assert_close(got, want, rtol=1e-10, atol=0, msg=f"{s1}, {s2}, eps={eps}")
    # the default eps is 1e-8: two vectors of norm 1e-9 have similarity 1e-18 / 1e-16 = 0.01
    torch.testing.assert_close(cosine_similarity(u * 1e-9, u * 1e-9), torch.tensor([0.01], dtype=torch.float64))


def check_zero_vectors(cosine_similarity):
    zero, x = torch.zeros(2, 5), torch.randn(2, 5)
    for a, b in [(zero, x), (x, zero), (zero, zero)]:
        assert torch.equal(cosine_similarity(a, b), torch.zeros(2))
    assert torch.isnan(cosine_similarity(zero, x, eps=0.0)).all()  # eps=0: 0 / 0, as in torch
    assert torch.equal(cosine_similarity(zero.bfloat16(), x.bfloat16()), torch.zeros(2, dtype=torch.bfloat16))


def check_broadcasting(cosine_similarity):
    cases = [((3, 1, 5), (4, 5), -1), ((3, 1), (3, 5), 1), ((5,), (2, 5), -1), ((5,), (2, 5), 1),
             ((2, 1, 4), (1, 3, 4), 0), ((1, 4), (3, 1), 0), ((), (), 0), ((), (), -1), ((), (3,), 0)]
    for s1, s2, dim in cases:
        a, b = torch.randn(s1, dtype=torch.float64), torch.randn(s2, dtype=torch.float64)
        want = F.cosine_similarity(a, b, dim=dim)
        got = cosine_similarity(a, b, dim=dim)
        assert got.shape == want.shape, (s1, s2, dim, got.shape, want.shape)
        torch.testing.assert_close(got, want, msg=f"{s1} with {s2}, dim {dim}")


def check_dtype_promotion(cosine_similarity):
    a, b = torch.randn(3, 4), torch.randn(3, 4, dtype=torch.float64)
    for x1, x2 in [(a, b), (b, a), (torch.arange(12).reshape(3, 4), a), (a, torch.arange(4))]:
        got, want = cosine_similarity(x1, x2), F.cosine_similarity(x1, x2)
        assert got.dtype == want.dtype, (x1.dtype, x2.dtype, got.dtype)
        torch.testing.assert_close(got, want)


def check_non_contiguous(cosine_similarity):
    a, b = torch.randn(6, 8, dtype=torch.float64).t(), torch.randn(24, 6, dtype=torch.float64)[::3]
    assert not a.is_contiguous() and not b.is_contiguous()
    for dim in (0, 1):
        torch.testing.assert_close(cosine_similarity(a, b, dim=dim), F.cosine_similarity(a, b, dim=dim))


def check_magnitudes(cosine_similarity):
    a, b = torch.randn(4, 16), torch.randn(4, 16)
    want = F.cosine_similarity(a.double(), b.double())
    for unit in (1e18, 1e-3, 1.0):  # float32: squared norms of 1e18-sized vectors are still finite
        torch.testing.assert_close(cosine_similarity(a * unit, b * unit), want.float(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(cosine_similarity(a.double() * 1e150, b.double() * 1e150), want)
    # very different sizes: the product of the norms is not formed before dividing
    torch.testing.assert_close(cosine_similarity(a.double() * 1e-150, b.double() * 1e-150, eps=1e-200), want)


def check_gradients(cosine_similarity):
    a = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s, t: cosine_similarity(s, t, dim=1), (a, b))
    assert torch.autograd.gradcheck(lambda s, t: cosine_similarity(s, t, dim=0), (a, b))
    row = torch.randn(1, 5, dtype=torch.float64, requires_grad=True)  # broadcast: its gradient sums over rows
    zero = torch.zeros(2, 5, dtype=torch.float64, requires_grad=True)  # torch: x2 / (eps * ||x2||), and 0 for x2
    for x1, x2 in [(a, b), (row, b), (zero, b[:2])]:
        w = torch.randn(max(x1.shape[0], x2.shape[0]), dtype=torch.float64)
        ours = torch.autograd.grad((cosine_similarity(x1, x2) * w).sum(), (x1, x2))
        want = torch.autograd.grad((F.cosine_similarity(x1, x2) * w).sum(), (x1, x2))
        for g, h in zip(ours, want):
            assert g.shape == h.shape
            torch.testing.assert_close(g, h, rtol=1e-7, atol=1e-6)


def check_empty(cosine_similarity):
    for s1, s2, dim in [((0, 4), (0, 4), 1), ((3, 0), (3, 0), 1), ((0, 4), (1, 4), -1), ((2, 0, 3), (2, 0, 3), 1)]:
        a, b = torch.empty(s1), torch.empty(s2)
        got, want = cosine_similarity(a, b, dim=dim), F.cosine_similarity(a, b, dim=dim)
        assert got.shape == want.shape and torch.equal(got, want), (s1, s2, dim, got, want)


def check_default_dim(cosine_similarity):
    a, b = torch.randn(2, 3, 4, dtype=torch.float64), torch.randn(2, 3, 4, dtype=torch.float64)
    torch.testing.assert_close(cosine_similarity(a, b), F.cosine_similarity(a, b))  # dim=1, as torch's


def check_errors(cosine_similarity):
    with pytest.raises(TypeError, match="floating"):
        cosine_similarity(torch.arange(4), torch.arange(4), dim=0)
    for s1, s2 in [((3, 4), (3, 5)), ((2, 3), (3, 2)), ((4,), (0,))]:
        with pytest.raises(ValueError) as error:
            cosine_similarity(torch.randn(s1), torch.randn(s2))
        assert str(s1) in str(error.value) and str(s2) in str(error.value), str(error.value)
    # dim of the broadcast shape, just past each end (empty and 0-d too): an IndexError that names it
    for s1, s2, dim in [((2, 3), (2, 3), 2), ((2, 3), (3,), -3), ((2, 3), (3,), 5), ((3,), (3,), 1), ((3,), (3,), -2),
                        ((), (), 1), ((), (), -2), ((0, 3), (0, 3), 2), ((0,), (0,), -2)]:
        with pytest.raises(IndexError) as error:
            cosine_similarity(torch.randn(s1), torch.randn(s2), dim=dim)
        assert str(dim) in str(error.value), (s1, s2, dim, str(error.value))


CHECKS = [check_matches_torch, check_parallel_and_opposite, check_eps_semantics, check_zero_vectors,
          check_broadcasting, check_dtype_promotion, check_non_contiguous, check_magnitudes, check_gradients,
          check_empty, check_default_dim, check_errors]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_cosine_similarity(cosine_similarity, check):
    check(cosine_similarity)


def no_eps(x1, x2, dim=1, eps=1e-8):
    return (x1 * x2).sum(dim) / ((x1 * x1).sum(dim).sqrt() * (x2 * x2).sum(dim).sqrt())


def clamps_the_product(x1, x2, dim=1, eps=1e-8):
    # torch before 1.12: max(||x1|| * ||x2||, eps)
    return (x1 * x2).sum(dim) / ((x1 * x1).sum(dim) * (x2 * x2).sum(dim)).sqrt().clamp_min(eps)


def adds_eps(x1, x2, dim=1, eps=1e-8):
    return (x1 * x2).sum(dim) / (((x1 * x1).sum(dim).sqrt() + eps) * ((x2 * x2).sum(dim).sqrt() + eps))


def norms_before_broadcasting(x1, x2, dim=1, eps=1e-8):
    # each norm over its own shape: wrong where one input is broadcast along dim
    norm1 = (x1 * x1).sum(dim, keepdim=True).clamp_min(eps * eps).sqrt()
    norm2 = (x2 * x2).sum(dim, keepdim=True).clamp_min(eps * eps).sqrt()
    return (x1 / norm1 * (x2 / norm2)).sum(dim)


def last_dim_default(x1, x2, dim=-1, eps=1e-8):
    x1 = x1 / (x1 * x1).sum(dim, keepdim=True).clamp_min(eps * eps).sqrt()
    x2 = x2 / (x2 * x2).sum(dim, keepdim=True).clamp_min(eps * eps).sqrt()
    return (x1 * x2).sum(dim)


@pytest.mark.suite_check
@pytest.mark.parametrize("broken", [no_eps, clamps_the_product, adds_eps, norms_before_broadcasting,
                                    last_dim_default], ids=lambda f: f.__name__)
def test_broken_cosine_similarity_is_rejected(broken):
    assert failing_checks(CHECKS, broken)


@pytest.mark.suite_check
def test_no_builtin_cosine_in_reference():
    import inspect

    from torchkata.tensors import cosine as module

    source = inspect.getsource(module)
    for name in ("F.cosine_similarity", "torch.cosine_similarity", "CosineSimilarity", "normalize", "norm(",
                 "linalg", "vecdot", "einsum", "matmul", "@", "torch.dot", "inner("):
        assert name not in source, name
