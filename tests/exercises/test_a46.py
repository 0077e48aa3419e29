"""a46: kNN of point clouds, graded against torch.cdist + torch.topk(largest=False) KernelBench-style: seeded trials
of clouds that are not multiples of the tiles (the CPU's 256-point reference tiles and 64-query blocks; the CUDA
kernel's 256-point tiles, 128-query blocks and top-k capacities 16 and 64), one point, empty queries, k == M, in
float32 and float64; squared distances with a relative tolerance against float64, indices where the distances are
distinct (among tied points any order is right: each listed once, at its own distance); non-contiguous clouds; the
errors; and on a GPU the CUDA half. The library is built once per session."""
import functools

import pytest
import torch

from grading import failing_checks
from kernel_source_checks import assert_no_aten_op

EXERCISE = "a46"
# (N, M, D, k): one point, empty queries, k == M, sizes around every tile and block, k around 16 and 64
CASES = [(1, 1, 3, 1), (0, 5, 3, 2), (9, 9, 3, 9), (7, 300, 3, 16), (65, 257, 3, 17), (130, 513, 2, 65),
         (3, 40, 7, 40), (20, 600, 1, 5)]
DTYPES = [torch.float32, torch.float64]
# max |ours - exact| / max exact distance: rounding of D squared differences, far from any real mistake
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-12}
# the reference's distances by differences, not by cdist's matmul expansion for large clouds: exact in float64 to
# the last bits, and on this CPU a matmul on two threads costs 30-60 ms even for a 3 x 40 cloud
DIRECT = "donot_use_mm_for_euclid_dist"
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@pytest.fixture(scope="module")
def knn(impl_for, extension_library):
    return functools.partial(impl_for(EXERCISE).knn, library_path=str(extension_library("knn")))


def clouds(n, m, d, dtype, seed, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, d, generator=g, dtype=dtype).to(device),
            torch.randn(m, d, generator=g, dtype=dtype).to(device))


def exact(query, reference, k):
    """float64 cdist + topk: (squared distances [N, k], indices [N, k], the indices decided: apart from the
    neighbouring distances in the sorted row, the (k+1)-th included, by more than float32 rounding)."""
    q, r = query.double().cpu(), reference.double().cpu()
    top = min(k + 1, r.shape[0])
    distances, indices = torch.topk(torch.cdist(q, r, compute_mode=DIRECT) ** 2, top, largest=False)
    close = distances.diff(dim=1) <= 1e-5 * float(distances.max()) if distances.numel() else distances.bool()
    apart = torch.ones_like(distances, dtype=torch.bool)
    apart[:, 1:] &= ~close
    apart[:, :-1] &= ~close
    return distances[:, :k], indices[:, :k], apart[:, :k]


def assert_valid(query, reference, k, distances, indices):
    """Shapes and dtypes; every row sorted ascending, k distinct indices in range, each at its own distance."""
    n = query.shape[0]
    assert distances.shape == indices.shape == (n, k)
    assert distances.dtype == query.dtype and indices.dtype == torch.int64
    assert distances.device == indices.device == query.device
    if n == 0:
        return
    tolerance = TOLERANCE[query.dtype]
    indices, distances = indices.cpu(), distances.cpu().double()
    assert bool((indices >= 0).all() and (indices < reference.shape[0]).all()), "an index out of range"
    assert bool((indices.sort(dim=1).values.diff(dim=1) != 0).all()), "a reference point listed twice"
    assert bool((distances.diff(dim=1) >= 0).all()), "a row not sorted ascending"
    own = ((query.double().cpu()[:, None, :] - reference.double().cpu()[indices]) ** 2).sum(-1)
    scale = max(float(own.abs().max()), 1e-30)
    assert float((own - distances).abs().max()) <= tolerance * scale, "a distance is not its index's distance"


