"""b04-01: the CIFAR-10 CNN and its input normalisation, graded against float64 references: the forward equals the
same layers written with torch.nn.functional, in eval mode (running statistics) and in training mode (batch
statistics), with and without the stem; hand-counted parameters; the config rebuilds the model; a few training
steps reduce the loss; errors name the problem. The data path (the reader of the pickled batches, the stand-in) is
tested in tests/data/test_cifar10.py."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grading import failing_checks
from torchkata.data import cifar10

EXERCISE = "b04-01"


@pytest.fixture(scope="module")
def cnn(impl_for):
    return impl_for(EXERCISE)


def images(n, seed=0):
    return torch.randint(0, 256, (n, 3, 32, 32), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def with_running_statistics(model, seed=0):
    """Batch norms with running statistics, scales and shifts away from their initial values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                for t, low in ((m.running_mean, -0.5), (m.running_var, 0.5), (m.weight, 0.5), (m.bias, -0.5)):
                    t.copy_(low + torch.rand(t.shape, generator=g))
    return model


def functional_forward(model, x, depth, stem, training):
    """The architecture in float64 with torch.nn.functional, on the model's own parameters taken in order."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    (linear,) = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(convs) == len(norms) == 3 * depth + (stem is not None)
    assert all(c.bias is None for c in convs), "batch norm's shift replaces the conv's bias"
    x = x.double()
    for i, (conv, norm) in enumerate(zip(convs, norms)):
        mean, var = (None, None) if training else (norm.running_mean.double(), norm.running_var.double())
        x = F.conv2d(x, conv.weight.double(), padding=1)
        x = F.relu(F.batch_norm(x, mean, var, norm.weight.double(), norm.bias.double(), training, eps=norm.eps))
        stage_layer = i - (stem is not None)
        if stage_layer >= 0 and (stage_layer + 1) % depth == 0:
            x = F.max_pool2d(x, 2)
    return F.linear(x.mean(dim=(2, 3)), linear.weight.double(), linear.bias.double())


def check_forward_matches_functional(cnn):
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    for channels, depth, stem in (((4, 8, 16), 1, None), ((3, 5, 6), 2, None), ((4, 6, 8), 1, 5)):
        torch.manual_seed(0)
        model = with_running_statistics(cnn.CifarCNN(channels, depth, stem=stem))
        model.eval()
        torch.testing.assert_close(model(x).double(), functional_forward(model, x, depth, stem, False),
                                   rtol=1e-4, atol=1e-5)
        model.train()
        torch.testing.assert_close(model(x).double(), functional_forward(model, x, depth, stem, True),
                                   rtol=1e-4, atol=1e-5)


def check_shapes_and_parameters(cnn):
    for channels, depth, stem, classes in (((4, 8, 16), 1, None, 10), ((2, 3, 5), 2, None, 10),
                                           ((4, 8, 16), 1, 6, 7)):
        model = cnn.CifarCNN(channels, depth, classes, stem=stem)
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, classes)
        assert model(torch.randn(0, 3, 32, 32).contiguous(memory_format=torch.channels_last)).shape == (0, classes)
        widths, count = [3] + ([stem] if stem else []), 0
        count += 3 * stem * 9 + 2 * stem if stem else 0
        for c in channels:
            for _ in range(depth):
                count += widths[-1] * c * 9 + 2 * c  # a bias-free conv and batch norm's weight and bias
                widths.append(c)
        count += channels[-1] * classes + classes
        assert sum(p.numel() for p in model.parameters()) == count
    default = cnn.CifarCNN()
    assert default.config == {"channels": [16, 32, 64], "depth": 1, "num_classes": 10, "stem": None}
    assert sum(p.numel() for p in default.parameters()) == 24346


def check_config_rebuilds_the_model(cnn):
    model = cnn.CifarCNN((4, 8, 16), 2, 7, stem=3)
    assert model.config == {"channels": [4, 8, 16], "depth": 2, "num_classes": 7, "stem": 3}
    again = cnn.CifarCNN(**model.config)
    again.load_state_dict(model.state_dict())  # the same layers, the same shapes


def check_training_steps_reduce_the_loss(cnn):
    x, y = cifar10.stand_in(64, torch.Generator().manual_seed(0))
    x = cnn.normalize(x, *cnn.channel_stats(x))
    torch.manual_seed(0)
    model = cnn.CifarCNN((8, 16, 16))
    losses = []
    for _ in range(8):  # plain gradient descent (torch.optim's first use imports torch._dynamo: seconds)
        loss = F.cross_entropy(model(x), y)
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= 0.2 * p.grad
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


def check_channel_stats_match_float64(cnn):
    x = images(20)
    mean, std = cnn.channel_stats(x)
    pixels = x.double().div(255).permute(1, 0, 2, 3).reshape(3, -1)
    assert mean.dtype == std.dtype == torch.float32 and mean.shape == std.shape == (3,)
    torch.testing.assert_close(mean, pixels.mean(1).float())
    torch.testing.assert_close(std, pixels.std(1).float())


def check_normalize(cnn):
    x = images(20)
    out = cnn.normalize(x, *cnn.channel_stats(x))
    assert out.shape == (20, 3, 32, 32) and out.dtype == torch.float32
    torch.testing.assert_close(out.mean((0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std((0, 2, 3)), torch.ones(3), atol=1e-4, rtol=0)
    mean, std = torch.tensor([0.1, 0.5, 0.9]), torch.tensor([0.2, 0.3, 0.4])  # given statistics, per channel
    want = (x.double() / 255 - mean.double().view(1, 3, 1, 1)) / std.double().view(1, 3, 1, 1)
    torch.testing.assert_close(cnn.normalize(x, mean, std).double(), want, rtol=1e-5, atol=1e-5)


def check_errors_name_the_problem(cnn):
    model = cnn.CifarCNN()
    for shape in ((2, 1, 28, 28), (3, 32, 32), (2, 3, 32, 32, 1), (2, 3, 32, 31)):
        with pytest.raises(ValueError, match=r"\[N, 3, 32, 32\], got " + r"\[" + ", ".join(map(str, shape)) + r"\]"):
            model(torch.randn(shape))
    for wrong in (images(2).float(), images(2)[:, :1], images(2)[0], images(2)[None]):
        for call in (lambda: cnn.channel_stats(wrong), lambda: cnn.normalize(wrong, torch.zeros(3), torch.ones(3))):
            with pytest.raises(ValueError, match=r"uint8 images \[N, 3, 32, 32\]"):
                call()
    for channels, depth in (((4, 8, 16), 0), ((4, 8), 1), ((4, 8, 16, 32), 1)):
        with pytest.raises(ValueError, match="three stages' channels and depth >= 1"):
            cnn.CifarCNN(channels, depth)


CHECKS = [check_forward_matches_functional, check_shapes_and_parameters, check_config_rebuilds_the_model,
          check_training_steps_reduce_the_loss, check_channel_stats_match_float64, check_normalize,
          check_errors_name_the_problem]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_cifar_cnn(cnn, check):
    check(cnn)


# deliberately broken solutions, each the reference with one part wrong


def reference(**broken):
    from torchkata.vision import cifar_cnn

    parts = {name: getattr(cifar_cnn, name) for name in ("CifarCNN", "channel_stats", "normalize")}
    return SimpleNamespace(**{**parts, **broken})


def cnn_with(block=None, pool=None, global_pool=nn.AdaptiveAvgPool2d(1)):
    """CifarCNN with its conv block or pooling replaced."""
    from torchkata.vision import cifar_cnn

    class Broken(cifar_cnn.CifarCNN):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            layers = []
            for m in self.features:
                if isinstance(m, nn.Conv2d) and block is not None:
                    layers += block(m.in_channels, m.out_channels)
                elif isinstance(m, (nn.BatchNorm2d, nn.ReLU)) and block is not None:
                    continue
                elif isinstance(m, nn.MaxPool2d) and pool is not None:
                    layers.append(pool())
                else:
                    layers.append(m)
            self.features = nn.Sequential(*layers)
            self.head[0] = global_pool
    return Broken


def relu_before_norm(c_in, c_out):
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.ReLU(), nn.BatchNorm2d(c_out)]


def conv_with_bias(c_in, c_out):
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]


def stats_over_everything(images):
    pixels = images.double() / 255
    return pixels.mean().repeat(3).float(), pixels.std().repeat(3).float()


def normalize_unscaled(images, mean, std):
    return (images.float() - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)


@pytest.mark.suite_check
@pytest.mark.parametrize("broken, rejected_by", [
    ({"CifarCNN": cnn_with(block=relu_before_norm)}, "check_forward_matches_functional"),
    ({"CifarCNN": cnn_with(block=conv_with_bias)}, "check_shapes_and_parameters"),
    ({"CifarCNN": cnn_with(pool=lambda: nn.AvgPool2d(2))}, "check_forward_matches_functional"),
    ({"CifarCNN": cnn_with(global_pool=nn.AdaptiveMaxPool2d(1))}, "check_forward_matches_functional"),
    ({"channel_stats": stats_over_everything}, "check_channel_stats_match_float64"),
    ({"normalize": normalize_unscaled}, "check_normalize"),
], ids=["relu-before-batch-norm", "conv-bias", "average-pooling", "global-max-pool", "one-mean-for-all-channels",
        "pixels-not-scaled"])
def test_broken_solution_is_rejected(broken, rejected_by):
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], reference(**broken)) == [rejected_by]
