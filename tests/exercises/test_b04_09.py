"""b04-09: dilated convolution by hand (the kernel dilated with zeros), graded against F.conv2d's dilation; the
receptive field by formula, checked against the gradient of one output pixel."""
import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grading import failing_checks

EXERCISE = "b04-09"
# (N, C_in, H, W, C_out, kernel, stride, padding, dilation, groups)
CASES = [
    (2, 3, 11, 10, 4, 3, 1, 0, 2, 1),
    (1, 4, 13, 12, 6, (3, 2), (2, 1), (2, 1), (3, 2), 2),
    (2, 2, 9, 9, 2, 3, 1, "same", 3, 2),
    (1, 2, 8, 9, 3, (2, 3), 1, "same", (2, 1), 1),
    (2, 3, 10, 10, 3, 3, 2, 4, 4, 3),
]


@pytest.fixture(scope="module")
def dilated(impl_for):
    return impl_for(EXERCISE)


def tensors(case, dtype=torch.float64):
    n, c, h, w, out, kernel, *_, groups = case
    kernel = (kernel, kernel) if isinstance(kernel, int) else kernel
    return (torch.randn(n, c, h, w, dtype=dtype), torch.randn(out, c // groups, *kernel, dtype=dtype),
            torch.randn(out, dtype=dtype))


def check_dilate_kernel(dilated):
    weight = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    torch.testing.assert_close(dilated.dilate_kernel(weight, 2),
                               torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 0.0], [3.0, 0.0, 4.0]]))
    torch.testing.assert_close(dilated.dilate_kernel(weight, (1, 3)),
                               torch.tensor([[1.0, 0.0, 0.0, 2.0], [3.0, 0.0, 0.0, 4.0]]))
    batch = torch.randn(5, 2, 3, 4, dtype=torch.float64)
    out = dilated.dilate_kernel(batch, (3, 2))
    assert out.shape == (5, 2, 7, 7) and out.dtype == torch.float64
    torch.testing.assert_close(out[..., ::3, ::2], batch)
    assert out.count_nonzero() == batch.count_nonzero()
    torch.testing.assert_close(dilated.dilate_kernel(batch, 1), batch)
    x = torch.randn(2, 3, requires_grad=True)  # gradients reach the taps
    (grad,) = torch.autograd.grad((dilated.dilate_kernel(x, 2) * torch.arange(15.0).reshape(3, 5)).sum(), x)
    torch.testing.assert_close(grad, torch.tensor([[0.0, 2.0, 4.0], [10.0, 12.0, 14.0]]))


def check_matches_conv2d(dilated):
    for case in CASES:
        stride, padding, dilation, groups = case[6:]
        for dtype, tol in [(torch.float64, 1e-10), (torch.float32, 1e-4)]:
            x, weight, bias = tensors(case, dtype)
            for b in (bias, None):
                torch.testing.assert_close(dilated.dilated_conv2d(x, weight, b, dilation, stride, padding, groups),
                                           F.conv2d(x, weight, b, stride, padding, dilation, groups),
                                           rtol=tol, atol=tol, msg=str(case))


def check_non_contiguous(dilated):
    x, weight, bias = tensors(CASES[1])  # groups 2, stride (2, 1), padding (2, 1), dilation (3, 2)
    x_t = x.transpose(2, 3).contiguous().transpose(2, 3)  # the same values in column-major strides
    w_t = weight.transpose(2, 3).contiguous().transpose(2, 3)
    b_t = torch.stack([bias, bias], 1)[:, 0]  # every other element of a buffer
    assert not (x_t.is_contiguous() or w_t.is_contiguous() or b_t.is_contiguous())
    torch.testing.assert_close(dilated.dilated_conv2d(x_t, w_t, b_t, (3, 2), (2, 1), (2, 1), 2),
                               F.conv2d(x, weight, bias, (2, 1), (2, 1), (3, 2), 2), rtol=1e-10, atol=1e-10)
    every_other = torch.randn(1, 4, 13, 24, dtype=torch.float64)[..., ::2]  # a strided view of the columns
    torch.testing.assert_close(dilated.dilated_conv2d(every_other, weight, None, 2, 1, 1, 2),
                               F.conv2d(every_other, weight, None, 1, 1, 2, 2), rtol=1e-10, atol=1e-10)


