"""m3-deep-1: the fused LayerNorm + Dropout kernel, graded KernelBench-style against F.layer_norm(x) * mask / (1 - p)
under the same mask: seeded trials of widths that are not multiples of the CUDA block (256) or the CPU's 16 lanes,
one-element rows, empty batches, 3-D and non-contiguous inputs, rows far from zero and of tiny variance, float32
and float64, with a relative tolerance and a check that the answer is large enough to judge; p = 0 (LayerNorm
itself), p near 1 and p = 1; the mask's bits, its kept fraction and the op's own mask; gradients against autograd
and gradcheck in float64; the errors; and on a GPU the CUDA half. The library is built once per session."""
import functools
import types

import pytest
import torch
import torch.nn.functional as F

from grading import failing_checks
from kernel_source_checks import assert_no_aten_op

EXERCISE = "m3-deep-1"
# (x's shape, p): one element, an empty batch, one-element rows, widths around 16 and 256, a 3-D batch; p = 0 and p
# near 1 on shapes where some elements are kept
CASES = [((1, 1), 0.0), ((0, 9), 0.5), ((3, 1), 0.1), ((2, 15), 0.5), ((3, 17), 0.3), ((2, 255), 0.0),
         ((2, 257), 0.1), ((3, 2, 100), 0.5), ((40, 300), 0.99), ((8, 1000), 0.999)]
# max |ours - reference| / max |reference|: rounding of two sums over a row, far from any real mistake
TOLERANCE = {torch.float32: 2e-5, torch.float64: 1e-12}
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
# keep_mask(2, 12, p, seed) as the hash of the README draws it (row-major bits)
KNOWN_MASKS = {
    (0.25, 0): [[0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0], [0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0]],
    (0.75, 0): [[0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0], [0, 1, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0]],
    (0.5, 123): [[1, 1, 0, 0, 1, 0, 0, 1, 1, 1, 0, 0], [1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0]],
}


@pytest.fixture(scope="module")
def kernel(impl_for, extension_library):
    impl, path = impl_for(EXERCISE), str(extension_library("layernorm_dropout"))
    return types.SimpleNamespace(layernorm_dropout=functools.partial(impl.layernorm_dropout, library_path=path),
                                 keep_mask=impl.keep_mask, ops=lambda: impl.ops(path))


def inputs(shape, dtype, seed, device="cpu", offset=1.0, spread=3.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=dtype) * spread + offset
    weight, bias = (torch.randn(shape[-1], generator=g, dtype=dtype) for _ in range(2))
    return x.to(device), weight.to(device), bias.to(device)


def expected(x, weight, bias, mask, p, eps=1e-5):
    normed = F.layer_norm(x, (x.shape[-1],), weight, bias, eps)
    return normed * mask.to(x.device) / (1 - p) if p < 1 else torch.zeros_like(normed)