def assert_matches(query, reference, k, distances, indices):
    assert_valid(query, reference, k, distances, indices)
    if query.shape[0] == 0:
        return
    exact_d, exact_i, decided = exact(query, reference, k)
    scale = float(exact_d.max())
    tolerance = TOLERANCE[query.dtype]
    assert scale > 100 * tolerance, "the distances are too small to judge"
    error = float((distances.cpu().double() - exact_d).abs().max())
    assert error <= tolerance * scale, f"max error {error:.3g} against max distance {scale:.3g}"
    assert bool(decided.any()), "no index to compare"
    assert torch.equal(indices.cpu()[decided], exact_i[decided]), "indices differ from cdist + topk"


def check_values(knn):
    for device in DEVICES:
        for seed, (n, m, d, k) in enumerate(CASES):
            for dtype in DTYPES:
                query, reference = clouds(n, m, d, dtype, seed, device)
                assert_matches(query, reference, k, *knn(query, reference, k))


def check_ties(knn):
    """Points of an integer grid: many reference points at one distance, which float64 computes exactly. The
    distances must be exact, the tied indices any of the tied points, each once."""
    grid = torch.stack(torch.meshgrid(torch.arange(6.0), torch.arange(6.0), indexing="ij"), -1).reshape(-1, 2)
    query = torch.tensor([[2.0, 3.0], [0.0, 0.0], [2.5, 2.5]], dtype=torch.float64)
    for k in (5, 9, 36):
        distances, indices = knn(query, grid.double(), k)
        assert_valid(query, grid.double(), k, distances, indices)
        squared = ((query[:, None, :] - grid.double()[None]) ** 2).sum(-1)  # exact on this grid, unlike cdist ** 2
        assert torch.equal(distances, torch.topk(squared, k, largest=False).values)


def check_strides(knn):
    """A transposed query and a sliced reference give the contiguous answer, and are left unchanged."""
    g = torch.Generator().manual_seed(5)
    for dtype in DTYPES:
        query = torch.randn(3, 70, generator=g, dtype=dtype).t()  # [70, 3], column-major
        reference = torch.randn(600, 8, generator=g, dtype=dtype)[::2, 1:7:2]  # [300, 3], both strides > 1
        before = query.clone(), reference.clone()
        assert_matches(query, reference, 16, *knn(query, reference, 16))
        assert torch.equal(query, before[0]) and torch.equal(reference, before[1]), "an input was written to"


def check_errors_name_the_problem(knn):
    query, reference = torch.randn(4, 3), torch.randn(5, 3)
    with pytest.raises(RuntimeError, match=r"knn: k \(6\) must be at most the number of reference points \(5\)"):
        knn(query, reference, 6)
    with pytest.raises(RuntimeError, match="knn: k must be at least 1, got 0"):
        knn(query, reference, 0)
    with pytest.raises(RuntimeError, match=r"knn: query and reference must be 2-D \(\[points, dims\]\), got shapes "
                                           r"\[4, 3, 1\] and \[5, 3\]"):
        knn(query[..., None], reference, 2)
    with pytest.raises(RuntimeError, match=r"knn: query and reference must have one number of dims, got shapes "
                                           r"\[4, 3\] and \[5, 2\]"):
        knn(query, reference[:, :2], 2)
    with pytest.raises(RuntimeError, match="knn: query and reference must have one dtype, got Float and Double"):
        knn(query, reference.double(), 2)
    with pytest.raises(RuntimeError, match="knn: query must be float32 or float64, got Long"):
        knn(query.long(), reference.long(), 2)
    with pytest.raises(TypeError, match="knn: query must be a Tensor, got list"):
        knn([[0.0, 0.0, 0.0]], reference, 2)
    with pytest.raises(TypeError, match="knn: reference must be a Tensor, got list"):
        knn(query, [[0.0, 0.0, 0.0]], 1)
    with pytest.raises(TypeError, match="knn: k must be an int, got float"):
        knn(query, reference, 2.0)
    with pytest.raises(TypeError, match="knn: k must be an int, got bool"):
        knn(query, reference, True)


