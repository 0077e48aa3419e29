"""a49: the Gaussian-splatting rasterizer, graded KernelBench-style against the reference's plain-PyTorch rasterizer
(`rasterize_dense`, every pixel against every gaussian, autograd for its backward): seeded trials of sizes off the
16-pixel tile grid, one pixel, no gaussians, one gaussian, gaussians off-screen and culled, float32 and float64, with a
relative tolerance and a check that the answer is large enough to judge; the four gradients against autograd through
it, and gradcheck in float64 on the CPU path; blending, tiles and early termination worked out by hand; the EWA
projection, and whole renders through both rasterizers; non-contiguous operands; the errors; and on a GPU the CUDA half.
The library is built once per session."""
import functools
from types import SimpleNamespace

import pytest
import torch

from grading import failing_checks
from kernel_source_checks import assert_no_aten_op
from torchkata.extensions.splat_cases import image_and_grads, random_gaussians
from torchkata.extensions import splat as reference

EXERCISE = "a49"
# (height, width, gaussians, channels): one pixel, no gaussians, one gaussian, a whole tile, sizes off the tile grid
CASES = [(1, 1, 1, 3), (1, 1, 0, 3), (19, 21, 0, 1), (17, 23, 1, 3), (16, 16, 9, 3), (33, 18, 40, 1), (5, 40, 25, 4),
         (40, 37, 80, 3)]
# max |ours - plain| / max |plain|: rounding of exp and of sums in another order, far from any real mistake
TOLERANCE = {torch.float32: 2e-5, torch.float64: 1e-11}
GRAD_TOLERANCE = {torch.float32: 2e-4, torch.float64: 1e-9}
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@pytest.fixture(scope="module")
def splat(impl_for, extension_library):
    module = impl_for(EXERCISE)
    return SimpleNamespace(rasterize=functools.partial(module.rasterize, library_path=str(extension_library("splat"))),
                           rasterize_dense=module.rasterize_dense, project=module.project, render=module.render,
                           Camera=module.Camera)


def gaussians_for(case, dtype, seed, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    h, w, n, c = case
    return [t.to(device) for t in random_gaussians(n, h, w, c, dtype, g)], torch.randn(c, h, w, generator=g,
                                                                                         dtype=dtype).to(device)


def assert_matches(ours, expected, tolerance, empty_ok=False, gradient=False):
    """Shape, dtype, device, and the values within the relative tolerance of an answer large enough that an all-zero
    or constant answer cannot pass: an image above 100 x the tolerance, a gradient (which may be small where few
    pixels see a gaussian) above 0. empty_ok: an answer of zeros, such as the gradient of no gaussians, compared
    exactly."""
    assert ours.shape == expected.shape and ours.dtype == expected.dtype and ours.device == expected.device
    if expected.numel() == 0 or (empty_ok and not expected.any()):
        assert torch.equal(ours, expected)
        return
    scale = float(expected.abs().max())
    assert scale > (0 if gradient else 100 * tolerance), "the answer is too small to judge"
    error = float((ours - expected).abs().max())
    assert error <= tolerance * scale, f"max error {error:.3g} against max |plain| {scale:.3g}"


def check_forward(splat):
    """Both of the learner's rasterizers against the reference's plain one; a background of 0 and of 0.25."""
    for device in DEVICES:
        for seed, case in enumerate(CASES):
            for dtype in (torch.float32, torch.float64):
                gaussians, _ = gaussians_for(case, dtype, seed, device)
                background = 0.25 * (seed % 2)
                expected = reference.rasterize_dense(*gaussians, case[0], case[1], background)
                for rasterizer in (splat.rasterize, splat.rasterize_dense):
                    assert_matches(rasterizer(*gaussians, case[0], case[1], background), expected, TOLERANCE[dtype],
                                   empty_ok=True)


def check_default_background_is_black(splat):
    """Both rasterizers and render, called without a background."""
    gaussians, _ = gaussians_for((19, 21, 12, 3), torch.float64, 5)
    expected = reference.rasterize_dense(*gaussians, 19, 21, 0.0)
    for rasterizer in (splat.rasterize, splat.rasterize_dense):
        assert_matches(rasterizer(*gaussians, 19, 21), expected, TOLERANCE[torch.float64])
    scene, camera = random_scene(20, torch.float64, 3), turned_camera(splat.Camera)
    expected = reference.render(*scene, turned_camera(reference.Camera), reference.rasterize_dense, 0.0)
    assert_matches(splat.render(*scene, camera, splat.rasterize), expected, TOLERANCE[torch.float64])


def one_gaussian(x, y, opacity, colour, radius=4, conic=(0.5, 0.0, 0.5), dtype=torch.float64):
    return [torch.tensor([[x, y]], dtype=dtype), torch.tensor([conic], dtype=dtype),
            torch.tensor([colour], dtype=dtype), torch.tensor([opacity], dtype=dtype),
            torch.tensor([radius], dtype=torch.int32)]


def check_one_gaussian_by_hand(splat):
    """At its mean's pixel opacity x colour over the background; one pixel right, exp(-a / 2) of that; pixel
    centres at +0.5; in a tile its square does not reach, the background alone, however wide its falloff."""
    gaussians = one_gaussian(2.5, 3.5, 0.6, [0.2, 0.5, 0.9])
    for rasterizer in (splat.rasterize, splat.rasterize_dense):
        image = rasterizer(*gaussians, 9, 7, 0.1)
        assert image.shape == (3, 9, 7)
        expected = 0.6 * torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64) + 0.4 * 0.1
        torch.testing.assert_close(image[:, 3, 2], expected, rtol=1e-12, atol=0)
        alpha = 0.6 * torch.exp(torch.tensor(-0.25, dtype=torch.float64))
        torch.testing.assert_close(image[:, 3, 3], alpha * torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64) +
                                   (1 - alpha) * 0.1, rtol=1e-12, atol=0)
        wide = one_gaussian(8.5, 8.5, 0.9, [1.0], radius=3, conic=(0.01, 0.0, 0.01))
        image = rasterizer(*wide, 20, 40, 0.0)
        assert float(image[0, 8, 15]) > 0.5, "inside the first tile the gaussian shows"
        assert not image[:, :, 16:].any(), "a gaussian was drawn in a tile its square does not reach"
        assert not rasterizer(*one_gaussian(8.5, 8.5, 0.9, [1.0], radius=0), 20, 40, 0.0).any(), "radius 0 is culled"