def check_bad_shapes(dilated):
    x, weight, _ = tensors(CASES[0])  # 3 input channels
    with pytest.raises(ValueError, match="channels"):
        dilated.dilated_conv2d(x[:, :2], weight)
    with pytest.raises(ValueError, match=r"\[2, 3, 11, 10\]"):  # a 3-D weight: both shapes are named
        dilated.dilated_conv2d(x, weight[0])
    with pytest.raises(ValueError, match="larger than the input"):  # a dilated kernel that does not fit
        dilated.dilated_conv2d(x[..., :4], weight, None, 3)


def check_defaults(dilated):
    x, weight, bias = tensors(CASES[0])
    torch.testing.assert_close(dilated.dilated_conv2d(x, weight), F.conv2d(x, weight, dilation=2))
    torch.testing.assert_close(dilated.dilated_conv2d(x, weight, bias), F.conv2d(x, weight, bias, dilation=2))


def check_gradients(dilated):
    for case in CASES[:3]:
        stride, padding, dilation, groups = case[6:]
        inputs = [t.requires_grad_() for t in tensors(case)]
        ours = dilated.dilated_conv2d(*inputs, dilation, stride, padding, groups)
        want = F.conv2d(*inputs, stride, padding, dilation, groups)
        probe = torch.randn_like(want)
        for g, e in zip(torch.autograd.grad((ours * probe).sum(), inputs), torch.autograd.grad((want * probe).sum(), inputs)):
            torch.testing.assert_close(g, e, msg=str(case))
    x, weight, bias = (t.requires_grad_() for t in tensors((1, 2, 7, 6, 2, 2, 1, 1, (2, 3), 1)))
    assert torch.autograd.gradcheck(lambda a, w, b: dilated.dilated_conv2d(a, w, b, (2, 3), 1, 1), (x, weight, bias),
                                    fast_mode=True)


def check_receptive_field(dilated):
    cases = [([(3, 1, 1)], 3), ([(3, 1, 1)] * 2, 5), ([(3, 1, 2)], 5), ([(3, 1, 1), (3, 1, 2), (3, 1, 4)], 15),
             ([(3, 2, 1), (3, 1, 1)], 7), ([(7, 2, 1), (3, 2, 1), (3, 1, 2)], 27), ([(2, 3, 1), (2, 1, 1)], 5),
             ([(1, 1, 5)], 1), ([], 1), ([(5, 1, 3), (3, 4, 1), (3, 1, 2)], 31)]
    for layers, field in cases:
        assert dilated.receptive_field(layers) == field, (layers, dilated.receptive_field(layers), field)
    for bad in [(0, 1, 1), (3, 0, 1), (3, 1, 0)]:
        with pytest.raises(ValueError, match="at least 1"):
            dilated.receptive_field([(3, 1, 1), bad])


def positive_stack(layers, channels=2):
    """Convolutions with positive weights (no cancellation), as (kernel, stride, dilation)."""
    model = nn.Sequential(*[nn.Conv2d(channels, channels, k, stride=s, dilation=d) for k, s, d in layers])
    for conv in model:
        nn.init.uniform_(conv.weight, 0.5, 1.0)
    return model


def check_gradient_footprint(dilated):
    for layers, size in [([(3, 1, 1), (3, 1, 2), (3, 1, 4)], 21), ([(3, 2, 1), (3, 1, 2)], 19),
                         ([(5, 1, 3), (3, 4, 1), (3, 1, 2)], 45)]:
        footprint = dilated.gradient_footprint(positive_stack(layers), torch.randn(1, 2, size, size))
        assert footprint.shape == (size, size)
        field = dilated.receptive_field(layers)
        assert dilated.extent(footprint) == (field, field), (layers, dilated.extent(footprint), field)
    # one 3x3 layer at dilation 2: the nine taps and nothing between them (the gridding of dilated stacks)
    footprint = dilated.gradient_footprint(positive_stack([(3, 1, 2)]), torch.randn(1, 2, 9, 9))
    assert footprint.count_nonzero() == 9 and footprint[2:7:2, 2:7:2].ne(0).all()