CHECKS = [check_values, check_ties, check_strides, check_errors_name_the_problem]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_knn(knn, check):
    check(knn)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the CUDA kernel is only compiled here "
                                                          "(tests/pipeline/test_kernel_sources.py, sm_80 and sm_90)")
def test_cuda_half_against_cdist_topk(knn):
    for k in (8, 40, 100):  # each capacity of the kernel's top-k: 16, 64, the output row
        query, reference = clouds(1000, 3000, 3, torch.float32, k, "cuda")
        assert_matches(query, reference, k, *knn(query, reference, k))
    with pytest.raises(RuntimeError, match="knn: query and reference must be on one device"):
        knn(query, reference.cpu(), 2)


def test_op_reports_its_cuda_half(extension_library):
    from torchkata.extensions import knn as reference

    ops = reference.ops(str(extension_library("knn")))
    assert ops.knn_has_cuda() == (torch.version.cuda is not None and torch.cuda.is_available())


def broken(bug):
    """The reference's wrapper with one deliberate mistake, made around the kernel."""
    from torchkata.extensions import knn as reference

    def knn(query, reference_points, k, library_path=None):
        lib = reference.ops(library_path)
        if bug == "drops_partial_tile":  # a scan over whole 256-point tiles only
            whole = max(reference_points.shape[0] // 256 * 256, k)
            return lib.knn(query, reference_points[:whole], k)
        if bug == "true_distances":  # the square root: not what the op promises
            distances, indices = lib.knn(query, reference_points, k)
            return distances.sqrt(), indices
        if bug == "unsorted_top_k":  # the right k points in heap order, not sorted
            distances, indices = lib.knn(query, reference_points, k)
            return distances.flip(1), indices.flip(1)
        if bug == "float64_through_float32" and query.dtype == torch.float64:
            distances, indices = lib.knn(query.float(), reference_points.float(), k)
            return distances.double(), indices
        if bug == "strides_ignored":
            return lib.knn(query.as_strided(query.shape, (query.shape[1], 1)),
                           reference_points.as_strided(reference_points.shape, (reference_points.shape[1], 1)), k)
        if bug == "one_extra_neighbour_dropped":  # the k-th kept out of the top-k (an off-by-one in the insertion)
            distances, indices = lib.knn(query, reference_points, k)
            if k > 1:
                distances[:, -1], indices[:, -1] = distances[:, -2], indices[:, -2]
            return distances, indices
        return lib.knn(query, reference_points, k)

    return knn


@pytest.mark.suite_check
@pytest.mark.parametrize("bug", ["drops_partial_tile", "true_distances", "unsorted_top_k", "float64_through_float32",
                                 "strides_ignored", "one_extra_neighbour_dropped"])
def test_broken_knn_is_rejected(bug, extension_library):
    assert failing_checks(CHECKS, functools.partial(broken(bug), library_path=str(extension_library("knn"))))


@pytest.mark.suite_check
def test_all_zero_answer_is_rejected():
    """The tolerance is relative to the largest exact distance: a kernel that writes zeros must not pass."""
    def zeros(query, reference, k):
        return query.new_zeros(query.shape[0], k), torch.arange(k).expand(query.shape[0], k)

    assert "check_values" in failing_checks(CHECKS, zeros)


@pytest.mark.suite_check
def test_kernels_are_hand_written():
    """The kernels compute the distances and keep the top-k themselves: no ATen distance, sort or top-k."""
    assert_no_aten_op(["csrc/knn/knn.cpp", "csrc/knn/knn_cuda.cu"],
                      ["at::cdist", "at::topk", "at::sort", "at::kthvalue", "at::argsort", "at::matmul", "at::mm",
                       ".topk(", ".sort(", "cdist", "thrust::", "cub::", "std::sort", "std::partial_sort",
                       "std::nth_element"])
