"""b04-02: convolution without nn.Conv2d (im2col + matmul), graded against F.conv2d and F.unfold."""
import inspect
import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grading import failing_checks

EXERCISE = "b04-02"
# (N, C_in, H, W, C_out, kernel, stride, padding, dilation, groups): every argument in int and pair form
CASES = [
    (2, 4, 9, 8, 6, 3, 1, 1, 1, 1),
    (2, 4, 9, 8, 6, 3, 2, 0, 2, 2),
    (1, 3, 7, 7, 3, (2, 4), 1, "same", (1, 2), 3),
    (2, 6, 10, 11, 6, (3, 2), (2, 3), (1, 2), (2, 1), 6),
    (3, 2, 8, 8, 4, 2, 1, "same", 1, 1),
    (2, 3, 6, 9, 5, (1, 3), (1, 2), "valid", 1, 1),
    (1, 4, 12, 5, 8, 3, (3, 1), (0, 1), 3, 4),
]


@pytest.fixture(scope="module")
def conv(impl_for):
    return impl_for(EXERCISE)


def tensors(case, dtype=torch.float64, bias=True):
    n, c, h, w, out, kernel, *_, groups = case
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = torch.randn(n, c, h, w, dtype=dtype)
    weight = torch.randn(out, c // groups, kh, kw, dtype=dtype)
    return x, weight, torch.randn(out, dtype=dtype) if bias else None


def both(conv, case, x, weight, bias):
    stride, padding, dilation, groups = case[6:]
    return (conv.conv2d(x, weight, bias, stride, padding, dilation, groups),
            F.conv2d(x, weight, bias, stride, padding, dilation, groups))


def check_matches_conv2d(conv):
    for case in CASES:
        for dtype, rtol, atol in [(torch.float64, 1e-10, 1e-10), (torch.float32, 1e-4, 1e-4)]:
            for bias in (True, False):
                ours, want = both(conv, case, *tensors(case, dtype, bias))
                assert ours.dtype == dtype, (case, ours.dtype)
                torch.testing.assert_close(ours, want, rtol=rtol, atol=atol, msg=f"{case}, bias={bias}")


def check_keyword_defaults(conv):
    x, weight, bias = tensors(CASES[0])
    torch.testing.assert_close(conv.conv2d(x, weight), F.conv2d(x, weight))  # no bias, stride 1, no padding
    torch.testing.assert_close(conv.conv2d(x, weight, bias, padding="same"), F.conv2d(x, weight, bias, padding="same"))
    # strings built at run time (compared by value, not identity), and more channels than Python caches as ints
    for padding in ("".join(["sa", "me"]), "".join(["val", "id"])):
        torch.testing.assert_close(conv.conv2d(x, weight, None, 1, padding), F.conv2d(x, weight, None, 1, padding))
    wide, wide_weight = torch.randn(1, 300, 3, 3, dtype=torch.float64), torch.randn(2, 300, 1, 1, dtype=torch.float64)
    torch.testing.assert_close(conv.conv2d(wide, wide_weight), F.conv2d(wide, wide_weight))


def check_same_padding_even_kernels(conv):
    # an odd total padding: F.conv2d puts the extra pixel at the bottom/right
    x = torch.randn(1, 2, 7, 6, dtype=torch.float64)
    for kernel, dilation in [((2, 2), 1), ((4, 2), 1), ((2, 3), 3), ((3, 3), 2), ((1, 4), (1, 1))]:
        weight = torch.randn(3, 2, *kernel, dtype=torch.float64)
        ours = conv.conv2d(x, weight, None, 1, "same", dilation)
        assert ours.shape == (1, 3, 7, 6), (kernel, ours.shape)
        torch.testing.assert_close(ours, F.conv2d(x, weight, None, 1, "same", dilation), msg=str((kernel, dilation)))


def check_gradients_match(conv):
    for case in CASES:
        x, weight, bias = tensors(case)
        inputs = [t.requires_grad_() for t in (x, weight, bias)]
        ours, want = both(conv, case, *inputs)
        probe = torch.randn_like(want)
        got = torch.autograd.grad((ours * probe).sum(), inputs)
        expected = torch.autograd.grad((want * probe).sum(), inputs)
        for name, g, e in zip(("input", "weight", "bias"), got, expected):
            torch.testing.assert_close(g, e, msg=f"{case}: gradient of the {name}")


def check_gradcheck(conv):
    for case in [(1, 2, 5, 4, 4, (2, 3), (2, 1), (1, 1), (1, 2), 2), (2, 2, 4, 4, 2, 3, 1, "same", 1, 1)]:
        x, weight, bias = (t.requires_grad_() for t in tensors(case))
        stride, padding, dilation, groups = case[6:]
        assert torch.autograd.gradcheck(lambda a, w, b: conv.conv2d(a, w, b, stride, padding, dilation, groups),
                                        (x, weight, bias), fast_mode=True)


def check_unbatched_and_empty(conv):
    x, weight, bias = tensors(CASES[1])
    single = conv.conv2d(x[0], weight, bias, 2, 0, 2, 2)
    torch.testing.assert_close(single, F.conv2d(x[0], weight, bias, 2, 0, 2, 2))
    empty = conv.conv2d(x[:0], weight, bias, 2, 0, 2, 2)
    assert empty.shape == F.conv2d(x[:0], weight, bias, 2, 0, 2, 2).shape


def check_non_contiguous(conv):
    x, weight, bias = tensors(CASES[0])
    for strided in (x.transpose(2, 3), x.contiguous(memory_format=torch.channels_last), x[:, :, ::2]):
        torch.testing.assert_close(conv.conv2d(strided, weight, bias, 1, 1), F.conv2d(strided, weight, bias, 1, 1))
    torch.testing.assert_close(conv.conv2d(x, weight.transpose(2, 3).contiguous().transpose(2, 3), bias, 1, 1),
                               F.conv2d(x, weight, bias, 1, 1))


def check_im2col(conv):
    x = torch.randn(2, 3, 8, 9, dtype=torch.float64)
    for kernel, stride, padding, dilation in [(3, 1, 0, 1), ((3, 2), (2, 1), (1, 2), (2, 1)), (2, 3, 1, 2), (1, 1, 0, 1)]:
        ours = conv.im2col(x, kernel, stride=stride, padding=padding, dilation=dilation)
        torch.testing.assert_close(ours, F.unfold(x, kernel, dilation=dilation, padding=padding, stride=stride),
                                   msg=str((kernel, stride, padding, dilation)))
    torch.testing.assert_close(conv.im2col(x, 2), F.unfold(x, 2))  # defaults: stride 1, no padding, no dilation
    # a single output row or column: the kernel just fits
    torch.testing.assert_close(conv.im2col(x, (8, 3), dilation=(1, 4)), F.unfold(x, (8, 3), dilation=(1, 4)))


def check_module(conv):
    torch.manual_seed(1)
    ours = conv.Conv2d(4, 6, (3, 2), stride=2, padding=1, dilation=(1, 2), groups=2)
    native = nn.Conv2d(4, 6, (3, 2), stride=2, padding=1, dilation=(1, 2), groups=2)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in native.state_dict().items()}
    native.load_state_dict(ours.state_dict())
    x = torch.randn(2, 4, 9, 10)
    torch.testing.assert_close(ours(x), native(x))
    assert conv.Conv2d(4, 6, 3, bias=False).bias is None
    # defaults: no padding, no dilation; a 1x1 kernel and a single output channel are fine, a 0 kernel is not
    assert conv.Conv2d(2, 3, 3)(torch.randn(1, 2, 5, 6)).shape == (1, 3, 3, 4)
    assert conv.Conv2d(2, 1, 1)(torch.randn(1, 2, 5, 6)).shape == (1, 1, 5, 6)
    with pytest.raises(ValueError, match="kernel_size"):
        conv.Conv2d(2, 3, 0)
    same = conv.Conv2d(3, 5, 4, padding="same")
    assert same(torch.randn(1, 3, 7, 7)).shape == (1, 5, 7, 7)
    # nn.Conv2d's initialisation: weights and bias uniform within 1/sqrt(fan_in)
    big = conv.Conv2d(8, 64, 3)
    bound = 1 / (8 * 9) ** 0.5
    for tensor in (big.weight, big.bias):
        assert tensor.abs().max() <= bound and tensor.abs().max() > 0.9 * bound, tensor.abs().max()
        assert tensor.std() > 0.5 * bound
    with pytest.raises(ValueError, match="groups"):
        conv.Conv2d(4, 6, 3, groups=4)
    with pytest.raises(ValueError, match="groups"):
        conv.Conv2d(6, 4, 3, groups=4)