def mask_for(kernel, x, p, seed):
    return kernel.keep_mask(x.numel() // x.shape[-1], x.shape[-1], p, seed).view(x.shape)


def assert_matches(ours, reference):
    """Shape, dtype, device, and the values within the dtype's relative tolerance of an answer large enough that an
    all-zero or constant output cannot pass."""
    assert ours.shape == reference.shape and ours.dtype == reference.dtype and ours.device == reference.device
    if reference.numel() == 0:
        return
    scale = float(reference.abs().max())
    tolerance = TOLERANCE[reference.dtype]
    assert scale > 100 * tolerance, "the answer is too small to judge"
    error = float((ours - reference).abs().max())
    assert error <= tolerance * scale, f"max error {error:.3g} against max |reference| {scale:.3g}"


def check_mask_bits(kernel):
    """The README's hash, bit for bit, and its edges: p = 0 keeps all, p = 1 nothing."""
    for (p, seed), bits in KNOWN_MASKS.items():
        mask = kernel.keep_mask(2, 12, p, seed)
        assert mask.dtype == torch.bool and mask.tolist() == [[bool(b) for b in row] for row in bits]
    assert kernel.keep_mask(3, 40, 0.0, 5).all() and not kernel.keep_mask(3, 40, 1.0, 5).any()
    assert kernel.keep_mask(0, 4, 0.5, 1).shape == (0, 4)


def check_kept_fraction(kernel):
    """The share kept is within 5 standard deviations of 1 - p, and seeds and rows draw different bits."""
    rows, width = 32, 1024
    for p in (0.1, 0.5, 0.99):
        kept = float(kernel.keep_mask(rows, width, p, 3).double().mean())
        assert abs(kept - (1 - p)) < 5 * (p * (1 - p) / (rows * width)) ** 0.5, f"p={p}: kept {kept:.4f}"
    a, b = kernel.keep_mask(64, 256, 0.5, 1), kernel.keep_mask(64, 256, 0.5, 2)
    assert 0.4 < float((a != b).double().mean()) < 0.6, "two seeds should agree on about half the bits"
    assert 0.4 < float((a[0] != a[1]).double().mean()) < 0.6, "two rows should agree on about half the bits"


def check_values(kernel):
    for device in DEVICES:
        for seed, (shape, p) in enumerate(CASES):
            for dtype in (torch.float32, torch.float64):
                x, weight, bias = inputs(shape, dtype, seed, device)
                out = kernel.layernorm_dropout(x, weight, bias, p=p, seed=seed)
                assert out.is_contiguous()
                assert_matches(out, expected(x, weight, bias, mask_for(kernel, x, p, seed), p))


def check_hard_rows(kernel):
    """Rows far from zero (E[x^2] - E[x]^2 cancels in float32), rows of variance below eps (eps matters), another
    eps, a non-contiguous x, and the defaults p = 0.1, seed = 0, eps = 1e-5."""
    for offset, spread, eps in ((0.0, 1e-3, 1e-5), (0.0, 1.0, 0.5)):
        x, weight, bias = inputs((6, 300), torch.float32, 1, offset=offset, spread=spread)
        out = kernel.layernorm_dropout(x, weight, bias, p=0.2, seed=4, eps=eps)
        assert_matches(out, expected(x, weight, bias, mask_for(kernel, x, 0.2, 4), 0.2, eps))
    # at 1000 a float32 is rounded by 6e-5 of the row's spread of 1: against float64 LayerNorm of the same numbers, an
    # error of a few of those (1e-4 of the answer), where E[x^2] - E[x]^2 in float32 is off by percents
    x, weight, bias = inputs((6, 300), torch.float32, 1, offset=1000.0, spread=1.0)
    out = kernel.layernorm_dropout(x, weight, bias, p=0.2, seed=4)
    reference = expected(x.double(), weight.double(), bias.double(), mask_for(kernel, x, 0.2, 4), 0.2)
    assert float((out - reference).abs().max()) <= 1e-4 * float(reference.abs().max())
    x, weight, bias = inputs((40, 30), torch.float64, 2)
    x_t = x.t()  # [30, 40], column-major
    assert_matches(kernel.layernorm_dropout(x_t, weight[:1].expand(40).clone(), bias[:1].expand(40).clone(), p=0.3,
                                            seed=9),
                   expected(x_t, weight[:1].expand(40), bias[:1].expand(40), mask_for(kernel, x_t, 0.3, 9), 0.3))
    x, weight, bias = inputs((5, 64), torch.float64, 3, offset=0.0, spread=1e-3)
    assert_matches(kernel.layernorm_dropout(x, weight, bias),
                   expected(x, weight, bias, mask_for(kernel, x, 0.1, 0), 0.1))


def check_p_edges(kernel):
    """p = 0 is LayerNorm itself; p = 1 drops everything, and no gradient flows."""
    x, weight, bias = inputs((4, 33), torch.float64, 5)
    assert_matches(kernel.layernorm_dropout(x, weight, bias, p=0.0, seed=1), F.layer_norm(x, (33,), weight, bias))
    args = [t.clone().requires_grad_() for t in (x, weight, bias)]
    out = kernel.layernorm_dropout(*args, p=1.0, seed=1)
    assert torch.equal(out, torch.zeros_like(x))
    for grad in torch.autograd.grad(out, args, torch.ones_like(x)):
        assert torch.equal(grad, torch.zeros_like(grad))


def check_op_mask(kernel):
    """The op's own mask (its fourth output) is keep_mask's, and mean and rstd are the rows'."""
    x, weight, bias = inputs((3, 4, 70), torch.float64, 6)
    y, mean, rstd, mask = kernel.ops().layernorm_dropout_forward(x, weight, bias, 0.4, 77, 1e-5)
    assert mask.dtype == torch.bool and torch.equal(mask, mask_for(kernel, x, 0.4, 77))
    rows = x.reshape(-1, 70)
    assert_matches(mean, rows.mean(1))
    assert_matches(rstd, (rows.var(1, unbiased=False) + 1e-5).rsqrt())


def check_gradients(kernel):
    """Gradients of x, weight and bias against autograd through F.layer_norm under the same mask."""
    for dtype in (torch.float32, torch.float64):
        x, weight, bias = inputs((37, 70), dtype, 7)  # two 32-row chunks of the weight gradients, and a part
        upstream = inputs((37, 70), dtype, 8)[0]
        mask = mask_for(kernel, x, 0.3, 2)
        grads = []
        for fn in (lambda *a: kernel.layernorm_dropout(*a, p=0.3, seed=2), lambda *a: expected(*a, mask, 0.3)):
            args = [t.clone().requires_grad_() for t in (x, weight, bias)]
            grads.append(torch.autograd.grad(fn(*args), args, upstream))
        for ours, reference in zip(*grads):
            assert_matches(ours, reference)


def check_gradcheck(kernel):
    x, weight, bias = inputs((4, 19), torch.float64, 9)
    args = tuple(t.requires_grad_() for t in (x, weight, bias))
    assert torch.autograd.gradcheck(lambda *a: kernel.layernorm_dropout(*a, p=0.3, seed=3), args)


def check_errors_name_the_problem(kernel):
    x, weight, bias = inputs((2, 5), torch.float32, 10)
    with pytest.raises(RuntimeError, match=r"layernorm_dropout_forward: weight must have shape \[5\] \(x's last "
                                           r"dimension\), got \[4\]"):
        kernel.layernorm_dropout(x, weight[:4], bias)
    with pytest.raises(RuntimeError, match=r"layernorm_dropout_forward: bias must have shape \[5\]"):
        kernel.layernorm_dropout(x, weight, bias.view(5, 1))
    with pytest.raises(RuntimeError, match="layernorm_dropout_forward: x and weight must have one dtype, got Float "
                                           "and Double"):
        kernel.layernorm_dropout(x, weight.double(), bias)
    with pytest.raises(RuntimeError, match="layernorm_dropout_forward: x must be float32 or float64, got Long"):
        kernel.layernorm_dropout(x.long(), weight.long(), bias.long())
    with pytest.raises(RuntimeError, match="layernorm_dropout_forward: x must have at least one dimension"):
        kernel.layernorm_dropout(x[0, 0], weight[:1], bias[:1])
    with pytest.raises(RuntimeError, match=r"layernorm_dropout_forward: p must be in \[0, 1\], got 1.5"):
        kernel.layernorm_dropout(x, weight, bias, p=1.5)
    with pytest.raises(RuntimeError, match=r"layernorm_dropout_forward: p must be in \[0, 1\], got -0.1"):
        kernel.layernorm_dropout(x, weight, bias, p=-0.1)
    with pytest.raises(RuntimeError,
                       match=r"layernorm_dropout_forward: seed must be in \[0, 2\*\*32\), got 4294967296"):
        kernel.layernorm_dropout(x, weight, bias, seed=2**32)
    with pytest.raises(TypeError, match="layernorm_dropout: bias must be a Tensor, got list"):
        kernel.layernorm_dropout(x, weight, [0.0] * 5)


CHECKS = [check_mask_bits, check_kept_fraction, check_values, check_hard_rows, check_p_edges, check_op_mask,
          check_gradients, check_gradcheck, check_errors_name_the_problem]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_layernorm_dropout(kernel, check):
    check(kernel)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the CUDA kernel is only compiled here "
                                                          "(tests/pipeline/test_kernel_sources.py, sm_80 and sm_90)")
