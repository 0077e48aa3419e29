"""b04-03: the residual block (identity and projection shortcuts) and the plain block, against a forward written
with torch.nn.functional from the blocks' own weights (float64, training and eval mode), their shapes and strides
(odd sizes included), which shortcut each shape gets, parameter counts, gradients, and errors. The experiment
(results/b04-03/...) trains deep plain and residual networks and shows the plain one's degradation."""
import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grading import failing_checks

EXERCISE = "b04-03"
# (in_channels, out_channels, stride): identity, then projections (more channels, fewer, stride, both)
SHAPES = [(4, 4, 1), (4, 6, 1), (6, 4, 1), (4, 4, 2), (3, 5, 2)]


@pytest.fixture(scope="module")
def res(impl_for):
    return impl_for(EXERCISE)


def randomized(block):
    """float64, with batch norms' scale, shift and running statistics away from their initial values."""
    g = torch.Generator().manual_seed(1)
    block = block.double()
    for m in block.modules():
        if isinstance(m, nn.BatchNorm2d):
            for t in (m.weight, m.bias, m.running_mean):
                t.data.copy_(torch.randn(t.shape, generator=g, dtype=torch.float64))
            m.running_var.data.copy_(torch.rand(m.running_var.shape, generator=g, dtype=torch.float64) + 0.5)
    return block


def norm(x, bn):
    return F.batch_norm(x, bn.running_mean.clone(), bn.running_var.clone(), bn.weight, bn.bias, bn.training,
                        bn.momentum, bn.eps)


def by_hand(block, x, stride, shortcut):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) [+ shortcut(x)]), with F ops and the block's weights."""
    h = F.relu(norm(F.conv2d(x, block.conv1.weight, stride=stride, padding=1), block.bn1))
    out = norm(F.conv2d(h, block.conv2.weight, padding=1), block.bn2)
    if shortcut == "identity":
        out = out + x
    elif shortcut == "projection":
        conv, bn = block.shortcut
        out = out + norm(F.conv2d(x, conv.weight, stride=stride), bn)
    return F.relu(out)


def check_residual_matches_hand_computed(res):
    x = torch.randn(3, 6, 7, 7, dtype=torch.float64)
    for c_in, c_out, stride in SHAPES:
        block = randomized(res.ResidualBlock(c_in, c_out, stride))
        shortcut = "identity" if (c_in, stride) == (c_out, 1) else "projection"
        for train in (True, False):
            block.train(train)
            torch.testing.assert_close(block(x[:, :c_in]), by_hand(block, x[:, :c_in], stride, shortcut))


def check_plain_matches_hand_computed(res):
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64)
    for c_out, stride in [(3, 1), (5, 2)]:
        block = randomized(res.PlainBlock(3, c_out, stride))
        for train in (True, False):
            block.train(train)
            torch.testing.assert_close(block(x), by_hand(block, x, stride, None))
        assert not any(isinstance(m, nn.Identity) for m in block.modules()) and len(list(block.children())) == 4


def check_shortcuts(res):
    """The identity exactly when the shape is kept; else a 1x1 conv at the stride (no bias) and batch norm."""
    for c_in, c_out, stride in SHAPES:
        shortcut = res.ResidualBlock(c_in, c_out, stride).shortcut
        if (c_in, stride) == (c_out, 1):
            assert isinstance(shortcut, nn.Identity)
            continue
        conv, bn = shortcut
        assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.num_features == c_out
        assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride) == (c_in, c_out, (1, 1),
                                                                                      (stride, stride))
        assert conv.bias is None and conv.padding == (0, 0)
    # channel counts compared by value: 300 and int("300") are two objects
    assert isinstance(res.ResidualBlock(300, int("300")).shortcut, nn.Identity)


def check_shapes_and_strides(res):
    for cls in (res.PlainBlock, res.ResidualBlock):
        for (c_in, c_out, stride), size, out in [((4, 4, 1), (7, 5), (7, 5)), ((4, 6, 2), (7, 5), (4, 3)),
                                                 ((2, 2, 2), (8, 8), (4, 4)), ((2, 3, 3), (7, 7), (3, 3))]:
            block = cls(c_in, c_out, stride)
            assert block(torch.randn(2, c_in, *size)).shape == (2, c_out, *out), (cls.__name__, c_in, c_out, stride)
            assert block.conv1.bias is None and block.conv2.bias is None
            assert block.conv2.stride == (1, 1) and block.conv1.stride == (stride, stride)
        assert cls(2, 2).eval()(torch.randn(0, 2, 4, 4)).shape == (0, 2, 4, 4)  # an empty batch