def check_errors_name_the_problem(conv):
    x, weight, bias = tensors(CASES[0])
    bad = [
        (dict(x=x[0, 0]), r"expects input \[N, C, H, W\]"),
        (dict(x=x.unsqueeze(0)), r"expects input \[N, C, H, W\]"),
        (dict(weight=weight[0]), r"weight \[C_out"),
        (dict(weight=weight.unsqueeze(0)), r"weight \[C_out"),
        (dict(weight=weight[:, :3]), "channels"),
        (dict(weight=weight[:, :3], groups=2), "input has 4 channels; .* expects 6"),
        (dict(groups=4), "groups"),
        (dict(groups=0), "groups"),
        (dict(bias=bias[:5]), "bias"),
        (dict(bias=torch.randn(7, dtype=torch.float64)), "bias"),
        (dict(stride=2, padding="same"), "same"),
        (dict(padding="full"), "padding"),
        (dict(padding="zero"), "padding"),
        (dict(padding="symmetric"), "padding"),
        (dict(padding=-1), "padding"),
        (dict(stride=0), "stride"),
        (dict(stride=(1, 2, 3)), "stride"),
        (dict(stride=(2,)), "stride"),
        (dict(dilation=0), "dilation"),
        (dict(x=x[:, :, :2]), "larger"),
        (dict(dilation=5), "larger"),
    ]
    for change, word in bad:
        args = dict(x=x, weight=weight, bias=bias, stride=1, padding=0, dilation=1, groups=1) | change
        with pytest.raises(ValueError, match=word):
            conv.conv2d(args.pop("x"), args.pop("weight"), **args)
    for bad_input in (x[0], x.unsqueeze(0)):
        with pytest.raises(ValueError, match="input"):
            conv.im2col(bad_input, 3)
    for change, word in [(dict(kernel_size=0), "kernel_size"), (dict(stride=0), "stride"), (dict(padding=-1), "padding"),
                         (dict(dilation=(1, 0)), "dilation"), (dict(kernel_size=10), "larger"),
                         (dict(kernel_size=(3, 9)), "larger"), (dict(kernel_size=(10, 3)), "larger")]:
        with pytest.raises(ValueError, match=word):
            conv.im2col(x, **(dict(kernel_size=3) | change))


