"""b02-08: gradient flow. The deep MLP builder, the two initialisations (small and He) drawn exactly as specified,
the per-layer gradient norms against the gradients autograd leaves in .grad, and the first-to-last ratio: tiny for
sigmoids with small weights, near 1 for ReLUs with He initialisation."""
import math
import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grading import failing_checks

EXERCISE = "b02-08"


@pytest.fixture(scope="module")
def flow(impl_for):
    return impl_for(EXERCISE)


def check_deep_mlp(flow):
    model = flow.deep_mlp([5, 7, 7, 3], "relu")
    assert isinstance(model, nn.Sequential)
    assert [type(m) for m in model] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    assert [(m.in_features, m.out_features) for m in model if isinstance(m, nn.Linear)] == [(5, 7), (7, 7), (7, 3)]
    for name, kind in (("sigmoid", nn.Sigmoid), ("tanh", nn.Tanh)):
        assert [type(m) for m in flow.deep_mlp([4, 6, 2], name)] == [nn.Linear, kind, nn.Linear]
    single = flow.deep_mlp([4, 2], "sigmoid")
    assert [type(m) for m in single] == [nn.Linear] and single(torch.randn(3, 4)).shape == (3, 2)


def check_init_std(flow):
    assert flow.init_std("small", 10) == flow.init_std("small", 1000) == 0.1
    for fan_in in (1, 50, 784):
        assert flow.init_std("he", fan_in) == math.sqrt(2.0 / fan_in)
    # names built at run time are equal to the literals but not the same objects: compare with ==, not `is`
    assert flow.init_std("".join(["sm", "all"]), 7) == 0.1
    assert flow.init_std("".join(["h", "e"]), 8) == 0.5


def expected_weights(model, std_of, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.empty_like(m.weight).normal_(0.0, std_of(m.in_features), generator=g)
            for m in model.modules() if isinstance(m, nn.Linear)]


def check_init_weights_exactly(flow):
    # nested, and a layer without bias: every Linear, in order, from the generator
    for scheme, std_of in (("he", lambda fan_in: math.sqrt(2.0 / fan_in)), ("small", lambda fan_in: 0.1)):
        model = nn.Sequential(nn.Linear(6, 5), nn.Sigmoid(), nn.Sequential(nn.Linear(5, 4, bias=False), nn.ReLU()),
                              nn.Linear(4, 3))
        flow.init_weights(model, scheme, torch.Generator().manual_seed(11))
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        for layer, want in zip(linears, expected_weights(model, std_of, 11)):
            assert torch.equal(layer.weight, want)
            assert layer.weight.requires_grad and layer.weight.grad_fn is None
        assert all(torch.equal(m.bias, torch.zeros_like(m.bias)) for m in linears if m.bias is not None)


def check_init_statistics(flow):
    model = nn.Sequential(nn.Linear(500, 400))
    flow.init_weights(model, "he", torch.Generator().manual_seed(0))
    assert model[0].weight.std().item() == pytest.approx(math.sqrt(2 / 500), rel=0.02)
    assert abs(model[0].weight.mean().item()) < 0.002


def check_gradient_norms(flow):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Sequential(nn.Linear(5, 4), nn.ReLU()), nn.Linear(4, 3))
    F.cross_entropy(model(torch.randn(9, 6)), torch.randint(0, 3, (9,))).backward()
    norms = flow.gradient_norms(model)
    assert list(norms) == ["0", "2.0", "3"]
    for name, layer in (("0", model[0]), ("2.0", model[2][0]), ("3", model[3])):
        assert norms[name] == torch.linalg.vector_norm(layer.weight.grad).item()


def check_first_to_last_ratio(flow):
    assert flow.first_to_last_ratio({"a": 2.0, "b": 3.0, "c": 8.0}) == 0.25
    assert flow.first_to_last_ratio({"x": 6.0, "y": 2.0}) == 3.0


def ratio_at_init(flow, activation, scheme, depth=10, width=24):
    model = flow.deep_mlp([16] + [width] * (depth - 1) + [4], activation)
    flow.init_weights(model, scheme, torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(2)
    F.cross_entropy(model(torch.rand(32, 16, generator=g)), torch.randint(0, 4, (32,), generator=g)).backward()
    return flow.first_to_last_ratio(flow.gradient_norms(model))


def check_vanishing_against_healthy(flow):
    assert ratio_at_init(flow, "sigmoid", "small") < 1e-4
    assert 0.2 < ratio_at_init(flow, "relu", "he") < 5


def check_errors_name_the_problem(flow):
    with pytest.raises(ValueError, match="gelu"):
        flow.deep_mlp([3, 2], "gelu")
    with pytest.raises(ValueError, match=r"\[3\]"):
        flow.deep_mlp([3], "relu")
    for scheme in ("xavier", "glorot", "HE"):
        with pytest.raises(ValueError, match=scheme):
            flow.init_std(scheme, 4)
    with pytest.raises(ValueError, match="xavier"):
        flow.init_weights(nn.Linear(3, 2), "xavier", torch.Generator())
    with pytest.raises(ValueError, match="ReLU.*no Linear"):
        flow.gradient_norms(nn.ReLU())
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2))
    model[1](torch.randn(4, 2)).sum().backward()  # only the second layer has a gradient
    with pytest.raises(ValueError, match="'0'.*backward"):
        flow.gradient_norms(model)


CHECKS = [check_deep_mlp, check_init_std, check_init_weights_exactly, check_init_statistics, check_gradient_norms,
          check_first_to_last_ratio, check_vanishing_against_healthy, check_errors_name_the_problem]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_gradient_flow(flow, check):
    check(flow)


def broken_variants():
    from torchkata.autograd import gradient_flow as ref

    def variant(**changes):
        return types.SimpleNamespace(**{**vars(ref), **changes})

    def he_fan_out(scheme, fan_in):
        return ref.init_std(scheme, fan_in) if scheme == "small" else math.sqrt(2.0 / (fan_in + 1))

    def norms_with_bias(model):
        return {name: math.hypot(m.weight.grad.norm().item(), m.bias.grad.norm().item())
                for name, m in ref.linear_layers(model).items()}

    def last_to_first(norms):
        first, *_, last = norms.values()
        return last / first

    @torch.no_grad()
    def biases_left(model, scheme, generator):
        for layer in ref.linear_layers(model).values():
            layer.weight.normal_(0.0, ref.init_std(scheme, layer.in_features), generator=generator)

    def activation_after_last(sizes, activation):
        return nn.Sequential(*ref.deep_mlp(sizes, activation), ref.ACTIVATIONS[activation]())

    return {  # name: (variant, the check that must reject it)
        "he_with_wrong_fan": (variant(init_std=he_fan_out), "check_init_std"),
        "norms_with_bias": (variant(gradient_norms=norms_with_bias), "check_gradient_norms"),
        "last_to_first": (variant(first_to_last_ratio=last_to_first), "check_first_to_last_ratio"),
        "biases_left": (variant(init_weights=biases_left), "check_init_weights_exactly"),
        "activation_after_last": (variant(deep_mlp=activation_after_last), "check_deep_mlp"),
    }


@pytest.mark.suite_check
@pytest.mark.parametrize("name", list(broken_variants()))
def test_broken_gradient_flow_is_rejected(name):
    broken, rejected_by = broken_variants()[name]
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], broken) == [rejected_by]