def check_tiles_by_hand(splat):
    """A gaussian belongs to the tiles its square overlaps: x + r >= 16 tx and x - r < 16 (tx + 1) (the same in y).
    A wide falloff in the middle tile of three shows in no other; a square that ends exactly on a tile's near edge
    is in it, one that starts exactly on its far edge is not; radius 1 is drawn, 0 and -1 are culled."""
    for rasterizer in (splat.rasterize, splat.rasterize_dense):
        image = rasterizer(*one_gaussian(24.5, 8.5, 0.9, [1.0], radius=3, conic=(0.01, 0.0, 0.01)), 20, 48, 0.0)
        assert float(image[0, 8, 24]) > 0.5
        assert not image[:, :, :16].any() and not image[:, :, 32:].any() and not image[:, 16:].any(), \
            "a gaussian was drawn in a tile its square does not reach"
        # along x, then along y: a square from 8 to 16 (radius 4) touches tile 1; one from 16 to 24 misses tile 0
        for ending, starting, near, far in (((12.0, 8.0), (20.0, 8.0), (8, 16), (8, 15)),
                                            ((8.0, 12.0), (8.0, 20.0), (16, 8), (15, 8))):
            image = rasterizer(*one_gaussian(*ending, 0.9, [1.0]), 32, 32, 0.0)
            assert float(image[(0, *near)]) > 0, "a square ending on a tile's edge is in that tile"
            image = rasterizer(*one_gaussian(*starting, 0.9, [1.0]), 32, 32, 0.0)
            assert float(image[(0, *far)]) == 0, "a square starting on a tile's far edge is not in it"
        for radius in (1, 0, -1):
            image = rasterizer(*one_gaussian(4.5, 4.5, 0.9, [1.0], radius=radius), 9, 9, 0.0)
            assert bool(image.any()) == (radius > 0), f"radius {radius}"


