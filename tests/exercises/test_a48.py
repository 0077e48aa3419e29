"""a48: the tiny NeRF's kernels, graded against the same volume rendering in plain PyTorch (torchkata.vision.tiny_nerf)
KernelBench-style: seeded trials of ray, sample and channel counts that are no multiple of any block size, no rays,
no samples, one ray and one sample, float32 and float64, against a float64 reference with a relative tolerance on
answers large enough that an all-zero or constant answer fails; the four gradients against the reference's autograd,
and gradcheck in float64 on the CPU path; non-contiguous operands (the MLP's output sliced into sigma and rgb); the
errors; and on a GPU the CUDA half. The library is built once per session."""
import functools

import pytest
import torch

from grading import failing_checks
from kernel_source_checks import assert_no_aten_op
from torchkata.vision.tiny_nerf import composite_torch, march_torch

EXERCISE = "a48"
# (rays, samples, channels): one ray of one sample, no rays, no samples, no channels, odd sizes past a block of 256
CASES = [(1, 1, 3), (0, 5, 3), (4, 0, 3), (3, 6, 0), (1, 40, 1), (7, 2, 3), (33, 17, 5), (300, 29, 3)]
DTYPES = [torch.float32, torch.float64]
# max |ours - reference| / max |reference|: the rounding of sums over at most ~60 samples, far from any real mistake
TOLERANCE = {torch.float32: 2e-5, torch.float64: 1e-12}
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
NEAR, FAR = 2.0, 6.0


@pytest.fixture(scope="module")
def impl(impl_for, extension_library):
    """The module under test with the built library bound: (march, composite)."""
    module, path = impl_for(EXERCISE), str(extension_library("nerf"))
    return functools.partial(module.march, library_path=path), functools.partial(module.composite, library_path=path)


# the scale of sigma: rays that stay mostly transparent, turn partly opaque, or hit a wall in a few samples
DENSITIES = {"thin": 0.5, "medium": 3.0, "dense": 40.0}


def samples(rays, count, channels, dtype, seed, device="cpu", density="medium"):
    """sigma [R, S] (about a fifth exactly 0), rgb [R, S, C], deltas [R, S] and increasing depths t [R, S]."""
    g = torch.Generator().manual_seed(seed)
    sigma = torch.nn.functional.relu(torch.randn(rays, count, generator=g, dtype=dtype) + 0.8) * DENSITIES[density]
    rgb = torch.rand(rays, count, channels, generator=g, dtype=dtype)
    deltas = torch.rand(rays, count, generator=g, dtype=dtype) * 0.2 + 0.01
    t = NEAR + deltas.cumsum(1)
    return [x.to(device) for x in (sigma, rgb, deltas, t)]


def rays(count, samples_per_ray, dtype, seed, device="cpu"):
    """origins, unit directions [R, 3] and jitter [R, S] in [0, 1)."""
    g = torch.Generator().manual_seed(seed)
    origins = torch.randn(count, 3, generator=g, dtype=dtype) * 4
    directions = torch.nn.functional.normalize(torch.randn(count, 3, generator=g, dtype=dtype), dim=1)
    return [x.to(device) for x in (origins, directions, torch.rand(count, samples_per_ray, generator=g, dtype=dtype))]


def assert_matches(ours, expected, dtype, scale=None):
    """ours (of `dtype`) against a float64 reference, within the dtype's tolerance of max |reference| (or of `scale`,
    the size of what the answer was computed from, where that is larger), on an answer large enough that an
    all-zero or constant answer cannot pass; an all-zero reference (rays of no samples, gradients of no rays) is
    compared exactly."""
    assert ours.shape == expected.shape and ours.dtype == dtype and ours.device.type == expected.device.type, \
        f"got {ours.dtype} {tuple(ours.shape)} on {ours.device}, expected {dtype} {tuple(expected.shape)}"
    ours, expected = ours.detach().double(), expected.detach()
    if not expected.any():
        assert torch.equal(ours, expected)
        return
    size = float(expected.abs().max())
    allowed = TOLERANCE[dtype] * max(size, scale or 0.0)
    assert size > 10 * allowed, "the answer is too small to judge"
    error = float((ours - expected).abs().max())
    assert error <= allowed, f"max error {error:.3g}, allowed {allowed:.3g}, against max |reference| {size:.3g}"


