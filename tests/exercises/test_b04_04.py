"""b04-04: data augmentation with tensor ops. A crop is a shifted window of the padded image, at every offset in
range; a flip equals torch.flip where drawn, about as often as asked; the affine resampling equals F.affine_grid +
F.grid_sample with the same matrices, and the drawn matrices lie within the asked rotation, zoom and shift;
erasing sets one rectangle of a bounded area and aspect ratio and leaves the rest untouched; every transform gives
the same output for the same generator seed, bit for bit; `Augment` chains them in training mode only."""
import inspect
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from grading import failing_checks

EXERCISE = "b04-04"


@pytest.fixture(scope="module")
def aug(impl_for):
    return impl_for(EXERCISE)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def batch(n=6, c=2, h=7, w=5, seed=1, dtype=torch.float32):
    return torch.randn(n, c, h, w, generator=gen(seed), dtype=dtype)


def check_crop_is_a_shifted_window(aug):
    x = batch().transpose(2, 3)  # non-contiguous, 5 x 7
    for padding in (0, 1, 2):
        out = aug.random_crop(x, padding, gen(3))
        assert out.shape == x.shape and out.dtype == x.dtype
        padded = F.pad(x, (padding,) * 4)
        for i in range(len(x)):
            windows = [(dy, dx) for dy in range(2 * padding + 1) for dx in range(2 * padding + 1)
                       if torch.equal(out[i], padded[i, :, dy:dy + 5, dx:dx + 7])]
            assert windows, f"image {i} is no window of the padded image (padding {padding})"
    # every offset in 0..2 * padding, each about as often; rows and columns drawn apart
    image = torch.arange(1.0, 10).reshape(1, 1, 3, 3)  # nine distinct pixels: each window tells its offset
    out, padded = aug.random_crop(image.expand(900, 1, 3, 3), 1, gen(4)), F.pad(image, (1,) * 4)[0, 0]
    counts = [int((out[:, 0] == padded[dy:dy + 3, dx:dx + 3]).flatten(1).all(1).sum()) for dy in range(3)
              for dx in range(3)]
    assert sum(counts) == 900 and min(counts) > 60, counts


def check_flip_equals_torch_flip_where_drawn(aug):
    x = torch.randn(400, 1, 3, 4, generator=gen(1))
    out = aug.random_flip(x, gen(2))
    flipped = (out == torch.flip(x, dims=[-1])).flatten(1).all(1)
    kept = (out == x).flatten(1).all(1)
    assert (flipped ^ kept).all(), "each image is either itself or torch.flip(image, [-1])"
    assert 160 < flipped.sum() < 240, int(flipped.sum())
    assert torch.equal(aug.random_flip(x, gen(2), p=0.0), x)
    assert torch.equal(aug.random_flip(x, gen(2), p=1.0), torch.flip(x, dims=[-1]))
    assert 60 < (aug.random_flip(x, gen(2), p=0.2) != x).flatten(1).any(1).sum() < 100


def check_affine_matches_grid_sample(aug):
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        x = batch(dtype=dtype, h=9, w=6)
        theta = aug.affine_matrices(6, gen(5), degrees=30, translate=0.2, scale=(0.7, 1.3)).to(dtype)
        theta[0] = torch.tensor([[1.0, 0, 0], [0, 1, 0]])  # the identity
        theta[1] = torch.tensor([[0.0, -1, 0.3], [1, 0, -0.2]])  # a quarter turn and a shift
        want = F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), align_corners=False)
        got = aug.affine(x, theta)
        assert got.dtype == dtype
        torch.testing.assert_close(got, want, rtol=tol, atol=tol)
        torch.testing.assert_close(got[0], x[0], rtol=tol, atol=tol)


def check_affine_matrices_within_bounds(aug):
    degrees, translate, scale = 20.0, 0.15, (0.8, 1.25)
    theta = aug.affine_matrices(2000, gen(6), degrees, translate, scale).double()
    assert theta.shape == (2000, 2, 3)
    linear = theta[:, :, :2]
    zoom = linear.det().rsqrt()  # the input is sampled at 1/zoom: the image grows by zoom
    angle = torch.atan2(linear[:, 1, 0], linear[:, 0, 0]).rad2deg()
    torch.testing.assert_close(linear, torch.stack([torch.stack([angle.deg2rad().cos(), -angle.deg2rad().sin()], 1),
                                                    torch.stack([angle.deg2rad().sin(), angle.deg2rad().cos()], 1)],
                                                   1) / zoom[:, None, None])
    for values, low, high in ((angle, -degrees, degrees), (zoom, *scale), (theta[:, 0, 2], -2 * translate, 2 * translate),
                              (theta[:, 1, 2], -2 * translate, 2 * translate)):
        span = high - low
        assert values.min() >= low - 1e-6 and values.max() <= high + 1e-6
        assert values.min() < low + 0.02 * span and values.max() > high - 0.02 * span  # the whole range
        assert abs(values.mean() - (low + high) / 2) < 0.05 * span  # uniform, not skewed
    assert abs(torch.corrcoef(torch.stack([theta[:, 0, 2], theta[:, 1, 2]]))[0, 1]) < 0.1  # x, y shifts apart
    still = aug.affine_matrices(3, gen(6), degrees=0, translate=0, scale=(1.0, 1.0))
    torch.testing.assert_close(still, torch.tensor([[1.0, 0, 0], [0, 1, 0]]).expand(3, 2, 3))
    defaults = aug.affine_matrices(2000, gen(6)).double()  # 10 degrees, 0.1 of the size, zoom 0.9..1.1
    angle = torch.atan2(defaults[:, 1, 0], defaults[:, 0, 0]).rad2deg()
    zoom = defaults[:, :, :2].det().rsqrt()
    assert 9.8 < angle.abs().max() <= 10 and 0.19 < defaults[:, :, 2].abs().max() <= 0.2
    assert 0.9 <= zoom.min() < 0.91 and 1.09 < zoom.max() <= 1.1