def stack(colours, opacities):
    """Gaussians on one pixel's centre (4.5, 4.5), front to back: their alpha there is their opacity, exactly."""
    n = len(colours)
    return [torch.full((n, 2), 4.5, dtype=torch.float64), torch.tensor([[0.5, 0.0, 0.5]] * n, dtype=torch.float64),
            torch.tensor(colours, dtype=torch.float64), torch.tensor(opacities, dtype=torch.float64),
            torch.full((n,), 4, dtype=torch.int32)]


def check_blending_by_hand(splat):
    """Front to back: weights alpha T = .95, .0475, .002375; the fourth would take T from 1.25e-4 below 1e-4, so it
    and the rest are left out (its colour has no effect and no gradient); order matters; opacity 1 is capped at
    .99; a gaussian fainter than 1/255 is skipped, one of 1/255 drawn; the one that leaves exactly 1e-4 drawn."""
    colours = [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [7.0, 7.0]]
    weights = torch.tensor([0.95, 0.0475, 0.002375, 0.0], dtype=torch.float64)
    for rasterizer in (splat.rasterize, splat.rasterize_dense):
        gaussians = stack(colours, [0.95] * 4)
        gaussians[2].requires_grad_()
        image = rasterizer(*gaussians, 9, 9, 0.2)
        expected = weights @ torch.tensor(colours, dtype=torch.float64) + 1.25e-4 * 0.2
        torch.testing.assert_close(image[:, 4, 4].detach(), expected, rtol=1e-12, atol=0)
        grad, = torch.autograd.grad(image[0, 4, 4], gaussians[2])
        torch.testing.assert_close(grad[:, 0], weights, rtol=1e-12, atol=0)
        assert not grad[:, 1].any()
        swapped = rasterizer(*stack([colours[1], colours[0], *colours[2:]], [0.95] * 4), 9, 9, 0.2)
        torch.testing.assert_close(swapped[:, 4, 4], expected.flip(0), rtol=1e-12, atol=0)
        capped = rasterizer(*one_gaussian(4.5, 4.5, 1.0, [1.0]), 9, 9, 0.0)
        torch.testing.assert_close(capped[0, 4, 4], torch.tensor(0.99, dtype=torch.float64), rtol=1e-12, atol=0)
        faint = rasterizer(*one_gaussian(4.5, 4.5, 1 / 300, [1.0]), 9, 9, 0.5)
        assert torch.equal(faint, torch.full_like(faint, 0.5)), "a gaussian fainter than 1/255 was drawn"
        assert float(rasterizer(*one_gaussian(4.5, 4.5, 1 / 255, [1.0]), 9, 9, 0.0)[0, 4, 4]) == 1 / 255, \
            "a gaussian of alpha 1/255 exactly is drawn"
        # the light left after the third is 1e-4 exactly (in float64): not below the bar, so the third is drawn
        last = rasterizer(*stack([[0.0], [0.0], [1.0]], [0.98, 0.99, 0.5000000000000009]), 9, 9, 0.0)[0, 4, 4]
        torch.testing.assert_close(last, torch.tensor(0.5000000000000009 * 0.02 * 0.01, dtype=torch.float64),
                                   rtol=1e-12, atol=0)


def check_gradients(splat):
    """d/d means2d, conics, colours and opacities of sum(image * weights) against autograd through the reference's
    plain rasterizer; and of sum(image), whose upstream gradient is an expanded (stride-0) tensor."""
    for device in DEVICES:
        for seed, case in enumerate(CASES):
            for dtype in (torch.float32, torch.float64):
                gaussians, weights = gaussians_for(case, dtype, seed, device)
                expected = image_and_grads(reference.rasterize_dense, gaussians, case[0], case[1], 0.25, weights)
                for rasterizer in (splat.rasterize, splat.rasterize_dense):
                    found = image_and_grads(rasterizer, gaussians, case[0], case[1], 0.25, weights)
                    for ours, plain in zip(found[1:], expected[1:]):
                        assert_matches(ours, plain, GRAD_TOLERANCE[dtype], empty_ok=True, gradient=True)
    gaussians, _ = gaussians_for((21, 19, 15, 3), torch.float64, 11)
    found = []
    for rasterizer in (splat.rasterize, reference.rasterize_dense):
        *leaves, radii = (t.clone().requires_grad_(t.is_floating_point()) for t in gaussians)
        found.append(torch.autograd.grad(rasterizer(*leaves, radii, 21, 19).sum(), leaves))
    for ours, plain in zip(*found):
        assert_matches(ours, plain, GRAD_TOLERANCE[torch.float64], gradient=True)


