"""a44: the tiled matmul, graded against torch.matmul KernelBench-style: seeded trials of shapes that are not
multiples of the tiles (the CPU's 6-row micro-tiles, 256-deep blocks, 120-row blocks and 2048-column panels; the
CUDA kernel's 64 x 64 x 16 tiles), empty and one-element shapes, float32 and float64, with a relative tolerance
and a check that the answer is large enough to judge; transposed, sliced and stride-0 operands; gradcheck in
float64; the errors; and on a GPU the CUDA half. The library is built once per session."""
import functools

import pytest
import torch

from grading import failing_checks
from kernel_source_checks import assert_no_aten_op

EXERCISE = "a44"
# (M, K, N): one element, each dimension empty, and sizes around every tile edge of both kernels
SHAPES = [(1, 1, 1), (0, 5, 3), (4, 0, 3), (3, 5, 0), (7, 13, 9), (6, 16, 8), (65, 63, 64), (121, 257, 130),
          (3, 4, 2100)]
DTYPES = [torch.float32, torch.float64]
# max |ours - torch| / max |torch|: rounding of K <= 257 products in either order, far from any real mistake
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-12}
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@pytest.fixture(scope="module")
def matmul(impl_for, extension_library):
    return functools.partial(impl_for(EXERCISE).matmul, library_path=str(extension_library("matmul")))


def operands(m, k, n, dtype, seed, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(m, k, generator=g, dtype=dtype).to(device),
            torch.randn(k, n, generator=g, dtype=dtype).to(device))


def assert_matches(ours, expected):
    """Shape, dtype, device, and the values within the dtype's relative tolerance of a product large enough that an
    all-zero or constant answer cannot pass."""
    assert ours.shape == expected.shape and ours.dtype == expected.dtype and ours.device == expected.device
    if expected.numel() == 0:
        return
    scale = float(expected.abs().max())
    tolerance = TOLERANCE[expected.dtype]
    assert scale > 100 * tolerance, "the product is too small to judge"
    error = float((ours - expected).abs().max())
    assert error <= tolerance * scale, f"max error {error:.3g} against max |torch.matmul| {scale:.3g}"


def check_values(matmul):
    for device in DEVICES:
        for seed, (m, k, n) in enumerate(SHAPES):
            for dtype in DTYPES:
                a, b = operands(m, k, n, dtype, seed, device)
                out = matmul(a, b)
                assert out.is_contiguous()
                if k == 0:  # a sum over nothing: zeros, not whatever the memory held
                    assert out.shape == (m, n) and out.dtype == dtype and not out.any()
                else:
                    assert_matches(out, torch.matmul(a, b))


def check_strides(matmul):
    """Transposed, sliced and stride-0 operands give torch's answer, and are left unchanged."""
    g = torch.Generator().manual_seed(7)
    for dtype in DTYPES:
        a_t = torch.randn(30, 20, generator=g, dtype=dtype).t()  # [20, 30], column-major
        b_sliced = torch.randn(60, 50, generator=g, dtype=dtype)[::2, 1::3]  # [30, 17], both strides > 1
        b_expanded = torch.randn(30, 1, generator=g, dtype=dtype).expand(30, 9)  # stride 0
        for a, b in ((a_t, b_sliced), (a_t, b_expanded), (b_sliced.t(), a_t.t())):
            before = a.clone(), b.clone()
            assert_matches(matmul(a, b), torch.matmul(a, b))
            assert torch.equal(a, before[0]) and torch.equal(b, before[1]), "an operand was written to"


def check_gradients(matmul):
    """Gradients of both operands against torch.matmul's, on a shape that crosses the CPU's tiles."""
    for dtype in DTYPES:
        a, b = operands(13, 9, 17, dtype, 11)
        weights = operands(13, 1, 17, dtype, 12)[1]
        grads = []
        for fn in (matmul, torch.matmul):
            a_in, b_in = a.clone().requires_grad_(), b.clone().requires_grad_()
            grads.append(torch.autograd.grad((fn(a_in, b_in) * weights).sum(), (a_in, b_in)))
        for ours, expected in zip(*grads):
            assert_matches(ours, expected)


def check_gradcheck(matmul):
    a, b = operands(7, 5, 3, torch.float64, 13)
    assert torch.autograd.gradcheck(matmul, (a.requires_grad_(), b.requires_grad_()))


