"""m4-deep-2: the Triton matmul, graded against torch.matmul KernelBench-style: seeded operands of shapes that are
not multiples of the blocks (the interpreter's 32 x 32 x 32; more tile rows than a group), one element, empty M, N
and K, float32 and float16 with a relative tolerance on products large enough to judge; float16 summed in float32;
transposed, sliced and stride-0 operands; the grouped tile order; the GPU autotuning configs; the errors. Here the
kernel runs under Triton's interpreter (the module sets TRITON_INTERPRET=1 without a CUDA device), which pays per
operation: the shapes are few and small. On a GPU the same checks run the compiled kernel, and the CUDA test
compares a large float16 product with cuBLAS."""
import pytest
import torch

from grading import failing_checks

EXERCISE = "m4-deep-2"
# (M, K, N): one element; 2 x 1 tiles over 2 K steps with ragged edges; 3 ragged K steps; a 5 x 2 grid of whole
# tiles (more tile rows than the interpreter's GROUP_M = 4: a short second group; whole tiles, so a tile count one
# too high, (M + BLOCK_M) // BLOCK_M, shows); one tile row of two tile columns (a grid of tile rows times tile
# columns, not a power or a sum); 5 x 2 tiles whose last column holds one element (a tile count one too low); K =
# 300, sizes that Python does not cache as shared int objects
SHAPES = [(1, 1, 1), (33, 40, 17), (5, 70, 3), (160, 8, 64), (7, 12, 33), (160, 4, 33), (2, 300, 1)]
# max |ours - torch| / max |torch|: K <= 70 products summed in another order (float32), or rounded to float16
TOLERANCE = {torch.float32: 1e-5, torch.float16: 2e-3}
H100_SHARED_BYTES = 227 * 1024


@pytest.fixture(scope="module")
def kernel(impl_for):
    return impl_for(EXERCISE)


def device(kernel):
    return "cpu" if kernel.interpreted() else "cuda"


def operands(m, k, n, dtype, seed, dev="cpu"):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(m, k, generator=g).to(dev, dtype), torch.randn(k, n, generator=g).to(dev, dtype))


def assert_matches(ours, expected):
    """Shape, dtype, device, a new contiguous result, and values within the dtype's relative tolerance of a product
    large enough that an all-zero or constant answer cannot pass."""
    assert ours.shape == expected.shape and ours.dtype == expected.dtype and ours.device == expected.device
    assert ours.is_contiguous()
    scale = float(expected.abs().max())
    tolerance = TOLERANCE[expected.dtype]
    assert scale > 100 * tolerance, "the product is too small to judge"
    error = float((ours.float() - expected.float()).abs().max())
    assert error <= tolerance * scale, f"max error {error:.3g} against max |torch.matmul| {scale:.3g}"


def check_values(kernel):
    for dtype in (torch.float32, torch.float16):
        for seed, shape in enumerate(SHAPES):
            a, b = operands(*shape, dtype, seed, device(kernel))
            assert_matches(kernel.matmul(a, b), torch.matmul(a, b))


def check_empty(kernel):
    """A sum over nothing (K = 0) is zeros, not whatever the memory held; an empty M or N is an empty result."""
    for dtype in (torch.float32, torch.float16):
        for m, k, n in [(3, 0, 4), (0, 5, 3), (4, 5, 0)]:
            a, b = operands(m, k, n, dtype, 0, device(kernel))
            out = kernel.matmul(a, b)
            assert out.shape == (m, n) and out.dtype == dtype and out.device == a.device and not out.any()


def check_float16_sums_in_float32(kernel):
    """Positive float16 operands, 4 K steps: summed in float32 and rounded once, each element is within half a unit
    in the last place of float16 (2^-11 relative) of the exact product; summed in float16, the roundings add up."""
    g = torch.Generator().manual_seed(5)
    a, b = (torch.rand(shape, generator=g).half().to(device(kernel)) for shape in ((16, 128), (128, 16)))
    exact = a.double() @ b.double()
    ours = kernel.matmul(a, b)
    assert ours.dtype == torch.float16
    assert float(((ours.double() - exact) / exact).abs().max()) <= 2**-11 * 1.01


