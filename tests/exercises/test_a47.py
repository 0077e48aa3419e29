"""a47: bilinear sampling, graded against F.grid_sample(mode="bilinear", padding_mode="zeros") KernelBench-style:
seeded trials of odd sizes, one-pixel images, empty batches, channels and grids, with grid points beyond [-1, 1],
align_corners True and False, float32 and float64, with a relative tolerance and a check that the answer is large
enough to judge; both gradients against F.grid_sample's autograd, and gradcheck in float64 on the CPU path;
non-contiguous operands; the errors; and on a GPU the CUDA half. The library is built once per session."""
import functools

import pytest
import torch
import torch.nn.functional as F

from grading import failing_checks
from kernel_source_checks import assert_no_aten_op

EXERCISE = "a47"
# (N, C, H, W, Ho, Wo): one pixel, a one-pixel row, an empty batch, no channels, an empty grid, odd sizes
CASES = [(1, 1, 1, 1, 3, 3), (2, 3, 1, 5, 2, 4), (0, 2, 3, 3, 2, 2), (2, 0, 4, 4, 3, 3), (1, 2, 5, 5, 0, 3),
         (3, 2, 7, 9, 5, 11), (2, 4, 13, 6, 8, 7)]
DTYPES = [torch.float32, torch.float64]
# max |ours - torch| / max |torch|: rounding of four products and three sums, far from any real mistake
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-12}
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@pytest.fixture(scope="module")
def grid_sample(impl_for, extension_library):
    return functools.partial(impl_for(EXERCISE).grid_sample, library_path=str(extension_library("grid_sample")))


def operands(n, c, h, w, ho, wo, dtype, seed, device="cpu"):
    """An image, a grid with about a third of its points outside [-1, 1], and weights for a loss sum(out * weights)."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, c, h, w, generator=g, dtype=dtype).to(device),
            (torch.rand(n, ho, wo, 2, generator=g, dtype=dtype) * 3 - 1.5).to(device),
            torch.randn(n, c, ho, wo, generator=g, dtype=dtype).to(device))


def native(image, grid, align_corners):
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=align_corners)


def assert_matches(ours, expected, empty_ok=False):
    """Shape, dtype, device, and the values within the dtype's relative tolerance of an answer large enough that an
    all-zero or constant answer cannot pass (empty_ok: an answer of zeros, such as a gradient through an empty grid,
    compared exactly)."""
    assert ours.shape == expected.shape and ours.dtype == expected.dtype and ours.device == expected.device
    if expected.numel() == 0 or (empty_ok and not expected.any()):
        assert torch.equal(ours, expected)
        return
    scale = float(expected.abs().max())
    tolerance = TOLERANCE[expected.dtype]
    assert scale > 100 * tolerance, "the answer is too small to judge"
    error = float((ours - expected).abs().max())
    assert error <= tolerance * scale, f"max error {error:.3g} against max |torch| {scale:.3g}"


def check_forward(grid_sample):
    for device in DEVICES:
        for seed, case in enumerate(CASES):
            for dtype in DTYPES:
                for align_corners in (False, True):
                    image, grid, _ = operands(*case, dtype, seed, device)
                    assert_matches(grid_sample(image, grid, align_corners), native(image, grid, align_corners))


def check_default_is_align_corners_false(grid_sample):
    image, grid, _ = operands(2, 3, 6, 5, 4, 4, torch.float64, 3)
    assert_matches(grid_sample(image, grid), native(image, grid, False))


def gradients(sample, image, grid, weights, align_corners):
    image, grid = image.clone().requires_grad_(), grid.clone().requires_grad_()
    out = sample(image, grid, align_corners)
    return torch.autograd.grad((out * weights).sum(), (image, grid), allow_unused=True, materialize_grads=True)


def check_gradients(grid_sample):
    """d/d image and d/d grid of sum(out * weights) against F.grid_sample's autograd; and of sum(out), whose
    upstream gradient is an expanded (stride-0) tensor."""
    for device in DEVICES:
        for seed, case in enumerate(CASES):
            for dtype in DTYPES:
                for align_corners in (False, True):
                    image, grid, weights = operands(*case, dtype, seed, device)
                    for ours, expected in zip(gradients(grid_sample, image, grid, weights, align_corners),
                                              gradients(native, image, grid, weights, align_corners)):
                        assert_matches(ours, expected, empty_ok=True)
    image, grid, _ = operands(2, 3, 6, 5, 4, 4, torch.float64, 17)
    found = []
    for sample in (grid_sample, native):
        leaves = image.clone().requires_grad_(), grid.clone().requires_grad_()
        found.append(torch.autograd.grad(sample(*leaves, True).sum(), leaves))  # upstream: ones, expanded
    for ours, expected in zip(*found):
        assert_matches(ours, expected)


def check_gradcheck(grid_sample):
    for align_corners in (False, True):
        image, grid, _ = operands(2, 2, 4, 5, 3, 2, torch.float64, 23 + align_corners)
        assert torch.autograd.gradcheck(lambda x, g: grid_sample(x, g, align_corners),
                                        (image.requires_grad_(), grid.requires_grad_()))


def check_strides(grid_sample):
    """A channels-last image and a sliced grid give torch's answer and gradients, and are left unchanged."""
    for dtype in DTYPES:
        image, grid, weights = operands(2, 3, 8, 7, 10, 6, dtype, 31)
        image = image.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)  # channels last
        grid = grid[:, ::2, :, :]  # every other row: [2, 5, 6, 2], not contiguous
        weights = weights[:, :, ::2]
        before = image.clone(), grid.clone()
        assert_matches(grid_sample(image, grid, False), native(image, grid, False))
        for ours, expected in zip(gradients(grid_sample, image, grid, weights, False),
                                  gradients(native, image, grid, weights, False)):
            assert_matches(ours, expected)
        assert torch.equal(image, before[0]) and torch.equal(grid, before[1]), "an operand was written to"