def test_cuda_half_against_eager(kernel):
    """The CUDA kernel's output, mask and gradients against the eager pair's, at the issue's default size."""
    x, weight, bias = inputs((4096, 1024), torch.float32, 11, "cuda")
    args = [t.clone().requires_grad_() for t in (x, weight, bias)]
    out = kernel.layernorm_dropout(*args, p=0.1, seed=5)
    mask = mask_for(kernel, x, 0.1, 5)
    assert_matches(out, expected(x, weight, bias, mask, 0.1))
    assert torch.equal(kernel.ops().layernorm_dropout_forward(x, weight, bias, 0.1, 5, 1e-5)[3].cpu(), mask)
    reference_args = [t.clone().requires_grad_() for t in (x, weight, bias)]
    upstream = torch.randn_like(x)
    ours = torch.autograd.grad(out, args, upstream)
    theirs = torch.autograd.grad(expected(*reference_args, mask, 0.1), reference_args, upstream)
    for a, b in zip(ours, theirs):
        assert float((a - b).abs().max()) <= 1e-4 * float(b.abs().max())
    with pytest.raises(RuntimeError, match="layernorm_dropout_forward: x and weight must be on one device"):
        kernel.layernorm_dropout(x, weight.cpu(), bias)


def test_op_reports_its_cuda_half(extension_library):
    from torchkata.extensions import layernorm_dropout as reference

    ops = reference.ops(str(extension_library("layernorm_dropout")))
    assert ops.layernorm_dropout_has_cuda() == (torch.version.cuda is not None and torch.cuda.is_available())