def check_strides(kernel):
    """Transposed, sliced and stride-0 operands give torch's answer, and are left unchanged."""
    g = torch.Generator().manual_seed(7)
    # K = 40: two K steps, so the pointers' step along K is taken with the operands' own strides
    a_t = torch.randn(40, 20, generator=g).t().to(device(kernel))  # [20, 40], column-major
    b_sliced = torch.randn(80, 50, generator=g)[::2, 1::3].to(device(kernel))  # [40, 17], both strides > 1
    b_expanded = torch.randn(40, 1, generator=g).to(device(kernel)).expand(40, 9)  # stride 0
    # slices of NaN-bordered storage: a load past K (or past the operand's edge) into the product gives NaN
    a_bordered, b_bordered = (torch.full(size, float("nan")) for size in ((21, 41), (41, 18)))
    a_bordered[:20, :40], b_bordered[:40, :17] = torch.randn(20, 40, generator=g), torch.randn(40, 17, generator=g)
    a_in_nan, b_in_nan = a_bordered[:20, :40].to(device(kernel)), b_bordered[:40, :17].to(device(kernel))
    for a, b in ((a_t, b_sliced), (a_t, b_expanded), (b_sliced.t(), a_t.t()), (a_in_nan, b_in_nan)):
        before = a.clone(), b.clone()
        assert_matches(kernel.matmul(a, b), torch.matmul(a, b))
        assert torch.equal(a, before[0]) and torch.equal(b, before[1]), "an operand was written to"


def grouped_order(num_pid_m, num_pid_n, group_m):
    """Groups of group_m tile rows, top to bottom; in a group, column after column, down its rows."""
    return [[row, col] for first in range(0, num_pid_m, group_m) for col in range(num_pid_n)
            for row in range(first, min(first + group_m, num_pid_m))]


def check_tile_order(kernel):
    """Every program's tile, as the kernel maps it: grouped (a short last group; groups of 3 rows, not a power of
    two), row-major for groups of one row, column-major for a group taller than the grid."""
    for grid in [(5, 3, 2), (3, 2, 1), (2, 3, 4), (5, 2, 3)]:
        order = kernel.tile_order(*grid)
        assert order.dtype == torch.int32 and order.device.type == device(kernel)
        assert order.tolist() == grouped_order(*grid), grid
    with pytest.raises(ValueError, match="tile_order: the grid and group_m must be at least 1, got 2 x 0 tiles and "
                                         "group_m 3"):
        kernel.tile_order(2, 0, 3)
    with pytest.raises(ValueError, match="got 2 x 2 tiles and group_m 0"):
        kernel.tile_order(2, 2, 0)


def check_gpu_configs(kernel):
    """The autotuning candidates can compile and fit an H100: power-of-two blocks of at least 16 (tl.dot's
    smallest), power-of-two warps, at least two pipeline stages whose float16 tiles fit in shared memory, and
    groups of more than one tile row."""
    assert len(kernel.GPU_CONFIGS) >= 2
    for config in kernel.GPU_CONFIGS:
        m, n, k, group = (config.kwargs[key] for key in ("BLOCK_M", "BLOCK_N", "BLOCK_K", "GROUP_M"))
        for size in (m, n, k):
            assert size >= 16 and size & (size - 1) == 0, config
        assert config.num_warps in (1, 2, 4, 8, 16) and config.num_stages >= 2, config
        assert config.num_stages * (m + n) * k * 2 <= H100_SHARED_BYTES, config
        assert group > 1, config


def check_interpreter_without_cuda(kernel):
    """Without a CUDA device the module set TRITON_INTERPRET=1 before defining its kernels, in this process."""
    import os

    assert kernel.interpreted() == (not torch.cuda.is_available())
    if not torch.cuda.is_available():
        assert os.environ.get("TRITON_INTERPRET") == "1"


def check_errors_name_the_problem(kernel):
    a, b = operands(2, 3, 2, torch.float32, 0, device(kernel))
    with pytest.raises(ValueError, match=r"matmul: a and b must be 2-D, got shapes \[3\] and \[3, 2\]"):
        kernel.matmul(a[0], b)
    for wrong_a, wrong_b in ((a[None], b), (a, b[:, 0]), (a, b[None])):
        with pytest.raises(ValueError, match="matmul: a and b must be 2-D"):
            kernel.matmul(wrong_a, wrong_b)
    with pytest.raises(ValueError, match=r"matmul: a's columns must match b's rows, got shapes \[2, 3\] and \[2, 2\]"):
        kernel.matmul(a, b[:2])
    with pytest.raises(ValueError, match=r"matmul: a's columns must match b's rows, got shapes \[2, 2\] and \[3, 2\]"):
        kernel.matmul(a[:, :2], b)
    with pytest.raises(TypeError, match="matmul: a and b must have one dtype, got torch.float32 and torch.float16"):
        kernel.matmul(a, b.half())
    with pytest.raises(TypeError, match="matmul: a and b must be float16 or float32, got torch.float64"):
        kernel.matmul(a.double(), b.double())
    with pytest.raises(TypeError, match="matmul: b must be a Tensor, got list"):
        kernel.matmul(a, [[1.0, 0.0]] * 3)
    with pytest.raises(TypeError, match="matmul: a must be a Tensor, got int"):
        kernel.matmul(3, b)
    where = device(kernel)
    how = "interpreted" if where == "cpu" else "compiled"
    with pytest.raises(ValueError,
                       match=rf"matmul: the kernel runs on {where} here \({how} by Triton\), but b is on meta"):
        kernel.matmul(a, b.to("meta"))


