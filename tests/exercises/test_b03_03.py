"""b03-03: dropout by hand. Training mode keeps each unit with probability 1 - p and scales it by 1 / (1 - p):
the keep rate and the output's mean are tested against their binomial standard deviations (5 sigma: a false
failure has probability below 1e-6, and the seeded generator makes each draw the same on every run); eval mode
is the identity; p = 0 and p = 1 behave as nn.Dropout's; gradients reach only the kept units."""
import ast
import inspect
import math
import types

import pytest
import torch
from torch import nn

from grading import failing_checks

EXERCISE = "b03-03"
SIGMAS = 5


@pytest.fixture(scope="module")
def drop(impl_for):
    return impl_for(EXERCISE)


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def check_keep_rate_and_expectation(drop):
    n = 100_000
    x = torch.ones(250, 400, dtype=torch.float64)
    for p in (0.1, 0.5, 0.8):
        out = drop.dropout(x, p, True, seeded(1))
        kept = (out != 0).double().mean().item()
        # keep rate: a binomial proportion, std sqrt(p (1 - p) / n)
        assert abs(kept - (1 - p)) < SIGMAS * math.sqrt(p * (1 - p) / n), (p, kept)
        # every kept unit is scaled by 1 / (1 - p)
        assert ((out == 0) | ((out - 1 / (1 - p)).abs() < 1e-12)).all()
        # the mean output: values 1 / (1 - p) with probability 1 - p, else 0: variance p / (1 - p)
        assert abs(out.mean().item() - 1.0) < SIGMAS * math.sqrt(p / (1 - p) / n), (p, out.mean().item())


def check_expectation_per_unit(drop):
    # E[dropout(x)] = x unit by unit, not only on average: 2,000 draws of one vector of mixed signs
    x = torch.tensor([-3.0, -0.5, 0.25, 1.0, 4.0], dtype=torch.float64)
    p, draws, g = 0.4, 2000, seeded(2)
    mean = torch.stack([drop.dropout(x, p, True, g) for _ in range(draws)]).mean(0)
    tolerance = SIGMAS * x.abs() * math.sqrt(p / (1 - p) / draws)
    assert ((mean - x).abs() < tolerance).all(), (mean, x)


def check_units_dropped_independently(drop):
    # one draw per unit: neighbours along each dim are both kept with probability (1 - p)^2, not 1 - p
    x, p = torch.ones(20, 100, 100), 0.5
    out = drop.dropout(x, p, True, seeded(4)) != 0
    for dim in range(3):
        a, b = out.narrow(dim, 0, x.shape[dim] - 1), out.narrow(dim, 1, x.shape[dim] - 1)
        both, q = (a & b).double().mean().item(), (1 - p) ** 2
        assert abs(both - q) < SIGMAS * math.sqrt(q * (1 - q) / a.numel() * 3), (dim, both)  # x3: pairs overlap


def check_eval_is_identity(drop):
    x = torch.randn(4, 7)
    for p in (0.0, 0.3, 1.0):
        assert torch.equal(drop.dropout(x, p, False, seeded()), x)
        module = drop.Dropout(p).eval()
        assert torch.equal(module(x), x)
        assert torch.equal(module(x), nn.Dropout(p).eval()(x))


def check_edge_probabilities(drop):
    x = torch.randn(30, 40, dtype=torch.float64, requires_grad=True)
    assert torch.equal(drop.dropout(x, 0.0, True, seeded()), x)  # p = 0: nothing dropped, nothing scaled
    zeros = drop.dropout(x, 1.0, True, seeded())  # p = 1: all dropped, finite, no nan
    assert torch.equal(zeros, torch.zeros_like(x))
    assert torch.equal(zeros, nn.Dropout(1.0)(x))
    (grad,) = torch.autograd.grad(zeros.sum(), x)
    assert torch.equal(grad, torch.zeros_like(x))


def check_module_trains_and_evals(drop):
    x = torch.ones(100, 100)
    module = drop.Dropout(0.5, generator=seeded(3))
    assert isinstance(module, nn.Module) and module.training
    out = module(x)
    assert set(out.unique().tolist()) == {0.0, 2.0}
    assert torch.equal(out, drop.dropout(x, 0.5, True, seeded(3)))  # the module draws from its generator
    assert not torch.equal(module(x), out)  # and the generator moves on: a new mask each call
    assert len(list(module.parameters())) == 0


def check_default_probability_is_half(drop):
    x = torch.ones(50, 60)
    for out in (drop.dropout(x, generator=seeded(10)), drop.Dropout(generator=seeded(10))(x)):
        assert set(out.unique().tolist()) == {0.0, 2.0}  # p = 0.5: kept units doubled


def check_seeded_and_default_generator(drop):
    x = torch.randn(50, 60)
    a, b = drop.dropout(x, 0.3, True, seeded(5)), drop.dropout(x, 0.3, True, seeded(5))
    assert torch.equal(a, b)
    assert not torch.equal(a, drop.dropout(x, 0.3, True, seeded(6)))
    torch.manual_seed(7)
    c = drop.dropout(x, 0.3)  # training by default, drawing from torch's default generator
    torch.manual_seed(7)
    assert torch.equal(c, drop.dropout(x, 0.3)) and (c == 0).any()