class BrokenLibrary:
    """The reference's operators with one deliberate mistake made around them."""

    def __init__(self, lib, bug):
        self.lib, self.bug = lib, bug

    def layernorm_dropout_forward(self, x, weight, bias, p, seed, eps):
        y, mean, rstd, mask = self.lib.layernorm_dropout_forward(x, weight, bias, p, seed, eps)
        if self.bug == "not_rescaled":  # the kept elements not divided by 1 - p
            y = y * (1 - p)
        if self.bug == "another_mask" and p < 1:  # a mask of its own, not the README's hash
            normed = self.lib.layernorm_dropout_forward(x, weight, bias, 0.0, 0, eps)[0]
            mask = self.lib.layernorm_dropout_forward(x, weight, bias, p, (seed + 1) % 2**32, eps)[3]
            y = normed * mask / (1 - p)
        if self.bug == "naive_variance":  # E[x^2] - E[x]^2 in x's dtype
            var = (x * x).mean(-1, keepdim=True) - x.mean(-1, keepdim=True) ** 2
            normed = (x - x.mean(-1, keepdim=True)) / (var.clamp(min=0) + eps).sqrt() * weight + bias
            y = normed * mask / (1 - p) if p < 1 else y
        if self.bug == "last_partial_lanes_dropped":  # columns past the last whole 16 left at zero
            y = y.clone()
            y[..., x.shape[-1] // 16 * 16:] = 0
        return y, mean, rstd, mask

    def layernorm_dropout_backward(self, grad_y, x, weight, mean, rstd, mask, p):
        grad_x, grad_weight, grad_bias = self.lib.layernorm_dropout_backward(grad_y, x, weight, mean, rstd, mask, p)
        if self.bug == "grad_weight_without_xhat":
            grad_weight = grad_bias
        if self.bug == "grad_x_without_mean_terms":  # rstd * weight * g only: the gradient of a fixed mean and rstd
            grad_x = grad_y * mask / (1 - p) * weight * rstd.view(*x.shape[:-1], 1)
        return grad_x, grad_weight, grad_bias


def broken(bug, path):
    from torchkata.extensions import layernorm_dropout as reference

    lib = BrokenLibrary(reference.ops(path), bug)

    def layernorm_dropout(x, weight, bias, p=0.1, seed=0, eps=1e-5):
        if not isinstance(bias, torch.Tensor):
            raise TypeError(f"layernorm_dropout: bias must be a Tensor, got {type(bias).__name__}")
        return reference.LayerNormDropout.apply(x, weight, bias, p, seed, eps, lib)

    return types.SimpleNamespace(layernorm_dropout=layernorm_dropout, keep_mask=reference.keep_mask, ops=lambda: lib)


BUGS = ["not_rescaled", "another_mask", "naive_variance", "last_partial_lanes_dropped",
        "grad_weight_without_xhat", "grad_x_without_mean_terms"]


@pytest.mark.suite_check
@pytest.mark.parametrize("bug", BUGS)
def test_broken_kernel_is_rejected(bug, extension_library):
    assert failing_checks(CHECKS, broken(bug, str(extension_library("layernorm_dropout"))))


@pytest.mark.suite_check
def test_all_zero_answer_is_rejected(extension_library):
    """The tolerance is relative to the largest |reference|: a kernel that writes nothing must not pass."""
    zeros = broken("none", str(extension_library("layernorm_dropout")))
    zeros.layernorm_dropout = lambda x, weight, bias, p=0.1, seed=0, eps=1e-5: torch.zeros_like(x)
    assert "check_values" in failing_checks(CHECKS, zeros)


@pytest.mark.suite_check
def test_kernels_are_hand_written():
    """The kernels normalise, draw and drop themselves: no ATen LayerNorm, dropout, random numbers or reductions."""
    assert_no_aten_op(["csrc/layernorm_dropout/layernorm_dropout.cpp",
                       "csrc/layernorm_dropout/layernorm_dropout_cuda.cu", "csrc/layernorm_dropout/dropout_hash.h"],
                      ["at::layer_norm", "at::native_layer_norm", "at::dropout", "at::native_dropout", "bernoulli",
                       "at::rand", "at::mean", "at::var", "at::sum", ".mean(", ".var(", ".sum(", "curand"])