# the cheapest first: a learner's run (and a mutant's) stops at the first failure, and the interpreter is slow
CHECKS = [check_interpreter_without_cuda, check_errors_name_the_problem, check_gpu_configs, check_tile_order,
          check_strides, check_empty, check_values, check_float16_sums_in_float32]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_triton_matmul(kernel, check):
    check(kernel)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the kernel runs under Triton's "
                                                          "interpreter here, and cuBLAS is not there to compare with")
def test_cuda_float16_against_cublas(kernel):
    a, b = operands(1000, 700, 300, torch.float16, 21, "cuda")
    assert_matches(kernel.matmul(a, b), torch.matmul(a, b))


class Broken:
    """The reference module with one deliberate mistake around its kernel."""

    def __init__(self, bug):
        from torchkata.extensions import triton_matmul

        self.reference, self.bug = triton_matmul, bug
        self.GPU_CONFIGS = triton_matmul.GPU_CONFIGS
        self.interpreted = triton_matmul.interpreted

    def tile_order(self, num_pid_m, num_pid_n, group_m):
        if self.bug == "row_major_order":  # the group ignored
            return self.reference.tile_order(num_pid_m, num_pid_n, 1) if min(num_pid_m, num_pid_n, group_m) > 0 \
                else self.reference.tile_order(num_pid_m, num_pid_n, group_m)
        return self.reference.tile_order(num_pid_m, num_pid_n, group_m)

    def matmul(self, a, b):
        ref = self.reference
        if self.bug == "drops_partial_k_block":  # a K loop over whole blocks only
            whole = a.shape[1] // 32 * 32
            return ref.matmul(a[:, :whole], b[:whole])
        if self.bug == "float16_accumulator" and a.dtype == torch.float16:  # rounded to float16 after each K step
            acc = a.new_zeros(a.shape[0], b.shape[1])
            for k0 in range(0, a.shape[1], 32):
                acc = (acc.float() + ref.matmul(a[:, k0:k0 + 32].float(), b[k0:k0 + 32].float())).half()
            return acc
        if self.bug == "last_tile_row_unwritten":
            out = ref.matmul(a, b)
            out[a.shape[0] // 32 * 32:] = 0
            return out
        if self.bug == "strides_ignored":
            return ref.matmul(a.as_strided(a.shape, (a.shape[1], 1)), b.as_strided(b.shape, (b.shape[1], 1)))
        return ref.matmul(a, b)


# each bug, and the check that must reject it (only that one runs: the interpreter is slow)
BUGS = {"drops_partial_k_block": check_values, "float16_accumulator": check_float16_sums_in_float32,
        "last_tile_row_unwritten": check_values, "strides_ignored": check_strides, "row_major_order": check_tile_order}


@pytest.mark.suite_check
@pytest.mark.parametrize("bug", BUGS)
def test_broken_matmul_is_rejected(bug):
    assert failing_checks([BUGS[bug]], Broken(bug))


@pytest.mark.suite_check
def test_no_torch_product_in_reference():
    """The kernel multiplies: no torch product in the module (tl.dot is the only matmul)."""
    import inspect

    from torchkata.extensions import triton_matmul

    source = inspect.getsource(triton_matmul)
    for op in ("torch.matmul", "torch.mm", "torch.bmm", "einsum", ".mm(", " @ ", "F.linear", "addmm"):
        assert op not in source, op


@pytest.mark.suite_check
def test_all_zero_answer_is_rejected():
    """An all-zero answer passes the K = 0 check and nothing that multiplies."""
    broken = Broken("none")
    broken.matmul = lambda a, b: a.new_zeros(a.shape[0], b.shape[1])
    checks = [check_values, check_strides, check_float16_sums_in_float32, check_empty]
    assert failing_checks(checks, broken) == ["check_values", "check_strides", "check_float16_sums_in_float32"]
