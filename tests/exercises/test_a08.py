"""a08: a two-layer MLP with a tied (shared) first layer: one Parameter pair, counted once, whose gradient is the sum
of its two uses (against an untied copy whose two gradients are summed by hand), and which an optimizer updates once."""
import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from grading import failing_checks

EXERCISE = "a08"
FEATURES, CLASSES = 64, 10
# shared Linear(64, 64) once, head Linear(64, 10): 64*64 + 64 + 64*10 + 10; the untied baseline has a second 64*64 + 64
TIED_PARAMETERS, UNTIED_PARAMETERS = 4810, 8970
TIED_KEYS = ["shared.weight", "shared.bias", "head.weight", "head.bias"]


@pytest.fixture(scope="module")
def impl(impl_for):
    return impl_for(EXERCISE)


def by_hand(model, x):
    w, b = model.shared.weight, model.shared.bias
    return F.linear(F.relu(F.linear(F.relu(F.linear(x, w, b)), w, b)), model.head.weight, model.head.bias)


def check_parameter_count(impl):
    tied, untied = impl.TiedMLP(FEATURES, CLASSES), impl.UntiedMLP(FEATURES, CLASSES)
    assert impl.parameter_count(tied) == sum(p.numel() for p in tied.parameters()) == TIED_PARAMETERS
    assert impl.parameter_count(untied) == UNTIED_PARAMETERS
    assert impl.parameter_count(impl.TiedMLP(8, 3)) == 8 * 8 + 8 + 8 * 3 + 3
    assert [name for name, _ in tied.named_parameters()] == TIED_KEYS
    assert list(tied.state_dict()) == TIED_KEYS  # the shared layer is saved once
    assert [tuple(p.shape) for p in tied.parameters()] == [(64, 64), (64,), (10, 64), (10,)]
    assert [name for name, _ in untied.named_parameters()] == ["first.weight", "first.bias", "second.weight",
                                                               "second.bias", "head.weight", "head.bias"]


def check_forward_uses_the_layer_twice(impl):
    model = impl.TiedMLP(FEATURES, CLASSES).double()
    for shape in [(5, FEATURES), (2, 3, FEATURES), (FEATURES,)]:
        x = torch.randn(shape, dtype=torch.float64)
        y = model(x)
        assert y.shape == shape[:-1] + (CLASSES,)
        torch.testing.assert_close(y, by_hand(model, x), rtol=1e-12, atol=1e-12)
    with torch.no_grad():  # one change to the shared weight shows in both uses
        model.shared.weight.mul_(-0.5)
    torch.testing.assert_close(model(x), by_hand(model, x), rtol=1e-12, atol=1e-12)


def check_gradient_is_sum_of_both_uses(impl):
    tied = impl.TiedMLP(FEATURES, CLASSES).double()
    untied = impl.untie(tied)
    x, target = torch.randn(16, FEATURES, dtype=torch.float64), torch.randint(0, CLASSES, (16,))
    torch.testing.assert_close(untied(x), tied(x), rtol=1e-12, atol=1e-12)
    F.cross_entropy(tied(x), target).backward()
    F.cross_entropy(untied(x), target).backward()
    for name in ("weight", "bias"):
        first, second = getattr(untied.first, name).grad, getattr(untied.second, name).grad
        assert not torch.allclose(first, second)  # the two uses get different gradients
        torch.testing.assert_close(getattr(tied.shared, name).grad, first + second, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(getattr(tied.head, name).grad, getattr(untied.head, name).grad, rtol=1e-10, atol=1e-12)
    small = impl.TiedMLP(4, 3).double()  # gradcheck with respect to the shared weight (16 numbers, not 4096)
    weight = small.shared.weight.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda w: functional_call(small, {"shared.weight": w}, (x[:2, :4],)), (weight,))


def check_optimizer_updates_once(impl):
    model = impl.TiedMLP(FEATURES, CLASSES)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    assert sum(len(group["params"]) for group in optimizer.param_groups) == 4
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, target = torch.randn(8, FEATURES), torch.randint(0, CLASSES, (8,))
    F.cross_entropy(model(x), target).backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters()}
    optimizer.step()
    for key, value in model.state_dict().items():  # exactly one step of lr * gradient, not two
        torch.testing.assert_close(value, before[key] - 0.1 * grads[key])
    assert len(optimizer.state) == 4