def check_footprint_details(dilated):
    # centre output pixel of an even-sized output: ((H-1)//2, (W-1)//2); the magnitude summed over input
    # channels and over output channels
    conv = nn.Conv2d(2, 2, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[1.0, -2.0], [0.0, 0.5]]).reshape(2, 2, 1, 1))
    footprint = dilated.gradient_footprint(conv, torch.randn(3, 2, 6, 8))  # even sizes: centre (2, 3)
    want = torch.zeros(6, 8)
    want[2, 3] = abs(1.0 + 0.0) + abs(-2.0 + 0.5)  # each input channel: |sum over the output channels|
    torch.testing.assert_close(footprint, want)
    x = torch.randn(1, 2, 4, 7)
    dilated.gradient_footprint(conv, x)
    assert x.grad is None and not x.requires_grad  # the caller's tensor is left alone


def check_extent(dilated):
    grid = torch.zeros(6, 8)
    assert dilated.extent(grid) == (0, 0)
    grid[2, 3] = 1.0
    assert dilated.extent(grid) == (1, 1)
    grid[4, 7] = -0.5  # negative gradients count
    grid[3, 1] = 1e-30
    assert dilated.extent(grid) == (3, 7)
    pair = torch.zeros(5, 5)
    pair[1:3, 3:5] = 1.0  # spans of 2 (an odd difference between first and last)
    assert dilated.extent(pair) == (2, 2)


def check_errors(dilated):
    with pytest.raises(ValueError, match="dilation"):
        dilated.dilate_kernel(torch.randn(2, 3, 3), 0)
    for dilation in [(2, 0), (0, 2)]:
        with pytest.raises(ValueError, match="dilation"):
            dilated.dilate_kernel(torch.randn(2, 3, 3), dilation)
    with pytest.raises(ValueError, match="dimensions"):
        dilated.dilate_kernel(torch.randn(3), 2)


CHECKS = [check_dilate_kernel, check_matches_conv2d, check_non_contiguous, check_bad_shapes, check_defaults,
          check_gradients, check_receptive_field, check_gradient_footprint, check_footprint_details, check_extent, check_errors]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_dilated(dilated, check):
    check(dilated)


def variant(module, **replacements):
    names = ("dilate_kernel", "dilated_conv2d", "receptive_field", "gradient_footprint", "extent")
    return types.SimpleNamespace(**({name: getattr(module, name) for name in names} | replacements))


def field_without_stride(module):  # forgets that a stride multiplies the later layers' reach
    return variant(module, receptive_field=lambda layers: 1 + sum(d * (k - 1) for k, _, d in layers))


def field_undilated_kernel(module):  # uses k - 1 without the dilation
    def receptive_field(layers):
        field, step = 1, 1
        for k, s, d in layers:
            field, step = field + (k - 1) * step, step * s
        return field
    return variant(module, receptive_field=receptive_field)


def kernel_dilated_by_one_more(module):  # d zeros between taps instead of d - 1
    return variant(module, dilate_kernel=lambda w, d: module.dilate_kernel(
        w, d + 1 if isinstance(d, int) else tuple(v + 1 for v in d)))


def footprint_of_corner(module):
    def gradient_footprint(model, x):
        x = x.detach().clone().requires_grad_()
        (grad,) = torch.autograd.grad(model(x)[0, :, 0, 0].sum(), x)
        return grad[0].abs().sum(0)
    return variant(module, gradient_footprint=gradient_footprint)


def extent_counts_pixels(module):  # the number of non-zero rows/columns: misses the holes of a dilated field
    return variant(module, extent=lambda f: (int(f.ne(0).any(1).sum()), int(f.ne(0).any(0).sum())))


BROKEN = [field_without_stride, field_undilated_kernel, kernel_dilated_by_one_more, footprint_of_corner,
          extent_counts_pixels]


@pytest.mark.suite_check
@pytest.mark.parametrize("broken", BROKEN, ids=lambda f: f.__name__)
def test_broken_dilation_is_rejected(broken):
    from torchkata.vision import dilated
    assert failing_checks(CHECKS, broken(dilated))