def check_errors_name_the_problem(grid_sample):
    image, grid = torch.randn(2, 3, 4, 5), torch.rand(2, 3, 3, 2)
    with pytest.raises(RuntimeError, match=r"grid_sample: input must be 4-D \[N, C, H, W\], got shape \[3, 4, 5\]"):
        grid_sample(image[0], grid, False)
    with pytest.raises(RuntimeError, match=r"grid_sample: grid must be \[N, Ho, Wo, 2\], got shape \[2, 3, 3, 3\]"):
        grid_sample(image, torch.rand(2, 3, 3, 3), False)
    with pytest.raises(RuntimeError, match=r"grid_sample: input and grid must have one batch size, got shapes "
                                           r"\[2, 3, 4, 5\] and \[1, 3, 3, 2\]"):
        grid_sample(image, grid[:1], False)
    with pytest.raises(RuntimeError, match=r"grid_sample: input must have at least one pixel, got shape "
                                           r"\[2, 3, 0, 5\]"):
        grid_sample(image[:, :, :0], grid, False)
    with pytest.raises(RuntimeError, match="grid_sample: input and grid must have one dtype, got Float and Double"):
        grid_sample(image, grid.double(), False)
    with pytest.raises(RuntimeError, match="grid_sample: input must be float32 or float64, got Long"):
        grid_sample(image.long(), grid.long(), False)
    with pytest.raises(TypeError, match="grid_sample: input must be a Tensor, got list"):
        grid_sample([[0.0]], grid, False)
    with pytest.raises(TypeError, match="grid_sample: grid must be a Tensor, got list"):
        grid_sample(image, [[0.0, 0.0]], False)
    with pytest.raises(TypeError, match="grid_sample: align_corners must be a bool, got int"):
        grid_sample(image, grid, 1)


CHECKS = [check_forward, check_default_is_align_corners_false, check_gradients, check_gradcheck, check_strides,
          check_errors_name_the_problem]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_grid_sample(grid_sample, check):
    check(grid_sample)


def test_backward_op_errors_name_the_problem(extension_library):
    from torchkata.extensions import grid_sample as reference

    ops = reference.ops(str(extension_library("grid_sample")))
    image, grid = torch.randn(2, 3, 4, 5), torch.rand(2, 3, 3, 2)
    with pytest.raises(RuntimeError, match=r"grid_sample_backward: grad_output must have the output's shape "
                                           r"\[2, 3, 3, 3\], got \[2, 3, 3\]"):
        ops.grid_sample_backward(torch.ones(2, 3, 3), image, grid, False)
    with pytest.raises(RuntimeError, match="grid_sample_backward: grad_output must have input's dtype and device"):
        ops.grid_sample_backward(torch.ones(2, 3, 3, 3, dtype=torch.float64), image, grid, False)