def check_random_affine_uses_the_drawn_matrices(aug):
    x = batch()
    for options in ({}, {"degrees": 25.0, "translate": 0.05, "scale": (1.0, 1.5)}):
        want = aug.affine(x, aug.affine_matrices(6, gen(7), **options))
        assert torch.equal(aug.random_affine(x, gen(7), **options), want)


def check_erasing_one_bounded_rectangle(aug):
    h, w, n = 20, 24, 600
    x = torch.rand(n, 2, h, w, generator=gen(8)) + 1  # no pixel equals the fill value
    area, aspect = (0.05, 0.3), (0.5, 2.0)
    out = aug.random_erasing(x, gen(9), p=0.5, area=area, aspect=aspect, value=-3.0)
    erased = out == -3.0
    assert torch.equal(out[~erased], x[~erased]), "pixels outside the rectangle are untouched"
    assert torch.equal(erased[:, 0], erased[:, 1]), "the same rectangle in every channel"
    hit = erased[:, 0].flatten(1).any(1)
    assert 250 < hit.sum() < 350, int(hit.sum())
    heights, widths, tops, lefts = [], [], [], []
    for mask in erased[hit, 0]:
        rows, cols = mask.any(1).nonzero()[:, 0], mask.any(0).nonzero()[:, 0]
        top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        assert mask[top:bottom, left:right].all() and mask.sum() == (bottom - top) * (right - left), "a rectangle"
        heights.append(float(bottom - top)), widths.append(float(right - left))
        tops.append(int(top)), lefts.append(int(left))
    hh, ww = torch.tensor(heights), torch.tensor(widths)
    # the sides are rounded: each within half a pixel of its exact value
    assert ((hh - 0.5) * (ww - 0.5) <= area[1] * h * w).all() and ((hh + 0.5) * (ww + 0.5) >= area[0] * h * w).all()
    assert ((hh - 0.5) / (ww + 0.5) <= aspect[1]).all() and ((hh + 0.5) / (ww - 0.5) >= aspect[0]).all()
    assert abs((hh * ww).mean() / (h * w) - sum(area) / 2) < 0.03, "area fraction uniform in its range"
    assert 0.35 < (hh > ww).float().mean() < 0.65, "aspect log-uniform: as often tall as wide"
    assert min(tops) == 0 and min(lefts) == 0, "rectangles reach the top and the left edges"
    assert max(t + a for t, a in zip(tops, heights)) == h and max(t + a for t, a in zip(lefts, widths)) == w
    assert torch.equal(aug.random_erasing(x, gen(9), p=0.0), x)
    everywhere = aug.random_erasing(x[:50], gen(9), p=1.0)  # default area 0.02..0.33, aspect 0.3..3.3, value 0
    sizes = (everywhere == 0).flatten(1).sum(1) / 2 / (h * w)
    assert (everywhere == 0).flatten(1).any(1).all() and sizes.max() < 0.36 and sizes.min() > 0.01


def check_same_seed_same_output(aug):
    x = batch(n=32, h=12, w=12)
    transforms = [lambda g: aug.random_crop(x, 2, g), lambda g: aug.random_flip(x, g),
                  lambda g: aug.random_affine(x, g), lambda g: aug.random_erasing(x, g),
                  lambda g: aug.affine_matrices(32, g)]
    for transform in transforms:
        first, again, other = transform(gen(10)), transform(gen(10)), transform(gen(11))
        assert torch.equal(first, again) and not torch.equal(first, other)