def as_float64(tensors):
    return [x.detach().double().requires_grad_() for x in tensors]


def check_composite(impl):
    """Colour, depth and opacity over the cases, thin to dense media, float32 and float64."""
    _, composite = impl
    for device in DEVICES:
        for seed, case in enumerate(CASES):
            for dtype in DTYPES:
                for density in DENSITIES:
                    inputs = samples(*case, dtype, seed, device, density)
                    expected = composite_torch(*as_float64(inputs))
                    for ours, reference in zip(composite(*inputs), expected):
                        assert_matches(ours, reference, dtype)


def check_opacity_saturates(impl):
    """A ray through a wall (one sample of huge density) shows that sample's colour at its depth, opacity 1, and
    nothing behind it; a ray through empty space shows nothing."""
    _, composite = impl
    sigma = torch.tensor([[0.0, 1e4, 5.0, 5.0], [0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    rgb = torch.tensor([[[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]]], dtype=torch.float64).expand(2, 4, 3)
    deltas = torch.full((2, 4), 0.5, dtype=torch.float64)
    t = torch.tensor([[2.0, 2.5, 3.0, 3.5]], dtype=torch.float64).expand(2, 4)
    colour, depth, opacity = composite(sigma, rgb, deltas, t)
    assert torch.allclose(colour, torch.tensor([[0.0, 1, 0], [0, 0, 0]], dtype=torch.float64), atol=1e-12)
    assert torch.allclose(depth, torch.tensor([2.5, 0.0], dtype=torch.float64), atol=1e-12)
    assert torch.allclose(opacity, torch.tensor([1.0, 0.0], dtype=torch.float64), atol=1e-12)


def weighted_gradients(composite, inputs, weights):
    """d/d (sigma, rgb, deltas, t) of sum(colour * w_c) + sum(depth * w_d) + sum(opacity * w_o)."""
    inputs = [x.clone().requires_grad_() for x in inputs]
    loss = sum((out * w).sum() for out, w in zip(composite(*inputs), weights))
    return torch.autograd.grad(loss, inputs, allow_unused=True, materialize_grads=True)


def gradient_scales(inputs, weights):
    """The sizes the gradients are computed from: d loss / d (sigma delta) of sample i is T_{i+1} v_i minus the sum of
    w_j v_j behind it (v_j = w_c . c_j + w_d t_j + w_o, what sample j is worth to the loss), a difference of terms
    as large as max |v|, and about 0 where a ray is opaque. So the rounding of the sigma and deltas gradients is
    judged against max |v| times max |deltas| and max |sigma|; the others are plain products (None: their own size)."""
    sigma, rgb, deltas, t = (x.detach().double() for x in inputs)
    colour_w, depth_w, opacity_w = (w.detach().double() for w in weights)
    worth = (rgb * colour_w[:, None]).sum(-1) + depth_w[:, None] * t + opacity_w[:, None]
    most = float(worth.abs().max()) if worth.numel() else 0.0
    return (most * float(deltas.abs().max()) if deltas.numel() else 0.0, None,
            most * float(sigma.abs().max()) if sigma.numel() else 0.0, None)


def check_gradients(impl):
    """The four gradients against the float64 reference's autograd: for a loss on all three outputs, thin to dense
    media; for one on each output alone (the others' upstream gradients are then zeros), thin media (in dense ones
    the gradient of an opaque ray's opacity is its final transmittance, about 0: nothing to judge)."""
    _, composite = impl
    for device in DEVICES:
        for seed, case in enumerate(CASES):
            for dtype in DTYPES:
                g = torch.Generator().manual_seed(seed)
                weights = [torch.randn(shape, generator=g, dtype=torch.float64).to(device)
                           for shape in ((case[0], case[2]), (case[0],), (case[0],))]
                for density in DENSITIES:
                    inputs = samples(*case, dtype, seed + 100, device, density)
                    alone = density == "thin" and dtype == DTYPES[seed % 2]  # each dtype on half the cases
                    for used in ((0, 1, 2), (0,), (1,), (2,)) if alone else ((0, 1, 2),):
                        chosen = [w if i in used else torch.zeros_like(w) for i, w in enumerate(weights)]
                        expected = weighted_gradients(composite_torch, as_float64(inputs), chosen)
                        found = weighted_gradients(composite, inputs, [w.to(dtype) for w in chosen])
                        for ours, reference, scale in zip(found, expected, gradient_scales(inputs, chosen)):
                            assert_matches(ours, reference, dtype, scale)


def check_gradcheck(impl):
    _, composite = impl
    for seed, case in enumerate([(3, 5, 3), (2, 1, 2)]):
        inputs = [x.requires_grad_() for x in samples(*case, torch.float64, 200 + seed)]
        assert torch.autograd.gradcheck(lambda *x: composite(*x), inputs)


def check_strides(impl):
    """sigma and rgb sliced out of one [R, S, 4] output (how an MLP gives them), t and deltas transposed views:
    the reference's answer and gradients, and the operands left unchanged."""
    _, composite = impl
    for dtype in DTYPES:
        g = torch.Generator().manual_seed(7)
        field = torch.rand(37, 11, 4, generator=g, dtype=dtype) * 3
        sigma, rgb = field[..., 3], field[..., :3]
        deltas = (torch.rand(11, 37, generator=g, dtype=dtype) * 0.2).t()
        t = (NEAR + deltas.cumsum(1)).t().contiguous().t()
        before = [x.clone() for x in (sigma, rgb, deltas, t)]
        inputs = [sigma, rgb, deltas, t]
        for ours, reference in zip(composite(*inputs), composite_torch(*as_float64(inputs))):
            assert_matches(ours, reference, dtype)
        weights = [torch.randn(37, 3, dtype=torch.float64), torch.randn(37, dtype=torch.float64),
                   torch.randn(37, dtype=torch.float64)]
        for ours, reference in zip(weighted_gradients(composite, inputs, [w.to(dtype) for w in weights]),
                                   weighted_gradients(composite_torch, as_float64(inputs), weights)):
            assert_matches(ours, reference, dtype)
        assert all(torch.equal(x, y) for x, y in zip(inputs, before)), "an operand was written to"


def check_march(impl):
    """Points, depths and gaps over the cases, against the reference; a non-contiguous jitter. The gaps are
    differences of depths, so their rounding is judged against the depths' size."""
    march, _ = impl
    for device in DEVICES:
        for seed, (count, per_ray, _) in enumerate(CASES):
            for dtype in DTYPES:
                origins, directions, jitter = rays(count, per_ray, dtype, seed, device)
                near, far = (NEAR, FAR) if seed % 2 else (0.5, 3)  # an int far too
                expected = march_torch(*as_float64((origins, directions, jitter)), near, far)
                points, t, deltas = march(origins, directions, jitter, near, far)
                assert_matches(points, expected[0], dtype)
                assert_matches(t, expected[1], dtype)
                assert_matches(deltas, expected[2], dtype, scale=float(far))
    origins, directions, jitter = rays(5, 8, torch.float64, 3)
    jitter = jitter.t().contiguous().t()
    for ours, reference in zip(march(origins, directions, jitter, NEAR, FAR),
                               march_torch(origins, directions, jitter, NEAR, FAR)):
        assert_matches(ours, reference, torch.float64)


def check_errors_name_the_problem(impl):
    march, composite = impl
    sigma, rgb, deltas, t = samples(4, 6, 3, torch.float32, 0)
    with pytest.raises(RuntimeError, match=r"nerf_composite: sigma must be 2-D \[rays, samples\], got shape \[24\]"):
        composite(sigma.flatten(), rgb, deltas, t)
    with pytest.raises(RuntimeError, match=r"nerf_composite: rgb must be \[rays, samples, channels\] with sigma's "
                                           r"\[rays, samples\] = \[4, 6\], got shape \[4, 5, 3\]"):
        composite(sigma, rgb[:, :5], deltas, t)
    with pytest.raises(RuntimeError, match=r"nerf_composite: sigma and deltas must have one shape, got \[4, 6\] and "
                                           r"\[4, 5\]"):
        composite(sigma, rgb, deltas[:, :5], t)
    with pytest.raises(RuntimeError, match="nerf_composite: sigma and t must have one dtype, got Float and Double"):
        composite(sigma, rgb, deltas, t.double())
    with pytest.raises(RuntimeError, match="nerf_composite: rgb must have sigma's dtype and device, got Double"):
        composite(sigma, rgb.double(), deltas, t)
    with pytest.raises(RuntimeError, match="nerf_composite: sigma must be float32 or float64, got Long"):
        composite(sigma.long(), rgb.long(), deltas.long(), t.long())
    with pytest.raises(TypeError, match="nerf_composite: rgb must be a Tensor, got list"):
        composite(sigma, [[[0.0]]], deltas, t)
    with pytest.raises(TypeError, match="nerf_composite: t must be a Tensor, got float"):
        composite(sigma, rgb, deltas, 2.0)
    origins, directions, jitter = rays(4, 6, torch.float32, 0)
    with pytest.raises(RuntimeError, match=r"nerf_march: origins must be \[rays, 3\], got shape \[4, 2\]"):
        march(origins[:, :2], directions, jitter, NEAR, FAR)
    with pytest.raises(RuntimeError, match=r"nerf_march: origins and directions must have one shape, got \[4, 3\] "
                                           r"and \[3, 3\]"):
        march(origins, directions[:3], jitter, NEAR, FAR)
    with pytest.raises(RuntimeError, match=r"nerf_march: jitter must be \[rays, samples\] with origins' 4 rays, got "
                                           r"shape \[3, 6\]"):
        march(origins, directions, jitter[:3], NEAR, FAR)
    with pytest.raises(RuntimeError, match="nerf_march: jitter must have origins' dtype and device, got Double"):
        march(origins, directions, jitter.double(), NEAR, FAR)
    with pytest.raises(RuntimeError, match="nerf_march: near and far must be finite with near < far, got near=3 and "
                                           "far=3"):
        march(origins, directions, jitter, 3.0, 3.0)
    with pytest.raises(RuntimeError, match="nerf_march: near and far must be finite with near < far, got near=2 and "
                                           "far=inf"):
        march(origins, directions, jitter, NEAR, float("inf"))
    with pytest.raises(TypeError, match="nerf_march: jitter must be a Tensor, got list"):
        march(origins, directions, [[0.5]], NEAR, FAR)
    with pytest.raises(TypeError, match="nerf_march: near must be a number, got str"):
        march(origins, directions, jitter, "2", FAR)
    with pytest.raises(TypeError, match="nerf_march: far must be a number, got bool"):
        march(origins, directions, jitter, NEAR, True)


CHECKS = [check_composite, check_opacity_saturates, check_gradients, check_gradcheck, check_strides, check_march,
          check_errors_name_the_problem]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_nerf(impl, check):
    check(impl)


def test_backward_op_errors_name_the_problem(extension_library):
    from torchkata.extensions import nerf as reference

    ops = reference.ops(str(extension_library("nerf")))
    sigma, rgb, deltas, t = samples(4, 6, 3, torch.float32, 0)
    with pytest.raises(RuntimeError, match=r"nerf_composite_backward: grad_colour must have shape \[4, 3\], got "
                                           r"\[4, 2\]"):
        ops.nerf_composite_backward(torch.ones(4, 2), torch.ones(4), torch.ones(4), sigma, rgb, deltas, t)
    with pytest.raises(RuntimeError, match=r"nerf_composite_backward: grad_opacity must have shape \[4\], got \[5\]"):
        ops.nerf_composite_backward(torch.ones(4, 3), torch.ones(4), torch.ones(5), sigma, rgb, deltas, t)
    with pytest.raises(RuntimeError, match="nerf_composite_backward: grad_depth must have sigma's dtype and device"):
        ops.nerf_composite_backward(torch.ones(4, 3), torch.ones(4).double(), torch.ones(4), sigma, rgb, deltas, t)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the CUDA kernels are only compiled here "
                                                          "(tests/pipeline/test_kernel_sources.py, sm_80 and sm_90)")
def test_cuda_half_against_torch(impl):
    """Many rays (several blocks, the last one partial) and an odd sample count on CUDA tensors: the outputs, the
    gradients and the march against the float64 reference; operands on two devices are refused."""
    march, composite = impl
    inputs = samples(5000, 67, 3, torch.float32, 51, "cuda")
    expected = composite_torch(*as_float64(inputs))
    for ours, reference in zip(composite(*inputs), expected):
        assert_matches(ours, reference, torch.float32)
    weights = [torch.randn(5000, 3, dtype=torch.float64, device="cuda"),
               torch.randn(5000, dtype=torch.float64, device="cuda"), torch.randn(5000, dtype=torch.float64,
                                                                                device="cuda")]
    for ours, reference in zip(weighted_gradients(composite, inputs, [w.float() for w in weights]),
                               weighted_gradients(composite_torch, as_float64(inputs), weights)):
        assert_matches(ours, reference, torch.float32)
    origins, directions, jitter = rays(5000, 67, torch.float32, 52, "cuda")
    expected = march_torch(*as_float64((origins, directions, jitter)), NEAR, FAR)
    for ours, reference, scale in zip(march(origins, directions, jitter, NEAR, FAR), expected, (None, None, FAR)):
        assert_matches(ours, reference, torch.float32, scale)
    with pytest.raises(RuntimeError, match="nerf_composite: sigma and t must be on one device"):
        composite(*inputs[:3], inputs[3].cpu())


def test_op_reports_its_cuda_half(extension_library):
    from torchkata.extensions import nerf as reference

    ops = reference.ops(str(extension_library("nerf")))
    assert ops.nerf_has_cuda() == (torch.version.cuda is not None and torch.cuda.is_available())


# --- the grader rejects wrong answers ----------------------------------------------------------------------------

def composite_bug(bug):
    """The compositing in plain PyTorch with one mistake people make."""
    def composite(sigma, rgb, deltas, t):
        optical_depth = sigma if bug == "delta_ignored" else sigma * deltas
        alpha = optical_depth.clamp(max=1) if bug == "alpha_is_sigma_delta" else -torch.expm1(-optical_depth)
        ones = torch.ones_like(optical_depth[:, :1])
        inclusive = torch.exp(-optical_depth).cumprod(1)
        exclusive = torch.cat([ones, torch.exp(-optical_depth)], 1).cumprod(1)[:, :-1]
        weights = (inclusive if bug == "inclusive_transmittance" else exclusive) * alpha
        if bug == "weights_normalised":  # as if every ray were opaque
            weights = weights / weights.sum(1, keepdim=True).clamp(min=1e-10)
        depth = (weights * t).sum(1) if bug != "depth_unweighted" else t.mean(1)
        opacity = alpha.sum(1) if bug == "opacity_sums_alpha" else weights.sum(1)
        return (weights[..., None] * rgb).sum(1), depth, opacity

    return composite


def march_bug(bug):
    def march(origins, directions, jitter, near, far):
        points, t, deltas = march_torch(origins, directions, jitter, near, far)
        if bug == "jitter_ignored":
            return march_torch(origins, directions, torch.full_like(jitter, 0.5), near, far)
        if bug == "last_gap_infinite":  # the NeRF paper's 1e10: then nothing behind far would be background
            deltas = torch.cat([deltas[:, :-1], torch.full_like(deltas[:, -1:], 1e10)], 1)
        if bug == "points_ignore_direction":
            points = origins[:, None] + t[..., None]
        return points, t, deltas

    return march


def broken(bug):
    """The reference's Function with one deliberate mistake, made around the kernels."""
    from torchkata.extensions import nerf as reference

    class Broken(torch.autograd.Function):
        @staticmethod
        def forward(ctx, sigma, rgb, deltas, t, lib):
            ctx.save_for_backward(sigma, rgb, deltas, t)
            ctx.lib = lib
            if bug == "float64_through_float32" and sigma.dtype == torch.float64:
                return [x.double() for x in lib.nerf_composite(sigma.float(), rgb.float(), deltas.float(), t.float())]
            return lib.nerf_composite(sigma, rgb, deltas, t)

        @staticmethod
        def backward(ctx, grad_colour, grad_depth, grad_opacity):
            if bug == "depth_gradient_ignored":
                grad_depth = torch.zeros_like(grad_depth)
            grads = list(ctx.lib.nerf_composite_backward(grad_colour, grad_depth, grad_opacity, *ctx.saved_tensors))
            if bug == "no_grad_deltas":
                grads[2] = None
            if bug == "grad_sigma_and_deltas_swapped":
                grads[0], grads[2] = grads[2], grads[0]
            return *grads, None

    def composite(sigma, rgb, deltas, t, library_path=None):
        return Broken.apply(sigma, rgb, deltas, t, reference.ops(library_path))

    return composite


@pytest.mark.suite_check
@pytest.mark.parametrize("bug", ["delta_ignored", "alpha_is_sigma_delta", "inclusive_transmittance",
                                 "weights_normalised", "depth_unweighted", "opacity_sums_alpha"])
def test_broken_compositing_is_rejected(bug, impl):
    assert failing_checks([check_composite], (impl[0], composite_bug(bug)))


@pytest.mark.suite_check
@pytest.mark.parametrize("bug", ["jitter_ignored", "last_gap_infinite", "points_ignore_direction"])
def test_broken_march_is_rejected(bug, impl):
    assert failing_checks([check_march], (march_bug(bug), impl[1]))


@pytest.mark.suite_check
@pytest.mark.parametrize("bug, check", [("float64_through_float32", check_composite),
                                        ("depth_gradient_ignored", check_gradcheck),
                                        ("no_grad_deltas", check_gradcheck),
                                        ("grad_sigma_and_deltas_swapped", check_gradcheck)],
                         ids=lambda x: getattr(x, "__name__", x))
def test_broken_function_is_rejected(bug, check, impl, extension_library):
    composite = functools.partial(broken(bug), library_path=str(extension_library("nerf")))
    assert failing_checks([check], (impl[0], composite))


@pytest.mark.suite_check
def test_all_zero_and_constant_answers_are_rejected(impl):
    """The tolerance is relative to the largest |reference|: a kernel that writes zeros, or one constant, must not
    pass."""
    def zeros(sigma, rgb, deltas, t):
        return sigma.new_zeros(rgb.shape[0], rgb.shape[2]), sigma.new_zeros(len(sigma)), sigma.new_zeros(len(sigma))

    def constant(sigma, rgb, deltas, t):
        return [x + 0.5 for x in zeros(sigma, rgb, deltas, t)]

    for answer in (zeros, constant):
        assert failing_checks([check_composite], (impl[0], answer))


@pytest.mark.suite_check
def test_kernels_are_hand_written():
    """The kernels composite themselves: no ATen cumprod, exp or sum does it for them."""
    assert_no_aten_op(["csrc/nerf/nerf.cpp", "csrc/nerf/nerf_cuda.cu", "csrc/nerf/volume_render.h"],
                      ["at::cumprod", "at::exp", "at::sum", "at::mul", "at::cumsum", "at::native::", ".cumprod(",
                       ".sum(", ".exp("])