def test_cpu_backward_is_deterministic(extension_library):
    """Many grid points on few pixels, on the threads: grad_input is the same, bit for bit, every time."""
    from torchkata.extensions import grid_sample as reference

    ops = reference.ops(str(extension_library("grid_sample")))
    image, grid, weights = operands(4, 8, 3, 3, 64, 64, torch.float32, 41)
    first = ops.grid_sample_backward(weights, image, grid, True)
    for _ in range(3):
        assert all(torch.equal(a, b) for a, b in zip(first, ops.grid_sample_backward(weights, image, grid, True)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the CUDA kernels are only compiled here "
                                                          "(tests/pipeline/test_kernel_sources.py, sm_80 and sm_90)")
def test_cuda_half_against_torch(grid_sample):
    image, grid, weights = operands(4, 16, 65, 47, 33, 70, torch.float32, 51, "cuda")
    for align_corners in (False, True):
        assert_matches(grid_sample(image, grid, align_corners), native(image, grid, align_corners))
        for ours, expected in zip(gradients(grid_sample, image, grid, weights, align_corners),
                                  gradients(native, image, grid, weights, align_corners)):
            assert_matches(ours, expected)
    with pytest.raises(RuntimeError, match="grid_sample: input and grid must be on one device"):
        grid_sample(image, grid.cpu(), False)


def test_op_reports_its_cuda_half(extension_library):
    from torchkata.extensions import grid_sample as reference

    ops = reference.ops(str(extension_library("grid_sample")))
    assert ops.grid_sample_has_cuda() == (torch.version.cuda is not None and torch.cuda.is_available())


def broken(bug):
    """The reference's Function with one deliberate mistake, made around the kernels."""
    from torchkata.extensions import grid_sample as reference

    class Broken(torch.autograd.Function):
        @staticmethod
        def forward(ctx, image, grid, align_corners, lib):
            ctx.save_for_backward(image, grid)
            ctx.align_corners = align_corners
            ctx.lib = lib
            if bug == "align_corners_ignored":
                align_corners = False
            if bug == "border_instead_of_zeros":  # points outside clamped onto the edge: border padding
                grid = grid.clamp(-1, 1)
            if bug == "float64_through_float32" and image.dtype == torch.float64:
                return lib.grid_sample(image.float(), grid.float(), align_corners).double()
            return lib.grid_sample(image, grid, align_corners)

        @staticmethod
        def backward(ctx, grad_output):
            image, grid = ctx.saved_tensors
            align_corners = not ctx.align_corners if bug == "backward_flips_align_corners" else ctx.align_corners
            grad_image, grad_grid = ctx.lib.grid_sample_backward(grad_output, image, grid, align_corners)
            if bug == "grad_grid_x_y_swapped":
                grad_grid = grad_grid.flip(-1)
            if bug == "no_grad_grid":
                grad_grid = None
            return grad_image, grad_grid, None, None

    def grid_sample(image, grid, align_corners=False, library_path=None):
        return Broken.apply(image, grid, align_corners, reference.ops(library_path))

    return grid_sample


@pytest.mark.suite_check
@pytest.mark.parametrize("bug", ["align_corners_ignored", "border_instead_of_zeros", "float64_through_float32",
                                 "backward_flips_align_corners", "grad_grid_x_y_swapped", "no_grad_grid"])
def test_broken_grid_sample_is_rejected(bug, extension_library):
    assert failing_checks(CHECKS, functools.partial(broken(bug), library_path=str(extension_library("grid_sample"))))


@pytest.mark.suite_check
def test_all_zero_answer_is_rejected():
    """The tolerance is relative to the largest |F.grid_sample|: a kernel that writes nothing must not pass."""
    def zeros(image, grid, align_corners=False):
        return image.new_zeros(image.shape[0], image.shape[1], grid.shape[1], grid.shape[2])

    assert "check_forward" in failing_checks(CHECKS, zeros)


@pytest.mark.suite_check
def test_kernels_are_hand_written():
    """The kernels interpolate themselves: no ATen grid_sampler, upsample or interpolate does it for them."""
    assert_no_aten_op(["csrc/grid_sample/grid_sample.cpp", "csrc/grid_sample/grid_sample_cuda.cu"],
                      ["at::grid_sampler", "grid_sampler_2d", "at::upsample", "at::interpolate", "at::index",
                       "at::gather", "index_add", "scatter_add", "at::native::"])