def check_augment_module(aug):
    x = batch(n=16, h=12, w=12)
    g = gen(12)
    want = aug.random_erasing(aug.random_affine(aug.random_flip(aug.random_crop(x, 3, g), g, 0.3), g, 15.0), g, 0.4,
                              value=-1.0)
    module = aug.Augment(12, padding=3, flip=0.3, degrees=15.0, erasing=0.4, erase_value=-1.0)
    assert torch.equal(module(x), want)
    assert not torch.equal(module(x), want), "each batch gets fresh draws"
    assert torch.equal(aug.Augment(12, padding=None, flip=0.3)(x), aug.random_flip(x, gen(12), 0.3))
    defaults = aug.Augment(12)  # crop with padding 2 and flip
    assert torch.equal(defaults(x), aug.random_flip(aug.random_crop(x, 2, g := gen(12)), g, 0.5))
    nothing = aug.Augment(12, padding=None, flip=None)
    assert torch.equal(nothing(x), x)
    module.eval()
    assert module(x) is x, "no augmentation in eval mode"


def check_errors_name_the_problem(aug):
    single = torch.randn(1, 5, 5)
    for call in (lambda: aug.random_crop(single, 1, gen()), lambda: aug.random_flip(single, gen()),
                 lambda: aug.random_affine(single, gen()), lambda: aug.random_erasing(single, gen()),
                 lambda: aug.affine(single, torch.zeros(1, 2, 3))):
        with pytest.raises(ValueError, match=r"\[N, C, H, W\], got \[1, 5, 5\]"):
            call()
    with pytest.raises(ValueError, match="padding"):
        aug.random_crop(batch(), -1, gen())
    for theta in (torch.zeros(5, 2, 3), torch.zeros(6, 3, 3)):
        with pytest.raises(ValueError, match=r"theta must be \[6, 2, 3\]"):
            aug.affine(batch(), theta)


def check_affine_by_hand(aug):
    """`affine` is written with indexing and arithmetic: grid_sample and affine_grid are what it is checked against."""
    source = inspect.getsource(aug.affine)
    assert not any(name in source for name in ("grid_sample", "affine_grid", "torchvision")), "affine by hand"
    assert "torchvision" not in Path(inspect.getsourcefile(aug.affine)).read_text()


CHECKS = [check_affine_by_hand, check_crop_is_a_shifted_window, check_flip_equals_torch_flip_where_drawn, check_affine_matches_grid_sample,
          check_affine_matrices_within_bounds, check_random_affine_uses_the_drawn_matrices,
          check_erasing_one_bounded_rectangle, check_same_seed_same_output, check_augment_module,
          check_errors_name_the_problem]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_augmentation(aug, check):
    check(aug)


# deliberately broken solutions, each the reference with one part wrong


def reference(**broken):
    from torchkata.vision import augment

    names = ("random_crop", "random_flip", "affine_matrices", "affine", "random_affine", "random_erasing", "Augment")
    return SimpleNamespace(**{**{name: getattr(augment, name) for name in names}, **broken})


def crop_one_short(images, padding, generator):
    from torchkata.vision.augment import random_crop

    return random_crop(F.pad(images, (0, 1, 0, 1))[..., 1:, 1:], padding, generator)  # offsets shifted by one


def vertical_flip(images, generator, p=0.5):
    flip = torch.rand(len(images), generator=generator) < p
    return torch.where(flip[:, None, None, None], images.flip(-2), images)


def affine_corners_aligned(images, theta):
    return F.grid_sample(images, F.affine_grid(theta, list(images.shape), align_corners=True), align_corners=True)


def matrices_zoom_inverted(n, generator, degrees=10.0, translate=0.1, scale=(0.9, 1.1)):
    from torchkata.vision.augment import affine_matrices

    theta = affine_matrices(n, generator, degrees, translate, scale)
    zoom = theta[:, :, :2].det().rsqrt()
    return torch.cat([theta[:, :, :2] * zoom[:, None, None] ** 2, theta[:, :, 2:]], 2)


def erasing_square(images, generator, p=0.5, area=(0.02, 0.33), aspect=(0.3, 3.3), value=0.0):
    from torchkata.vision.augment import random_erasing

    return random_erasing(images, generator, p, area, (1.0, 1.0), value)  # the aspect ratio ignored


def augment_in_eval_mode():
    from torchkata.vision.augment import Augment

    class Always(Augment):
        def forward(self, images):
            training, self.training = self.training, True
            try:
                return super().forward(images)
            finally:
                self.training = training
    return Always


@pytest.mark.suite_check
@pytest.mark.parametrize("broken, rejected_by", [
    ({"random_crop": crop_one_short}, "check_crop_is_a_shifted_window"),
    ({"random_flip": vertical_flip}, "check_flip_equals_torch_flip_where_drawn"),
    ({"affine": affine_corners_aligned}, "check_affine_matches_grid_sample"),
    ({"affine_matrices": matrices_zoom_inverted}, "check_affine_matrices_within_bounds"),
    ({"random_erasing": erasing_square}, "check_erasing_one_bounded_rectangle"),
    ({"Augment": augment_in_eval_mode()}, "check_augment_module"),
], ids=["crop-offsets-shifted", "vertical-flip", "align-corners", "zoom-inverted", "square-only",
        "augments-in-eval-mode"])
def test_broken_solution_is_rejected(broken, rejected_by):
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], reference(**broken)) == [rejected_by]
