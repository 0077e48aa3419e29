"""b03-01: a feed-forward network from scratch with nn.Module: its parameter count, its He initialisation (the
statistics of the drawn weights), its forward against F.linear and ReLU, its gradients and its errors."""
import inspect
import math
import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grading import failing_checks

EXERCISE = "b03-01"


@pytest.fixture(scope="module")
def impl(impl_for):
    return impl_for(EXERCISE)


def by_hand(model, x):
    *hidden, last = zip(model.weights, model.biases)
    for w, b in hidden:
        x = F.relu(F.linear(x, w, b))
    return F.linear(x, *last)


def check_parameter_count(impl):
    for sizes, count in [([64, 128, 10], 64 * 128 + 128 + 128 * 10 + 10), ([3, 1], 4), ([5, 4, 3, 2], 24 + 15 + 8)]:
        model = impl.FeedForward(sizes)
        assert impl.parameter_count(sizes) == sum(p.numel() for p in model.parameters()) == count
        assert [tuple(w.shape) for w in model.weights] == [(b, a) for a, b in zip(sizes, sizes[1:])]
        assert [tuple(b.shape) for b in model.biases] == [(b,) for b in sizes[1:]]
        assert len(list(model.parameters())) == 2 * (len(sizes) - 1)


def check_he_init(impl):
    model = impl.FeedForward([400, 300, 200], generator=torch.Generator().manual_seed(1))
    for weight, fan_in in zip(model.weights, (400, 300)):
        weight = weight.detach()
        std = math.sqrt(2 / fan_in)  # He: N(0, 2 / fan_in); 60000+ draws, so 3% and 0.02 std are wide margins
        assert abs(float(weight.std()) / std - 1) < 0.03, (float(weight.std()), std)
        assert abs(float(weight.mean())) < 0.02 * std
        assert abs(float(weight.abs().mean()) / (std * math.sqrt(2 / math.pi)) - 1) < 0.03  # normal, not uniform
    assert not any(b.detach().any() for b in model.biases)
    again = impl.FeedForward([400, 300, 200], generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))
    other = impl.FeedForward([400, 300, 200], generator=torch.Generator().manual_seed(2))
    assert not torch.equal(model.weights[0], other.weights[0])


def check_forward(impl):
    for sizes in ([6, 3], [6, 8, 3], [6, 8, 7, 3], [6, 5, 5, 5, 3]):  # one to four layers
        model = impl.FeedForward(sizes).double()
        with torch.no_grad():
            for b in model.biases:  # non-zero biases, so that a missing or misplaced bias shows
                b.normal_()
        for shape in [(5, 6), (6,), (2, 3, 6)]:
            x = torch.randn(shape, dtype=torch.float64)
            y = model(x)
            assert y.shape == shape[:-1] + (3,)
            torch.testing.assert_close(y, by_hand(model, x), rtol=1e-12, atol=1e-12)
        assert (model(torch.randn(50, 6, dtype=torch.float64)) < 0).any()  # no ReLU on the logits


def check_gradients(impl):
    model = impl.FeedForward([4, 5, 3]).double()
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    F.cross_entropy(model(x), torch.tensor([0, 1, 2, 0, 1, 2])).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert torch.autograd.gradcheck(model, (x.detach().requires_grad_(),))


def check_errors(impl):
    for sizes in ([], [5], [3, 0, 2]):
        with pytest.raises(ValueError, match=str(sizes).replace("[", r"\[").replace("]", r"\]")):
            impl.FeedForward(sizes)
    model = impl.FeedForward([6, 4, 2])
    for x in (torch.randn(3, 5), torch.randn(3, 7), torch.tensor(1.0)):
        with pytest.raises(ValueError) as error:
            model(x)
        assert "6" in str(error.value) and str(tuple(x.shape)) in str(error.value)


def check_built_from_parameters(impl):
    source = inspect.getsource(impl)
    for builtin in ("nn.Linear", "F.linear", "nn.Sequential", "nn.init"):
        assert builtin not in source, builtin
    assert not any(isinstance(m, nn.Linear) for m in impl.FeedForward([3, 4, 2]).modules())


CHECKS = [check_parameter_count, check_he_init, check_forward, check_gradients, check_errors, check_built_from_parameters]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_feedforward(impl, check):
    check(impl)


def broken(reference, init_std=lambda fan_in: math.sqrt(2 / fan_in), relu_last=False, no_relu=False,
           count=None, linear=False):
    class Broken(reference.FeedForward):
        def __init__(self, sizes, generator=None):
            super().__init__(sizes, generator)
            with torch.no_grad():
                for w in self.weights:
                    w.copy_(torch.randn(w.shape, generator=generator) * init_std(w.shape[1]))
            self.extra = nn.Linear(1, 1) if linear else None

        def forward(self, x):
            if x.shape[-1:] != (self.sizes[0],):
                raise ValueError(f"{self.sizes[0]} {tuple(x.shape)}")
            for i, (w, b) in enumerate(zip(self.weights, self.biases)):
                x = x @ w.T + b
                if not no_relu and (relu_last or i < len(self.weights) - 1):
                    x = torch.relu(x)
            return x
    return types.SimpleNamespace(FeedForward=Broken, parameter_count=count or reference.parameter_count)


FLAWS = {  # name: (changes, the check that must reject it)
    "xavier_std": ({"init_std": lambda fan_in: math.sqrt(1 / fan_in)}, "check_he_init"),
    "unit_std": ({"init_std": lambda fan_in: 1.0}, "check_he_init"),
    "relu_on_logits": ({"relu_last": True}, "check_forward"),
    "no_relu": ({"no_relu": True}, "check_forward"),
    "weights_only_count": ({"count": lambda sizes: sum(a * b for a, b in zip(sizes, sizes[1:]))}, "check_parameter_count"),
    "hidden_linear": ({"linear": True}, "check_built_from_parameters"),
}


@pytest.mark.suite_check
@pytest.mark.parametrize("flaw", FLAWS)
def test_broken_feedforward_is_rejected(impl, flaw):
    changes, rejected_by = FLAWS[flaw]
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], broken(impl, **changes)) == [rejected_by]
