"""b04-08: the small CNN with three ways to downsample. The blocks' layers and strides, the feature-map sizes
(odd sizes included), the parameter count by formula, the `conv` and `stage` hooks b04-07 and b04-03 build on,
the errors, and a short training that must fit a small batch. The experiment (results/b04-08/...) trains the
three variants on Fashion-MNIST."""
import types

import pytest
import torch
from torch import nn

from grading import failing_checks
from torchkata.training.loop import evaluate, train_epoch

EXERCISE = "b04-08"
DOWNSAMPLING = ("pool", "stride", "none")


@pytest.fixture(scope="module")
def cnn(impl_for):
    return impl_for(EXERCISE)


def features(model: nn.Sequential) -> nn.Sequential:
    """The layers before Flatten."""
    cut = next(i for i, m in enumerate(model) if isinstance(m, nn.Flatten))
    return model[:cut]


def expected_parameters(channels, side, hidden, classes=10):
    """3x3 conv weights (no bias) and batch norm's scale and shift per block, then the two linear layers."""
    blocks = sum(9 * c_in * c_out + 2 * c_out for c_in, c_out in zip((1, *channels), channels))
    if hidden == 0:  # the output layer reads the flattened map
        return blocks + channels[-1] * side * side * classes + classes
    return blocks + channels[-1] * side * side * hidden + hidden + hidden * classes + classes


def check_conv3x3(cnn):
    for stride, side in [(1, 9), (2, 5)]:
        conv = cnn.conv3x3(3, 5, stride)
        assert isinstance(conv, nn.Conv2d) and conv.bias is None
        assert (conv.kernel_size, conv.stride, conv.padding) == ((3, 3), (stride, stride), (1, 1))
        assert conv(torch.randn(2, 3, 9, 9)).shape == (2, 5, side, side)
    assert cnn.conv3x3(3, 5).stride == (1, 1)


def check_blocks(cnn):
    """pool: conv, max pool, batch norm, ReLU (b04-06's order); stride: a stride-2 conv; none: a stride-1 conv."""
    # each name spelt afresh: compared by value, not by identity with the interned literal
    layers = {ds: cnn.block(3, 6, "".join(list(ds))) for ds in DOWNSAMPLING}
    assert [type(m) for m in layers["pool"]] == [nn.Conv2d, nn.MaxPool2d, nn.BatchNorm2d, nn.ReLU]
    assert layers["pool"][1].kernel_size == 2 and layers["pool"][1].stride == 2
    for ds in ("stride", "none"):
        assert [type(m) for m in layers[ds]] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU], ds
    for ds, stride in [("pool", 1), ("stride", 2), ("none", 1)]:
        conv, norm = layers[ds][0], layers[ds][-2]
        assert (conv.in_channels, conv.out_channels, conv.stride, conv.padding) == (3, 6, (stride, stride), (1, 1))
        assert conv.bias is None and norm.num_features == 6
    x = torch.randn(2, 3, 7, 7)
    sides = {ds: nn.Sequential(*layers[ds])(x).shape[-1] for ds in DOWNSAMPLING}
    assert sides == {"pool": 3, "stride": 4, "none": 7}


def check_output_size(cnn):
    assert [cnn.output_size(s, "pool") for s in (28, 14, 7, 1)] == [14, 7, 3, 0]
    assert [cnn.output_size(s, "stride") for s in (28, 14, 7, 1)] == [14, 7, 4, 1]
    assert [cnn.output_size(s, "none") for s in (28, 7)] == [28, 7]


def check_feature_maps(cnn):
    x = torch.randn(1, 1, 28, 28)
    for channels, sides in [([4, 6], {"pool": 7, "stride": 7, "none": 28}),
                            ([2, 3, 5], {"pool": 3, "stride": 4, "none": 28})]:
        for ds in DOWNSAMPLING:
            model = cnn.small_cnn(channels, ds, hidden=8)
            side = sides[ds]
            assert features(model)(x).shape == (1, channels[-1], side, side), (channels, ds)
            assert model.eval()(x).shape == (1, 10)
            assert sum(isinstance(m, nn.BatchNorm2d) for m in model) == len(channels)
            assert sum(isinstance(m, nn.MaxPool2d) for m in model) == (len(channels) if ds == "pool" else 0)


def check_parameters(cnn):
    for channels, ds, side in [([4, 6], "pool", 7), ([4, 6], "stride", 7), ([4, 6], "none", 28),
                               ([2, 3, 5], "stride", 4), ([2, 3, 5], "pool", 3)]:
        for hidden in (12, 0):
            model = cnn.small_cnn(channels, ds, hidden=hidden, num_classes=7)
            want = expected_parameters(channels, side, hidden, 7)
            assert sum(p.numel() for p in model.parameters()) == want, (channels, ds, hidden)