def check_errors_name_the_problem(matmul):
    with pytest.raises(RuntimeError, match=r"matmul: a and b must be 2-D, got shapes \[3\] and \[3, 2\]"):
        matmul(torch.ones(3), torch.ones(3, 2))
    with pytest.raises(RuntimeError,
                       match=r"matmul: a's columns must match b's rows, got shapes \[2, 3\] and \[4, 2\]"):
        matmul(torch.ones(2, 3), torch.ones(4, 2))
    with pytest.raises(RuntimeError, match="matmul: a and b must have one dtype, got Float and Double"):
        matmul(torch.ones(2, 3), torch.ones(3, 2, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="matmul: a must be float32 or float64, got Long"):
        matmul(torch.ones(2, 3, dtype=torch.long), torch.ones(3, 2, dtype=torch.long))
    with pytest.raises(TypeError, match="matmul: b must be a Tensor, got list"):
        matmul(torch.ones(2, 2), [[1.0, 0.0], [0.0, 1.0]])


CHECKS = [check_values, check_strides, check_gradients, check_gradcheck, check_errors_name_the_problem]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_matmul(matmul, check):
    check(matmul)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the CUDA kernel is only compiled here "
                                                          "(tests/pipeline/test_kernel_sources.py, sm_80 and sm_90)")
def test_cuda_half_against_cublas(matmul):
    a, b = operands(1000, 700, 300, torch.float32, 21, "cuda")
    assert_matches(matmul(a, b), torch.matmul(a, b))
    with pytest.raises(RuntimeError, match="matmul: a and b must be on one device"):
        matmul(a, b.cpu())


def test_op_reports_its_cuda_half(extension_library):
    from torchkata.extensions import matmul as reference

    ops = reference.ops(str(extension_library("matmul")))
    assert ops.matmul_has_cuda() == (torch.version.cuda is not None and torch.cuda.is_available())


def broken(bug):
    """The reference's Function with one deliberate mistake, made around the kernel."""
    from torchkata.extensions import matmul as reference

    class Broken(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a, b, lib):
            ctx.save_for_backward(a, b)
            ctx.lib = lib
            if bug == "drops_partial_k_tile":  # a kernel that loops over whole 16-deep tiles only
                whole = a.shape[1] // 16 * 16
                return lib.matmul(a[:, :whole].contiguous(), b[:whole].contiguous())
            if bug == "drops_partial_row_tile":  # rows past the last whole 6-row micro-tile left at zero
                out = lib.matmul(a, b)
                out[a.shape[0] // 6 * 6:] = 0
                return out
            if bug == "float64_through_float32" and a.dtype == torch.float64:
                return lib.matmul(a.float(), b.float()).double()
            if bug == "strides_ignored":  # the flat memory read as if it were contiguous
                return lib.matmul(a.as_strided(a.shape, (a.shape[1], 1)), b.as_strided(b.shape, (b.shape[1], 1)))
            return lib.matmul(a, b)

        @staticmethod
        def backward(ctx, grad_c):
            a, b = ctx.saved_tensors
            if bug == "grad_a_untransposed":  # dC B: of the wrong shape unless B is square, wrong values if it is
                return ctx.lib.matmul(grad_c, b), ctx.lib.matmul(a.t(), grad_c), None
            if bug == "no_grad_b":
                return ctx.lib.matmul(grad_c, b.t()), None, None
            return ctx.lib.matmul(grad_c, b.t()), ctx.lib.matmul(a.t(), grad_c), None

    def matmul(a, b, library_path=None):
        return Broken.apply(a, b, reference.ops(library_path))

    return matmul


@pytest.mark.suite_check
@pytest.mark.parametrize("bug", ["drops_partial_k_tile", "drops_partial_row_tile", "float64_through_float32",
                                 "strides_ignored", "grad_a_untransposed", "no_grad_b"])
def test_broken_matmul_is_rejected(bug, extension_library):
    assert failing_checks(CHECKS, functools.partial(broken(bug), library_path=str(extension_library("matmul"))))


@pytest.mark.suite_check
def test_all_zero_answer_is_rejected():
    """The tolerance is relative to the largest |torch.matmul|: a kernel that writes nothing must not pass."""
    def zeros(a, b):
        return a.new_zeros(a.shape[0], b.shape[1])

    assert "check_values" in failing_checks(CHECKS, zeros)


@pytest.mark.suite_check
def test_kernels_are_hand_written():
    """The kernels multiply and add elements themselves: no ATen, BLAS or cuBLAS call does the product."""
    assert_no_aten_op(["csrc/matmul/matmul.cpp", "csrc/matmul/matmul_cuda.cu"],
                      ["at::matmul", "at::mm", "at::addmm", "at::bmm", "at::einsum", "at::dot", "at::linear",
                       "at::tensordot", ".matmul(", ".mm(", ".addmm(", "cublas", "gemm("])