def check_untie(impl):
    tied = impl.TiedMLP(FEATURES, CLASSES)
    untied = impl.untie(tied)
    assert isinstance(untied, impl.UntiedMLP) and impl.parameter_count(untied) == UNTIED_PARAMETERS
    for layer in (untied.first, untied.second):
        assert torch.equal(layer.weight, tied.shared.weight) and torch.equal(layer.bias, tied.shared.bias)
    assert untied.first.weight.data_ptr() != untied.second.weight.data_ptr() != tied.shared.weight.data_ptr()
    with torch.no_grad():  # copies: changing the untied model leaves the tied one alone
        untied.first.weight.zero_()
    assert tied.shared.weight.abs().sum() > 0 and untied.second.weight.abs().sum() > 0
    assert impl.untie(impl.TiedMLP(4, 2).double()).first.weight.dtype == torch.float64


def check_untied_forward(impl):
    model = impl.UntiedMLP(6, 3).double()
    x = torch.randn(4, 6, dtype=torch.float64)
    want = model.head(F.relu(model.second(F.relu(model.first(x)))))
    torch.testing.assert_close(model(x), want, rtol=1e-12, atol=1e-12)


def check_shape_errors(impl):
    for model in (impl.TiedMLP(FEATURES, CLASSES), impl.UntiedMLP(FEATURES, CLASSES)):
        for x in (torch.randn(3, 10), torch.randn(3, 100), torch.randn(FEATURES, 3), torch.tensor(1.0)):
            with pytest.raises(ValueError) as error:
                model(x)
            assert "64" in str(error.value) and str(tuple(x.shape)) in str(error.value), str(error.value)
    wide = impl.TiedMLP(300, 2)  # sizes beyond the small ints Python caches: compared by value, not identity
    assert wide(torch.randn(2, 300)).shape == (2, 2)


CHECKS = [check_parameter_count, check_forward_uses_the_layer_twice, check_gradient_is_sum_of_both_uses,
          check_optimizer_updates_once, check_untie, check_untied_forward, check_shape_errors]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_tied_mlp(impl, check):
    check(impl)


# deliberately broken versions, built on the reference with one thing changed
def variant(impl, **changes):
    return types.SimpleNamespace(**{name: getattr(impl, name) for name in
                                    ("TiedMLP", "UntiedMLP", "untie", "parameter_count")} | changes)


def broken(reference):
    class TwoLayers(reference.TiedMLP):  # "tied" in name only: a second layer of its own
        def __init__(self, features, classes):
            super().__init__(features, classes)
            self.second = nn.Linear(features, features)

        def forward(self, x):
            reference.check_features(x, self.features)
            return self.head(F.relu(self.second(F.relu(self.shared(x)))))

    class RegisteredTwice(reference.TiedMLP):  # the same Linear under two names: parameters() hides it, the state_dict not
        def __init__(self, features, classes):
            super().__init__(features, classes)
            self.again = self.shared

    class SecondUseDetached(reference.TiedMLP):  # the second use's weight cut from the graph
        def forward(self, x):
            reference.check_features(x, self.features)
            hidden = F.relu(self.shared(x))
            return self.head(F.relu(F.linear(hidden, self.shared.weight.detach(), self.shared.bias.detach())))

    class UsedOnce(reference.TiedMLP):
        def forward(self, x):
            reference.check_features(x, self.features)
            return self.head(F.relu(self.shared(x)))

    def untie_by_reference(model):  # "copies" that are the shared tensors themselves
        untied = reference.untie(model)
        untied.first.weight = untied.second.weight = model.shared.weight
        return untied

    return {
        "two_layers": (variant(reference, TiedMLP=TwoLayers), "check_parameter_count"),
        "registered_twice": (variant(reference, TiedMLP=RegisteredTwice), "check_parameter_count"),
        "second_use_detached": (variant(reference, TiedMLP=SecondUseDetached), "check_gradient_is_sum_of_both_uses"),
        "used_once": (variant(reference, TiedMLP=UsedOnce), "check_forward_uses_the_layer_twice"),
        "untie_shares": (variant(reference, untie=untie_by_reference), "check_untie"),
    }


@pytest.mark.suite_check
@pytest.mark.parametrize("name", ["two_layers", "registered_twice", "second_use_detached", "used_once", "untie_shares"])
def test_broken_tied_mlp_is_rejected(impl, name):
    implementation, rejected_by = broken(impl)[name]
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], implementation) == [rejected_by]
