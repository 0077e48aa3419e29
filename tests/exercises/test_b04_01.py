"""b04-01 (in progress): the CIFAR-10 CNN and its input normalisation, graded against float64 references and
hand-counted parameters. The data path is tested in tests/data/test_cifar10.py."""
import pytest
import torch

EXERCISE = "b04-01"


@pytest.fixture(scope="module")
def cnn():
    from torchkata.vision import cifar_cnn  # the catalog's reference once b04-01 is done

    return cifar_cnn


def images(n, seed=0):
    return torch.randint(0, 256, (n, 3, 32, 32), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def check_channel_stats_match_float64(cnn):
    x = images(20)
    mean, std = cnn.channel_stats(x)
    pixels = x.double().div(255).permute(1, 0, 2, 3).reshape(3, -1)
    torch.testing.assert_close(mean, pixels.mean(1).float())
    torch.testing.assert_close(std, pixels.std(1).float())


def check_normalize_centres_each_channel(cnn):
    x = images(20)
    out = cnn.normalize(x, *cnn.channel_stats(x))
    assert out.shape == (20, 3, 32, 32) and out.dtype == torch.float32
    torch.testing.assert_close(out.mean((0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std((0, 2, 3)), torch.ones(3), atol=1e-4, rtol=0)


def check_shapes_and_parameters(cnn):
    for channels, depth in (((4, 8, 16), 1), ((2, 3, 5), 2)):
        model = cnn.CifarCNN(channels, depth)
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
        widths, count = [3], 0
        for c in channels:
            for _ in range(depth):
                count += widths[-1] * c * 9 + 2 * c  # a bias-free conv and batch norm's weight and bias
                widths.append(c)
        count += channels[-1] * 10 + 10
        assert sum(p.numel() for p in model.parameters()) == count


def check_errors_name_the_problem(cnn):
    with pytest.raises(ValueError, match=r"\[N, 3, 32, 32\], got \[2, 1, 28, 28\]"):
        cnn.CifarCNN()(torch.randn(2, 1, 28, 28))
    with pytest.raises(ValueError, match="uint8"):
        cnn.normalize(torch.zeros(2, 3, 32, 32), torch.zeros(3), torch.ones(3))
    with pytest.raises(ValueError, match="uint8"):
        cnn.channel_stats(images(2).float())
    with pytest.raises(ValueError, match="depth >= 1"):
        cnn.CifarCNN((4, 8, 16), 0)


CHECKS = [check_channel_stats_match_float64, check_normalize_centres_each_channel, check_shapes_and_parameters,
          check_errors_name_the_problem]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_cifar_cnn(cnn, check):
    check(cnn)