def check_gradcheck(splat):
    """The kernel's backward against finite differences, float64, on gaussians spanning two tiles (none capped at
    0.99, whose gradient is 0 by the cap)."""
    means2d, conics, colours, opacities, radii = random_gaussians(5, 6, 20, 2, torch.float64,
                                                                  torch.Generator().manual_seed(23))
    leaves = [t.requires_grad_() for t in (means2d, conics, colours, opacities * 0.9)]
    assert torch.autograd.gradcheck(lambda *x: splat.rasterize(*x, radii.clamp(min=1), 6, 20, 0.3), leaves)


def random_scene(n, dtype, seed):
    """3-D gaussians in front of, around and behind a camera at the origin."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g, dtype=dtype) * torch.tensor([1.0, 1.0, 1.5], dtype=dtype)
    means[:, 2] += 2.5
    means[0, 2] = -1.0  # behind the camera
    return (means, torch.randn(n, 3, generator=g, dtype=dtype) * 0.4 - 2.0, torch.randn(n, 4, generator=g, dtype=dtype),
            torch.rand(n, 3, generator=g, dtype=dtype), torch.rand(n, generator=g, dtype=dtype) * 0.9 + 0.05)


def turned_camera(camera_class, dtype=torch.float64):
    """A 35 x 27 camera (odd sizes: its centre falls between pixels) turned about its y and z axes and moved."""
    angle_y, angle_z = torch.tensor(0.3, dtype=dtype), torch.tensor(-0.5, dtype=dtype)
    turn_y = torch.tensor([[angle_y.cos(), 0, angle_y.sin()], [0, 1, 0], [-angle_y.sin(), 0, angle_y.cos()]])
    turn_z = torch.tensor([[angle_z.cos(), -angle_z.sin(), 0], [angle_z.sin(), angle_z.cos(), 0], [0, 0, 1]])
    return camera_class(width=35, height=27, focal=30.0, rotation=(turn_y @ turn_z).to(dtype),
                        translation=torch.tensor([0.2, -0.1, 0.4], dtype=dtype))


def check_projection(splat):
    """EWA splatting against the reference on a turned camera (and a gaussian behind it: radius 0); by hand, an
    isotropic gaussian of standard deviation s at depth z on the axis: at the image's centre, variance (f s / z)^2
    + 0.3 in every direction, radius ceil(3 sqrt(variance)); and one turned 90 degrees about the axis, its long
    axis now along y."""
    means, log_scales, quats, _, _ = random_scene(30, torch.float64, 3)
    found = splat.project(means, log_scales, quats, turned_camera(splat.Camera))
    expected = reference.project(means, log_scales, quats, turned_camera(reference.Camera))
    for ours, plain in zip(found, expected):
        assert ours.dtype == plain.dtype and ours.shape == plain.shape
        if plain.dtype == torch.int32:
            assert torch.equal(ours, plain)
        else:
            torch.testing.assert_close(ours[1:], plain[1:], rtol=1e-10, atol=0)  # the culled one's are any value
    assert int(found[3][0]) == 0, "a gaussian behind the camera was not culled"
    near = torch.tensor([[0.0, 0.0, 0.2], [0.0, 0.0, 0.2001]], dtype=torch.float64)  # on the near plane; beyond it
    radii = splat.project(near, torch.full((2, 3), -3.0, dtype=torch.float64), torch.eye(2, 4, dtype=torch.float64),
                          splat.Camera(width=8, height=8, focal=8.0))[3]
    assert int(radii[0]) == 0 and int(radii[1]) > 0, "only gaussians beyond the near plane (0.2) are drawn"
    camera = splat.Camera(width=40, height=30, focal=50.0)  # at the origin, looking down z
    means2d, conics, depths, radii = splat.project(torch.tensor([[0.0, 0.0, 4.0]], dtype=torch.float64),
                                                   torch.full((1, 3), -1.5, dtype=torch.float64),
                                                   torch.tensor([[0.3, -0.2, 0.7, 0.1]], dtype=torch.float64), camera)
    variance = (50.0 * torch.tensor(-1.5, dtype=torch.float64).exp() / 4.0) ** 2 + 0.3
    torch.testing.assert_close(means2d, torch.tensor([[20.0, 15.0]], dtype=torch.float64), rtol=1e-12, atol=0)
    torch.testing.assert_close(conics, torch.stack([1 / variance, 0 * variance, 1 / variance])[None], rtol=1e-10,
                               atol=1e-14)
    assert float(depths) == 4.0 and int(radii) == int(torch.ceil(3 * variance.sqrt()))
    turned = torch.tensor([[0.5**0.5, 0.0, 0.0, 0.5**0.5]], dtype=torch.float64)  # 90 degrees about z
    _, conics, _, _ = splat.project(torch.tensor([[0.0, 0.0, 4.0]], dtype=torch.float64),
                                    torch.tensor([[0.2, 0.05, 0.1]], dtype=torch.float64).log(), turned, camera)
    variances = (50.0 * torch.tensor([0.05, 0.2], dtype=torch.float64) / 4.0) ** 2 + 0.3  # the long axis along y
    torch.testing.assert_close(conics[0, [0, 2]], 1 / variances, rtol=1e-10, atol=0)
    assert abs(float(conics[0, 1])) < 1e-12


def render_grads(render, rasterizer, scene, camera):
    scene = [t.clone().requires_grad_() for t in scene]
    image = render(*scene, camera, rasterizer, 0.1)
    weights = torch.linspace(-1, 1, image.numel(), dtype=image.dtype).reshape(image.shape)
    return image.detach(), *torch.autograd.grad((image * weights).sum(), scene)


def check_render(splat):
    """A scene through the learner's render and kernel against the reference's render and plain rasterizer: the
    image and the gradients of all five parameters; the gaussians' order in the input does not matter (the depth
    sort decides)."""
    scene = random_scene(40, torch.float64, 7)
    camera = turned_camera(splat.Camera)
    expected = render_grads(reference.render, reference.rasterize_dense, scene, turned_camera(reference.Camera))
    for rasterizer in (splat.rasterize, splat.rasterize_dense):
        for ours, plain in zip(render_grads(splat.render, rasterizer, scene, camera), expected):
            assert_matches(ours, plain, GRAD_TOLERANCE[torch.float64], gradient=True)
    shuffled = [t[torch.randperm(40, generator=torch.Generator().manual_seed(1))] for t in scene]
    assert_matches(splat.render(*shuffled, camera, splat.rasterize, 0.1), expected[0], TOLERANCE[torch.float64])


def check_strides(splat):
    """Sliced, transposed and strided operands give the plain answer and gradients, and are left unchanged."""
    for dtype in (torch.float32, torch.float64):
        (means2d, conics, colours, opacities, radii), weights = gaussians_for((23, 30, 30, 3), dtype, 31)
        means2d = torch.cat([means2d, means2d], 1)[:, 1:3]  # rows of 4, columns 1 and 2
        means2d[:, 0] = means2d[:, 1].flip(0)
        colours = colours.T.contiguous().T
        opacities, radii = torch.stack([opacities, opacities])[0], torch.stack([radii, radii], 1)[:, 1]
        gaussians = [means2d, conics, colours, opacities, radii]
        before = [t.clone() for t in gaussians]
        expected = image_and_grads(reference.rasterize_dense, [t.contiguous() for t in gaussians], 23, 30, 0.0, weights)
        for ours, plain in zip(image_and_grads(splat.rasterize, gaussians, 23, 30, 0.0, weights), expected):
            assert_matches(ours, plain, GRAD_TOLERANCE[dtype], gradient=True)
        assert all(torch.equal(a, b) for a, b in zip(gaussians, before)), "an operand was written to"


def check_errors_name_the_problem(splat):
    (means2d, conics, colours, opacities, radii), _ = gaussians_for((10, 12, 5, 3), torch.float32, 41)
    rasterize = splat.rasterize

    def fails(error, match, *args):
        with pytest.raises(error, match=match):
            rasterize(*args)

    fails(RuntimeError, r"splat_rasterize: means2d must be \[N, 2\], got shape \[5, 3\]", conics, conics, colours,
          opacities, radii, 10, 12)
    fails(RuntimeError, r"splat_rasterize: conics must be \[N, 3\] with N = 5, got shape \[4, 3\]", means2d,
          conics[:4], colours, opacities, radii, 10, 12)
    fails(RuntimeError, r"splat_rasterize: colours must be \[N, C\] with N = 5 and 1 <= C <= 4, got shape \[5, 5\]",
          means2d, conics, torch.ones(5, 5), opacities, radii, 10, 12)
    fails(RuntimeError, r"splat_rasterize: opacities must be \[N\] with N = 5, got shape \[5, 1\]", means2d, conics,
          colours, opacities[:, None], radii, 10, 12)
    fails(RuntimeError, r"splat_rasterize: radii must be \[N\] with N = 5, got shape \[4\]", means2d, conics, colours,
          opacities, radii[:4], 10, 12)
    fails(RuntimeError, "splat_rasterize: radii must be int32, got Long", means2d, conics, colours, opacities,
          radii.long(), 10, 12)
    fails(RuntimeError, r"splat_rasterize: colours must have the dtype of means2d \(Float\), got Double", means2d,
          conics, colours.double(), opacities, radii, 10, 12)
    fails(RuntimeError, "splat_rasterize: means2d must be float32 or float64, got Long", means2d.long(), conics,
          colours, opacities, radii, 10, 12)
    fails(RuntimeError, "splat_rasterize: the image must be 1 to 2\\^20 pixels a side, got 0 x 12", means2d, conics,
          colours, opacities, radii, 0, 12)
    fails(TypeError, "rasterize: conics must be a Tensor, got list", means2d, [[1.0, 0.0, 1.0]], colours, opacities,
          radii, 10, 12)
    fails(TypeError, "rasterize: width must be an int, got float", means2d, conics, colours, opacities, radii, 10, 12.0)
    fails(TypeError, "rasterize: background must be a float, got str", means2d, conics, colours, opacities, radii, 10,
          12, "white")


CHECKS = [check_forward, check_default_background_is_black, check_one_gaussian_by_hand, check_tiles_by_hand,
          check_blending_by_hand, check_gradients, check_gradcheck, check_projection, check_render, check_strides,
          check_errors_name_the_problem]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_splat(splat, check):
    check(splat)


def test_plain_rasterizer_errors_name_the_problem():
    with pytest.raises(TypeError, match="rasterize_dense: radii must be a Tensor, got list"):
        reference.rasterize_dense(torch.zeros(1, 2), torch.ones(1, 3), torch.ones(1, 3), torch.ones(1), [3], 4, 4)


def test_backward_op_errors_name_the_problem(extension_library):
    ops = reference.ops(str(extension_library("splat")))
    (means2d, conics, colours, opacities, radii), _ = gaussians_for((10, 12, 5, 3), torch.float32, 43)
    image, contributors = ops.splat_rasterize(means2d, conics, colours, opacities, radii, 10, 12, 0.0)
    gaussians = (means2d, conics, colours, opacities, radii)
    with pytest.raises(RuntimeError,
                       match=r"splat_rasterize_backward: image must be \[C, H, W\], got shape \[10, 12\]"):
        ops.splat_rasterize_backward(image[0], image[0], contributors, *gaussians)
    with pytest.raises(RuntimeError, match="splat_rasterize_backward: grad_image and image must have one shape"):
        ops.splat_rasterize_backward(image[:, 1:], image, contributors, *gaussians)
    with pytest.raises(RuntimeError, match="splat_rasterize_backward: image must have the 3 channels of colours"):
        ops.splat_rasterize_backward(image[:2], image[:2], contributors, *gaussians)
    with pytest.raises(RuntimeError, match=r"splat_rasterize_backward: contributors must be the forward's int32 "
                                           r"\[10, 12\] on its device, got Long"):
        ops.splat_rasterize_backward(image, image, contributors.long(), *gaussians)


def test_cpu_backward_is_deterministic(extension_library):
    """Many gaussians over few tiles, on one thread and on several: the gradients are the same, bit for bit."""
    ops = reference.ops(str(extension_library("splat")))
    (means2d, conics, colours, opacities, radii), weights = gaussians_for((40, 37, 200, 3), torch.float32, 47)
    image, contributors = ops.splat_rasterize(means2d, conics, colours, opacities, radii, 40, 37, 0.0)
    threads = torch.get_num_threads()
    results = []
    try:
        for count in (1, 2, 1, 3):
            torch.set_num_threads(count)
            results.append(ops.splat_rasterize_backward(weights, image, contributors, means2d, conics, colours,
                                                        opacities, radii))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for result in results[1:] for a, b in zip(results[0], result))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the CUDA kernels are only compiled here "
                                                          "(tests/pipeline/test_kernel_sources.py, sm_80 and sm_90)")
def test_cuda_half_against_plain(splat):
    """Many gaussians over a 300 x 170 image (several batches of 256 per tile) on the GPU against the plain
    rasterizer on the CPU."""
    gaussians, weights = gaussians_for((170, 300, 700, 3), torch.float32, 51)
    expected = image_and_grads(reference.rasterize_dense, gaussians, 170, 300, 0.1, weights)
    found = image_and_grads(splat.rasterize, [t.cuda() for t in gaussians], 170, 300, 0.1, weights.cuda())
    for ours, plain in zip(found, expected):
        assert_matches(ours.cpu(), plain, GRAD_TOLERANCE[torch.float32], gradient=True)
    with pytest.raises(RuntimeError, match="splat_rasterize: conics must be on the device of means2d"):
        splat.rasterize(gaussians[0].cuda(), *gaussians[1:], 170, 300)


def test_op_reports_its_cuda_half(extension_library):
    ops = reference.ops(str(extension_library("splat")))
    assert ops.splat_has_cuda() == (torch.version.cuda is not None and torch.cuda.is_available())


def broken(bug, library_path):
    """The reference with one deliberate mistake, in the Function around the kernels, the plain rasterizer, the
    projection or the render."""
    kernel = functools.partial(reference.rasterize, library_path=library_path)

    class Broken(torch.autograd.Function):
        @staticmethod
        def forward(ctx, means2d, conics, colours, opacities, radii, height, width, background, lib):
            if bug == "background_ignored":
                background = 0.0
            if bug == "float64_through_float32" and means2d.dtype == torch.float64:
                gaussians = [t.float() for t in (means2d, conics, colours, opacities)]
                image, contributors = lib.splat_rasterize(*gaussians, radii, height, width, background)
                image = image.double()
            else:
                image, contributors = lib.splat_rasterize(means2d, conics, colours, opacities, radii, height, width,
                                                          background)
            ctx.save_for_backward(image, contributors, means2d, conics, colours, opacities, radii)
            ctx.lib = lib
            return image

        @staticmethod
        def backward(ctx, grad_image):
            image, contributors, *gaussians = ctx.saved_tensors
            grad_means, grad_conics, grad_colours, grad_opacities = ctx.lib.splat_rasterize_backward(
                grad_image, image, contributors, *gaussians)
            if bug == "grad_mean_x_y_swapped":
                grad_means = grad_means.flip(1)
            if bug == "no_grad_conics":
                grad_conics = None
            if bug == "grad_conic_b_halved":
                grad_conics = grad_conics * torch.tensor([1.0, 0.5, 1.0], dtype=grad_conics.dtype)
            return grad_means, grad_conics, grad_colours, grad_opacities, None, None, None, None, None

    def rasterize(means2d, conics, colours, opacities, radii, height, width, background=0.0, library_path=None):
        reference.check_arguments("rasterize", {"means2d": means2d, "conics": conics, "colours": colours,
                                                "opacities": opacities, "radii": radii}, height, width, background)
        return Broken.apply(means2d, conics, colours, opacities, radii, height, width, float(background),
                            reference.ops(library_path))

    def dense(means2d, conics, colours, opacities, radii, height, width, background=0.0):
        if bug == "dense_pixel_corners_not_centres":
            means2d = means2d + 0.5  # dx = x - mean: the pixel centre taken at its corner
        if bug == "dense_no_tiles":
            radii = torch.where(radii > 0, 10**4, 0).int()
        if bug == "dense_caps_opacity_not_alpha":
            opacities = opacities.clamp(max=0.99)
        if bug in ("dense_no_early_stop", "dense_no_faint_skip"):  # the rule's constant turned off for this call
            name = "MIN_TRANSMITTANCE" if bug == "dense_no_early_stop" else "MIN_ALPHA"
            kept = getattr(reference, name)
            setattr(reference, name, 0.0)
            try:
                return reference.rasterize_dense(means2d, conics, colours, opacities, radii, height, width, background)
            finally:
                setattr(reference, name, kept)
        if bug == "dense_back_to_front":
            return reference.rasterize_dense(*(t.flip(0) for t in (means2d, conics, colours, opacities, radii)),
                                             height, width, background)
        return reference.rasterize_dense(means2d, conics, colours, opacities, radii, height, width, background)

    def project(means3d, log_scales, quats, camera):
        if bug == "projection_without_dilation":
            means2d, conics, depths, radii = reference.project(means3d, log_scales, quats, camera)
            cov = torch.stack([conics[:, 2], -conics[:, 1], conics[:, 0]], 1) / (conics[:, 0] * conics[:, 2] -
                                                                                   conics[:, 1] ** 2)[:, None]
            cov = cov - torch.tensor([0.3, 0.0, 0.3], dtype=cov.dtype)
            det = cov[:, 0] * cov[:, 2] - cov[:, 1] ** 2
            return means2d, torch.stack([cov[:, 2], -cov[:, 1], cov[:, 0]], 1) / det[:, None], depths, radii
        if bug == "camera_rotation_transposed":
            camera = reference.Camera(camera.width, camera.height, camera.focal, camera.rotation.T, camera.translation)
        if bug == "scales_not_exponentiated":
            log_scales = log_scales.exp().log1p()
        return reference.project(means3d, log_scales, quats, camera)

    def render(means3d, log_scales, quats, colours, opacities, camera, rasterizer, background=0.0):
        if bug == "render_back_to_front":
            means2d, conics, depths, radii = project(means3d, log_scales, quats, camera)
            order = torch.argsort(depths, descending=True)
            return rasterizer(means2d[order], conics[order], colours[order], opacities[order], radii[order],
                              camera.height, camera.width, background)
        if bug == "render_unsorted":
            means2d, conics, depths, radii = project(means3d, log_scales, quats, camera)
            return rasterizer(means2d, conics, colours, opacities, radii, camera.height, camera.width, background)
        means2d, conics, depths, radii = project(means3d, log_scales, quats, camera)
        order = torch.argsort(depths, stable=True)
        return rasterizer(means2d[order], conics[order], colours[order], opacities[order], radii[order],
                          camera.height, camera.width, background)

    return SimpleNamespace(rasterize=functools.partial(rasterize, library_path=library_path), rasterize_dense=dense,
                           project=project, render=render, Camera=reference.Camera)


BUGS = ["background_ignored", "float64_through_float32", "grad_mean_x_y_swapped", "no_grad_conics",
        "grad_conic_b_halved", "dense_pixel_corners_not_centres", "dense_no_tiles", "dense_caps_opacity_not_alpha",
        "dense_no_early_stop", "dense_no_faint_skip", "dense_back_to_front", "projection_without_dilation",
        "camera_rotation_transposed", "scales_not_exponentiated", "render_back_to_front", "render_unsorted"]


@pytest.mark.suite_check
@pytest.mark.parametrize("bug", BUGS)
def test_broken_splat_is_rejected(bug, extension_library):
    assert failing_checks(CHECKS, broken(bug, str(extension_library("splat"))))


@pytest.mark.suite_check
def test_all_zero_answer_is_rejected(extension_library):
    """The tolerance is relative to the largest |plain|: a rasterizer that draws nothing must not pass."""
    def zeros(means2d, conics, colours, opacities, radii, height, width, background=0.0):
        return colours.new_zeros(colours.shape[1], height, width)

    splat = broken(None, str(extension_library("splat")))
    splat.rasterize = splat.rasterize_dense = zeros
    assert {"check_forward", "check_gradients"} <= set(failing_checks(CHECKS, splat))


@pytest.mark.suite_check
def test_kernels_are_hand_written():
    """The kernels bin, blend and differentiate themselves: no ATen op does it for them."""
    assert_no_aten_op(["csrc/splat/splat.cpp", "csrc/splat/splat_cuda.cu"],
                      ["at::exp", "at::cumprod", "at::sort", "at::argsort", "at::matmul", "at::mm", "at::where",
                       "at::index", "index_add", "scatter_add", "at::native::"])