def check_parameters(res):
    for c_in, c_out, stride in SHAPES:
        main = 9 * c_in * c_out + 9 * c_out * c_out + 4 * c_out  # two convs, two batch norms' scale and shift
        projection = 0 if (c_in, stride) == (c_out, 1) else c_in * c_out + 2 * c_out
        assert sum(p.numel() for p in res.PlainBlock(c_in, c_out, stride).parameters()) == main
        assert sum(p.numel() for p in res.ResidualBlock(c_in, c_out, stride).parameters()) == main + projection


def check_zero_residual_passes_input(res):
    """With bn2's scale and shift at zero, F(x) = 0: a residual block passes relu(shortcut(x)) on, a plain block 0."""
    x = torch.randn(2, 4, 6, 6)
    for c_out, stride in [(4, 1), (6, 2)]:
        block, plain = res.ResidualBlock(4, c_out, stride), res.PlainBlock(4, c_out, stride)
        for b in (block, plain):
            nn.init.zeros_(b.bn2.weight), nn.init.zeros_(b.bn2.bias)
        torch.testing.assert_close(block(x), F.relu(block.shortcut(x)))
        assert plain(x).abs().max() == 0
    identity = res.ResidualBlock(4, 4)
    nn.init.zeros_(identity.bn2.weight), nn.init.zeros_(identity.bn2.bias)
    x.requires_grad_()
    identity(x).sum().backward()  # the gradient reaches x through the shortcut alone
    torch.testing.assert_close(x.grad, (x > 0).float())


def check_gradients(res):
    for c_in, c_out, stride in SHAPES[::4]:
        block = randomized(res.ResidualBlock(c_in, c_out, stride)).eval()
        x = torch.randn(1, c_in, 4, 4, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(block, (x,), fast_mode=True)
    block = res.ResidualBlock(3, 5, 2)
    block(torch.randn(2, 3, 5, 5)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in block.parameters())


def check_errors(res):
    for cls in (res.PlainBlock, res.ResidualBlock):
        for args, name in [((0, 4), "in_channels"), ((4, 0), "out_channels"), ((4, 4, 0), "stride"),
                           ((4, 4, 1.5), "stride"), ((4.0, 4), "in_channels")]:
            with pytest.raises(ValueError, match=name):
                cls(*args)
        block = cls(4, 6)
        # a 3-D or 5-D input with 4 at index 1 too: the rank is checked, not only the channels
        for shape in [(2, 3, 5, 5), (4, 5, 5), (2, 6, 5, 5), (4, 4, 5), (1, 4, 2, 5, 5)]:
            with pytest.raises(ValueError, match="in_channels"):
                block(torch.randn(shape))
        assert cls(300, 2)(torch.randn(2, int("300"), 2, 2)).shape == (2, 2, 2, 2)  # compared by value


CHECKS = [check_residual_matches_hand_computed, check_plain_matches_hand_computed, check_shortcuts,
          check_shapes_and_strides, check_parameters, check_zero_residual_passes_input, check_gradients,
          check_errors]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_residual(res, check):
    check(res)


# deliberately broken solutions, each the reference with one part wrong, and the check that must reject it


def variant(residual=None, plain=None):
    from torchkata.vision import residual as module
    return types.SimpleNamespace(ResidualBlock=residual or module.ResidualBlock, PlainBlock=plain or module.PlainBlock)


def relu_before_sum():
    from torchkata.vision.residual import ResidualBlock

    class Broken(ResidualBlock):  # relu(F(x)) + x: the block's output is no longer rectified
        def forward(self, x):
            return F.relu(self.residual(x)) + self.shortcut(x)
    return Broken


def always_projects():
    from torchkata.vision.residual import ResidualBlock

    class Broken(ResidualBlock):  # a projection even where the identity fits
        def __init__(self, c_in, c_out, stride=1):
            super().__init__(c_in, c_out, stride)
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))
    return Broken


def projection_ignores_stride():
    from torchkata.vision.residual import ResidualBlock

    class Broken(ResidualBlock):  # only the channels decide: a stride-2 block with equal channels adds x unshrunk
        def __init__(self, c_in, c_out, stride=1):
            super().__init__(c_in, c_out, stride)
            if c_in == c_out:
                self.shortcut = nn.Identity()
    return Broken


def plain_with_shortcut():
    from torchkata.vision.residual import ResidualBlock

    class Broken(ResidualBlock):  # a "plain" block that still adds its input: no degradation to see
        pass
    return Broken


BROKEN = {"relu-before-sum": (variant(residual=relu_before_sum()), check_residual_matches_hand_computed),
          "always-projects": (variant(residual=always_projects()), check_shortcuts),
          "projection-ignores-stride": (variant(residual=projection_ignores_stride()), check_shapes_and_strides),
          "plain-with-shortcut": (variant(plain=plain_with_shortcut()), check_plain_matches_hand_computed)}


@pytest.mark.suite_check
@pytest.mark.parametrize("name", BROKEN)
def test_broken_solution_is_rejected(name):
    broken, check = BROKEN[name]
    assert failing_checks([check], broken) == [check.__name__]
