"""b04-07: depthwise-separable convolution: the module against F.conv2d, and its parameters and multiply-adds
against a standard convolution, counted by hand and by torch's FlopCounterMode."""
import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from grading import failing_checks

EXERCISE = "b04-07"


@pytest.fixture(scope="module")
def separable(impl_for):
    return impl_for(EXERCISE)


def counted_macs(fn) -> int:
    """Multiply-adds of the convolutions `fn` runs, as torch counts them (2 flops each)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() // 2


def check_conv_cost_hand_counts(separable):
    # 3x3, 32 -> 64 on a 14x14 output: 64*32*9 = 18432 weights + 64 biases; 18432 * 196 multiply-adds
    assert separable.conv_cost(32, 64, 3, (14, 14)) == {"parameters": 18496, "macs": 3612672}
    assert separable.conv_cost(32, 64, 3, (14, 14), bias=False) == {"parameters": 18432, "macs": 3612672}
    # depthwise 3x3 on 32 channels: 288 weights, 288 * 196
    assert separable.conv_cost(32, 32, 3, (14, 14), groups=32, bias=False) == {"parameters": 288, "macs": 56448}
    assert separable.conv_cost(6, 4, 5, (3, 7), groups=2) == {"parameters": 4 * 3 * 25 + 4, "macs": 300 * 21}
    assert all(type(v) is int for v in separable.conv_cost(6, 4, 5, (3, 7), groups=2).values())  # counts, not floats


def check_conv_cost_matches_torch(separable):
    for c_in, c_out, k, stride, groups, bias in [(8, 16, 3, 1, 1, True), (8, 16, 5, 2, 4, False), (6, 6, 3, 1, 6, True),
                                                 (4, 12, 1, 1, 1, False), (6, 9, 2, 3, 3, True)]:
        conv = nn.Conv2d(c_in, c_out, k, stride=stride, groups=groups, bias=bias)
        x = torch.randn(1, c_in, 13, 11)
        out = conv(x)
        cost = separable.conv_cost(c_in, c_out, k, tuple(out.shape[-2:]), groups=groups, bias=bias)
        assert cost["parameters"] == sum(p.numel() for p in conv.parameters()), (c_in, c_out, k, groups, bias)
        assert cost["macs"] == counted_macs(lambda: conv(x)), (c_in, c_out, k, groups)


def check_module_matches_conv2d(separable):
    for c_in, c_out, k, stride, padding, bias in [(4, 8, 3, 1, 1, True), (3, 5, 5, 2, 2, False), (6, 2, 3, 1, "same", True),
                                                  (2, 4, 2, 1, 0, True)]:
        module = separable.DepthwiseSeparableConv2d(c_in, c_out, k, stride=stride, padding=padding, bias=bias)
        depthwise, pointwise = module.depthwise, module.pointwise
        assert depthwise.weight.shape == (c_in, 1, k, k) and pointwise.weight.shape == (c_out, c_in, 1, 1)
        assert depthwise.bias is None and (pointwise.bias is not None) == bias
        x = torch.randn(2, c_in, 9, 10, dtype=torch.float64)
        module.double()
        want = F.conv2d(F.conv2d(x, depthwise.weight, None, stride, padding, 1, c_in), pointwise.weight, pointwise.bias)
        torch.testing.assert_close(module(x), want)


def check_module_defaults_and_gradients(separable):
    module = separable.DepthwiseSeparableConv2d(3, 4, 3).double()
    x = torch.randn(1, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    assert module(x).shape == (1, 4, 4, 4)  # stride 1, no padding
    assert module.pointwise.bias is not None
    assert torch.autograd.gradcheck(module, (x,), fast_mode=True)
    module(x).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def check_module_cost(separable):
    module = separable.DepthwiseSeparableConv2d(32, 64, 3, padding=1)
    cost = module.cost((14, 14))
    assert cost == {"parameters": 32 * 9 + 64 * 32 + 64, "macs": (32 * 9 + 64 * 32) * 196}
    assert cost["parameters"] == sum(p.numel() for p in module.parameters())
    x = torch.randn(1, 32, 14, 14)
    assert cost["macs"] == counted_macs(lambda: F.conv2d(F.conv2d(x, module.depthwise.weight, None, 1, 1, 1, 32),
                                                         module.pointwise.weight))
    no_bias = separable.DepthwiseSeparableConv2d(8, 16, 5, stride=2, bias=False)
    assert no_bias.cost((3, 5)) == {"parameters": 8 * 25 + 16 * 8, "macs": (8 * 25 + 16 * 8) * 15}


def check_errors(separable):
    with pytest.raises(ValueError, match="groups"):
        separable.conv_cost(6, 4, 3, (5, 5), groups=4)
    with pytest.raises(ValueError, match="groups"):
        separable.conv_cost(8, 6, 3, (5, 5), groups=4)


CHECKS = [check_conv_cost_hand_counts, check_conv_cost_matches_torch, check_module_matches_conv2d,
          check_module_defaults_and_gradients, check_module_cost, check_errors]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_separable(separable, check):
    check(separable)


def variant(module, **replacements):
    names = ("conv_cost", "DepthwiseSeparableConv2d")
    return types.SimpleNamespace(**({name: getattr(module, name) for name in names} | replacements))


def cost_ignores_groups(module):
    return variant(module, conv_cost=lambda i, o, k, size, groups=1, bias=True: module.conv_cost(i, o, k, size, 1, bias))


def cost_counts_bias_as_macs(module):
    def conv_cost(i, o, k, size, groups=1, bias=True):
        cost = module.conv_cost(i, o, k, size, groups, bias)
        return cost | {"macs": cost["macs"] + (o * size[0] * size[1] if bias else 0)}
    return variant(module, conv_cost=conv_cost)


def full_depthwise(module):  # the "depthwise" step mixing all channels: a standard conv followed by a 1x1
    class Separable(module.DepthwiseSeparableConv2d):
        def __init__(self, c_in, c_out, k, stride=1, padding=0, bias=True):
            super().__init__(c_in, c_out, k, stride, padding, bias)
            self.depthwise = nn.Conv2d(c_in, c_in, k, stride, padding, bias=False)
    return variant(module, DepthwiseSeparableConv2d=Separable)


# each broken variant and the check that must reject it (only that check runs: the suite stays fast)
BROKEN = {cost_ignores_groups: check_conv_cost_hand_counts, cost_counts_bias_as_macs: check_conv_cost_hand_counts,
          full_depthwise: check_module_matches_conv2d}


@pytest.mark.suite_check
@pytest.mark.parametrize("broken", BROKEN, ids=lambda f: f.__name__)
def test_broken_separable_is_rejected(broken):
    from torchkata.vision import separable
    check = BROKEN[broken]
    assert failing_checks([check], broken(separable)) == [check.__name__]
