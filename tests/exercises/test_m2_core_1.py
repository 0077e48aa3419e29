"""m2-core-1: a CNN on CIFAR-10 trained with your own Adam. The Adam is a14's (one module), graded by a14's checks,
and here in the training it is for: a few steps of the CIFAR-10 CNN from one seed with yours and with
torch.optim.Adam give the same losses and weights. The data path has its own tests in tests/data/test_cifar10.py."""
import copy

import pytest
import torch
import torch.nn.functional as F

from grading import failing_checks
from test_a14 import CHECKS as A14_CHECKS, broken

from torchkata.data import cifar10
from torchkata.vision.cifar_cnn import CifarCNN, channel_stats, normalize

EXERCISE = "m2-core-1"


@pytest.fixture(scope="module")
def optim(impl_for):
    return impl_for(EXERCISE)


def train_cnn(make_optimizer, steps=6, **options):
    """Losses and final weights of a small CIFAR-10 CNN trained on stand-in batches from seed 0."""
    images, labels = cifar10.stand_in(64, torch.Generator().manual_seed(0))
    mean, std = channel_stats(images)
    x = normalize(images, mean, std)
    torch.manual_seed(0)
    model = CifarCNN((4, 8, 8))
    opt = make_optimizer(model.parameters(), **options)
    losses = []
    for step in range(steps):
        idx = torch.arange(step * 16, step * 16 + 16) % len(x)
        opt.zero_grad()
        loss = F.cross_entropy(model(x[idx]), labels[idx])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, copy.deepcopy(model.state_dict())


@pytest.fixture(scope="module")
def torch_cnn():
    return {key: train_cnn(torch.optim.Adam, foreach=False, **options) for key, options in OPTIONS.items()}


OPTIONS = {"adam": dict(lr=3e-3), "adamw_amsgrad": dict(lr=3e-3, weight_decay=0.1, amsgrad=True, decoupled_weight_decay=True)}


def check_cnn_training_matches_torch(optim, torch_cnn):
    for key, options in OPTIONS.items():
        losses, weights = train_cnn(optim.Adam, **options)
        want_losses, want_weights = torch_cnn[key]
        torch.testing.assert_close(losses, want_losses, rtol=1e-5, atol=1e-6)
        for name, value in want_weights.items():
            torch.testing.assert_close(weights[name], value, rtol=1e-4, atol=1e-6, msg=f"{key}: {name}")
        assert losses[-1] < losses[0], "the CNN did not learn"


@pytest.mark.parametrize("check", A14_CHECKS, ids=lambda c: c.__name__)
def test_your_adam(optim, check):
    check(optim)


def test_cnn_trains_the_same(optim, torch_cnn):
    check_cnn_training_matches_torch(optim, torch_cnn)


@pytest.mark.suite_check
@pytest.mark.parametrize("bug", ["no_bias_correction", "eps_inside_sqrt", "global_step"])
def test_broken_adam_changes_the_training(bug, torch_cnn):
    assert failing_checks([lambda o: check_cnn_training_matches_torch(o, torch_cnn)], broken(**{bug: True}))