def check_gradient_only_through_kept_units(drop):
    x = torch.randn(20, 30, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(20, 30, dtype=torch.float64)
    p = 0.35
    mask = drop.dropout(torch.ones_like(x), p, True, seeded(8)) != 0  # the mask this seed draws
    (grad,) = torch.autograd.grad((drop.dropout(x, p, True, seeded(8)) * weights).sum(), x)
    torch.testing.assert_close(grad, weights * mask / (1 - p), rtol=1e-12, atol=0)
    small = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)  # the generator reseeded: one mask
    assert torch.autograd.gradcheck(lambda t: drop.dropout(t, p, True, seeded(9)), (small,))


def check_shapes_dtypes_layouts(drop):
    for shape in [(7,), (3, 5), (2, 3, 4), (0, 4), ()]:
        for dtype in (torch.float32, torch.float64, torch.bfloat16):
            x = torch.randn(shape).to(dtype)
            out = drop.dropout(x, 0.5, True, seeded())
            assert out.shape == x.shape and out.dtype == dtype
            assert ((out == 0) | (out == x * 2)).all()
    x = torch.randn(40, 60).t()  # non-contiguous
    out = drop.dropout(x, 0.25, True, seeded())
    assert ((out == 0) | torch.isclose(out, x / 0.75)).all() and (out == 0).any()


def check_bad_probability(drop):
    x = torch.randn(3)
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError, match=f"p.*{p}"):
            drop.dropout(x, p)
        with pytest.raises(ValueError, match=f"p.*{p}"):
            drop.Dropout(p)
        with pytest.raises(ValueError, match=f"p.*{p}"):
            drop.dropout(x, p, training=False)  # checked in eval mode too, as F.dropout does


CHECKS = [check_keep_rate_and_expectation, check_expectation_per_unit, check_units_dropped_independently,
          check_eval_is_identity, check_edge_probabilities, check_module_trains_and_evals,
          check_default_probability_is_half, check_seeded_and_default_generator,
          check_gradient_only_through_kept_units, check_shapes_dtypes_layouts, check_bad_probability]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_dropout(drop, check):
    check(drop)


def test_same_statistics_as_nn_dropout(drop):
    # not the same bits: nn.Dropout takes no generator, so only the rates can be compared (the experiment
    # shows that drawing like ATen, bernoulli_ on a tensor like x, reproduces F.dropout's mask)
    x, p, n = torch.ones(400, 500), 0.3, 200_000
    torch.manual_seed(0)
    theirs = (nn.Dropout(p)(x) != 0).float().mean().item()
    ours = (drop.Dropout(p, seeded(0))(x) != 0).float().mean().item()
    assert abs(theirs - ours) < SIGMAS * math.sqrt(2 * p * (1 - p) / n)


def test_no_builtin_dropout_in_reference():
    from torchkata.nn import dropout as ref

    # names in the code, not the docstrings: torch.dropout, F.dropout, nn.Dropout, torch.native_dropout, ...
    used = {node.attr for node in ast.walk(ast.parse(inspect.getsource(ref))) if isinstance(node, ast.Attribute)}
    assert not {name for name in used if "dropout" in name.lower()}, used


def broken_variants():
    from torchkata.nn import dropout as ref

    def variant(fn):
        return types.SimpleNamespace(**{**vars(ref), "dropout": fn})

    def drop_with(scale, keep=lambda x, p, g: ref.dropout_mask(x, p, g), eval_identity=True):
        def dropout(x, p=0.5, training=True, generator=None):
            ref.check_probability(p)
            if not training and eval_identity:
                return x
            if p == 1.0:
                return x * 0.0
            return x * keep(x, p, generator) * scale(p)
        return dropout

    return {  # name: (variant, the check that must reject it)
        "not_scaled": (variant(drop_with(lambda p: 1.0)), "check_keep_rate_and_expectation"),
        "scaled_by_1_over_p": (variant(drop_with(lambda p: 1 / p)), "check_keep_rate_and_expectation"),
        "keeps_with_p": (variant(drop_with(lambda p: 1 / (1 - p), keep=lambda x, p, g: ref.dropout_mask(x, 1 - p, g))),
                         "check_keep_rate_and_expectation"),
        "one_mask_per_row": (variant(drop_with(lambda p: 1 / (1 - p),
                                               keep=lambda x, p, g: ref.dropout_mask(x[..., :1], p, g)
                                               if x.dim() else ref.dropout_mask(x, p, g))),
                             "check_units_dropped_independently"),
        "drops_in_eval": (variant(drop_with(lambda p: 1 / (1 - p), eval_identity=False)), "check_eval_is_identity"),
    }


@pytest.mark.suite_check
@pytest.mark.parametrize("name", list(broken_variants()))
def test_broken_dropout_is_rejected(name):
    broken, rejected_by = broken_variants()[name]
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], broken) == [rejected_by]