def check_classifier(cnn):
    """flatten, hidden linear, ReLU, dropout, output linear; dropout's rate and the defaults."""
    model = cnn.small_cnn([4, 6], "pool", hidden=12, dropout=0.4, num_classes=3)
    tail = model[len(features(model)):]
    assert [type(m) for m in tail] == [nn.Flatten, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert (tail[1].in_features, tail[1].out_features, tail[3].p) == (6 * 49, 12, 0.4)
    assert (tail[4].in_features, tail[4].out_features) == (12, 3)
    default = cnn.small_cnn([4])
    assert default[-1].out_features == 10 and default[-2].p == 0.25 and default[-4].out_features == 128
    assert sum(isinstance(m, nn.MaxPool2d) for m in default) == 1  # pooling unless told otherwise
    linear = cnn.small_cnn([4, 6], "none", hidden=0, dropout=0.4, num_classes=3)  # no hidden layer, no dropout
    tail = linear[len(features(linear)):]
    assert [type(m) for m in tail] == [nn.Flatten, nn.Linear] and (tail[1].in_features, tail[1].out_features) == (
        6 * 28 * 28, 3)
    assert linear(torch.randn(2, 1, 28, 28)).shape == (2, 3)


def check_conv_hook(cnn):
    """`conv(c_in, c_out, stride)` builds every convolution: b04-07 passes its separable one."""
    for ds, stride in [("pool", 1), ("stride", 2), ("none", 1)]:
        calls = []

        def conv(c_in, c_out, s):
            calls.append((c_in, c_out, s))
            return nn.Conv2d(c_in, c_out, 3, s, padding=1, bias=False)
        model = cnn.small_cnn([3, 5], ds, hidden=8, conv=conv)
        assert calls == [(1, 3, stride), (3, 5, stride)], ds
        assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def check_stage_hook(cnn):
    """`depth` shape-keeping blocks from `stage(c)` after each downsampling block (b04-03's plain or residual)."""
    calls = []

    def stage(c):
        calls.append(c)
        return nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.Tanh())
    model = cnn.small_cnn([3, 5], "stride", hidden=8, stage=stage, depth=2)
    assert calls == [3, 3, 5, 5]
    kinds = [type(m).__name__ for m in features(model)]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU", "Sequential", "Sequential"] * 2
    assert [m[0].in_channels for m in model if isinstance(m, nn.Sequential)] == [3, 3, 5, 5]
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert cnn.small_cnn([3], stage=stage, depth=0)[0].in_channels == 1 and len(calls) == 4  # depth 0: no stage


def check_errors(cnn):
    with pytest.raises(ValueError, match="downsample"):
        cnn.small_cnn([4], "avg")
    with pytest.raises(ValueError, match="downsample"):
        cnn.block(1, 4, "Pool")
    with pytest.raises(ValueError, match="channels"):
        cnn.small_cnn([])
    with pytest.raises(ValueError, match="stage"):
        cnn.small_cnn([4], depth=1)


def synthetic(n=100, classes=10, seed=0):
    """Normalised images: a fixed random pattern per class plus noise, which a small CNN fits in a few epochs."""
    g = torch.Generator().manual_seed(seed)
    patterns = torch.randn(classes, 1, 28, 28, generator=g)
    labels = torch.arange(n) % classes
    return patterns[labels] + 0.5 * torch.randn(n, 1, 28, 28, generator=g), labels


def check_learns(cnn):
    """A few epochs of the shared loop must fit 60 images of 6 classes: the loss falls, accuracy passes 0.9."""
    x, labels = synthetic(60, classes=6)
    torch.manual_seed(0)
    model = cnn.small_cnn([4, 8], "stride", hidden=32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    losses = [train_epoch(model, optimizer, x, labels, 20, g)["loss"] for _ in range(3)]
    assert losses[-1] < 0.5 * losses[0], losses
    assert evaluate(model, x, labels)["accuracy"] >= 0.9


CHECKS = [check_conv3x3, check_blocks, check_output_size, check_feature_maps, check_parameters, check_classifier,
          check_conv_hook, check_stage_hook, check_errors, check_learns]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_small_cnn(cnn, check):
    check(cnn)


# deliberately broken solutions, each the reference with one part wrong, and the check that must reject it


def variant(**replacements):
    from torchkata.vision import small_cnn as module
    names = ("conv3x3", "block", "output_size", "small_cnn")
    return types.SimpleNamespace(**({name: getattr(module, name) for name in names} | replacements))


def norm_before_pool(c_in, c_out, downsample, conv=None):  # b04-06's order turned around
    from torchkata.vision.small_cnn import block
    layers = block(c_in, c_out, downsample)
    return [layers[0], *layers[2:], layers[1]] if downsample == "pool" else layers


def stride_keeps_size(c_in, c_out, downsample, conv=None):  # the "strided" conv at stride 1
    from torchkata.vision.small_cnn import block
    return block(c_in, c_out, "none" if downsample == "stride" else downsample)


def stride_rounds_down(size, downsample):  # 7 -> 3: the classifier's width no longer fits the map
    from torchkata.vision.small_cnn import output_size
    return size // 2 if downsample == "stride" else output_size(size, downsample)


def ignores_conv(channels, downsample="pool", **kwargs):  # builds its own convolutions
    from torchkata.vision.small_cnn import small_cnn
    kwargs.pop("conv", None)
    return small_cnn(channels, downsample, **kwargs)


BROKEN = {"norm-before-pool": (variant(block=norm_before_pool), check_blocks),
          "stride-keeps-size": (variant(block=stride_keeps_size), check_blocks),
          "stride-rounds-down": (variant(output_size=stride_rounds_down), check_output_size),
          "ignores-conv": (variant(small_cnn=ignores_conv), check_conv_hook)}


@pytest.mark.suite_check
@pytest.mark.parametrize("name", BROKEN)
def test_broken_solution_is_rejected(name):
    broken, check = BROKEN[name]
    assert failing_checks([check], broken) == [check.__name__]