CHECKS = [check_matches_conv2d, check_keyword_defaults, check_same_padding_even_kernels, check_gradients_match,
          check_gradcheck, check_unbatched_and_empty, check_non_contiguous, check_im2col, check_module,
          check_errors_name_the_problem]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_conv(conv, check):
    check(conv)


def variant(conv, **replacements):
    namespace = {name: getattr(conv, name) for name in ("im2col", "conv2d", "Conv2d")}
    return types.SimpleNamespace(**(namespace | replacements))


def flipped_kernel(conv):  # a true convolution (kernel flipped), not the cross-correlation deep learning calls one
    return variant(conv, conv2d=lambda x, w, *args, **kw: conv.conv2d(x, w.flip(-1, -2), *args, **kw))


def same_extra_pixel_first(conv):
    def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        if padding != "same":
            return conv.conv2d(x, weight, bias, stride, padding, dilation, groups)
        dilation = (dilation, dilation) if isinstance(dilation, int) else dilation
        pads = []
        for kernel, d in zip(reversed(weight.shape[2:]), reversed(dilation)):
            total = d * (kernel - 1)
            pads += [total - total // 2, total // 2]
        return conv.conv2d(F.pad(x, pads), weight, bias, stride, 0, dilation, groups)
    return variant(conv, conv2d=conv2d)


def dilation_ignored(conv):
    return variant(conv, conv2d=lambda x, w, b=None, s=1, p=0, d=1, g=1: conv.conv2d(x, w, b, s, p, 1, g))


def groups_interleaved(conv):  # the channels of group g taken as every groups-th channel instead of a block
    def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        order = torch.arange(x.shape[-3]).reshape(-1, groups).t().flatten()
        return conv.conv2d(x.index_select(-3, order), weight, bias, stride, padding, dilation, groups)
    return variant(conv, conv2d=conv2d)


def gradient_detached(conv):  # the weight used without its gradient, as a copy through .data would
    return variant(conv, conv2d=lambda x, w, *args, **kw: conv.conv2d(x, w.detach(), *args, **kw))


def im2col_taps_transposed(conv):
    def im2col(x, kernel_size, stride=1, padding=0, dilation=1):
        cols = conv.im2col(x, kernel_size, stride, padding, dilation)
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        n, _, length = cols.shape
        return cols.reshape(n, -1, kh, kw, length).transpose(2, 3).reshape(n, -1, length)
    return variant(conv, im2col=im2col)


def module_zero_init(conv):
    class Conv2d(conv.Conv2d):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            nn.init.normal_(self.weight)
    return variant(conv, Conv2d=Conv2d)


# each broken variant and the check that must reject it (only that check runs: the suite stays fast)
BROKEN = {flipped_kernel: check_matches_conv2d, same_extra_pixel_first: check_same_padding_even_kernels,
          dilation_ignored: check_matches_conv2d, groups_interleaved: check_matches_conv2d,
          gradient_detached: check_gradients_match, im2col_taps_transposed: check_im2col, module_zero_init: check_module}


@pytest.mark.suite_check
@pytest.mark.parametrize("broken", BROKEN, ids=lambda f: f.__name__)
def test_broken_conv_is_rejected(broken):
    from torchkata.vision import conv
    check = BROKEN[broken]
    assert failing_checks([check], broken(conv)) == [check.__name__]


@pytest.mark.suite_check
def test_no_builtin_convolution_in_reference():
    from torchkata.vision import conv
    source = inspect.getsource(conv)
    for builtin in ("F.conv2d", "nn.Conv2d(", "torch.conv2d", "F.unfold", "torch.convolution", "nn.Unfold"):
        assert builtin not in source, builtin
