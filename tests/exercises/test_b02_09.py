"""b02-09: weight decay by hand, in the SGD of b02-04 (graded by b02-04's checks against torch.optim.SGD, which
decays the L2 way, and which grade decoupled decay against its formula), and here: the two kinds the same update
without momentum and different with it, pure decay, decay per group, state_dict and the gradient left alone."""
import copy

import pytest
import torch

from grading import failing_checks
from test_b02_04 import CHECKS as SGD_CHECKS, broken_sgd, gradient_of, make_params, train

EXERCISE = "b02-09"


@pytest.fixture(scope="module")
def sgd(impl_for):
    return impl_for(EXERCISE).SGD


def check_same_as_l2_without_momentum_only(sgd):
    # p (1 - lr wd) - lr g  ==  p - lr (g + wd p): the two kinds agree when nothing smooths the gradient
    for momentum, agree in ((0.0, True), (0.9, False)):
        coupled, decoupled = make_params(), make_params()
        train(lambda ps: sgd(ps, lr=0.05, momentum=momentum, weight_decay=0.2), coupled, 30)
        train(lambda ps: sgd(ps, lr=0.05, momentum=momentum, weight_decay=0.2, decoupled_weight_decay=True),
              decoupled, 30)
        gap = float((coupled[0] - decoupled[0]).detach().abs().max())
        assert (gap < 1e-10) == agree, (momentum, gap)


def check_pure_decay_is_geometric(sgd):
    # zero gradient: decoupled decay shrinks by (1 - lr wd) per step whatever the momentum; L2 decay with momentum
    # is a gradient like any other and follows the heavy-ball recursion, which here shrinks faster
    lr, wd, momentum, steps = 0.1, 0.5, 0.9, 12
    start = torch.linspace(-2, 2, 5, dtype=torch.float64)
    want_l2, velocity = start.clone(), torch.zeros_like(start)
    for step in range(steps):
        velocity = wd * want_l2 if step == 0 else momentum * velocity + wd * want_l2
        want_l2 = want_l2 - lr * velocity
    for decoupled, want in ((True, start * (1 - lr * wd) ** steps), (False, want_l2)):
        p = start.clone().requires_grad_()
        opt = sgd([p], lr=lr, momentum=momentum, weight_decay=wd, decoupled_weight_decay=decoupled)
        for _ in range(steps):
            p.grad = torch.zeros_like(p)
            opt.step()
        torch.testing.assert_close(p.detach(), want, rtol=1e-12, atol=1e-14)
        assert "momentum_buffer" in opt.state[p]


def check_decay_per_group(sgd):
    # the usual recipe: no decay on biases and norms, decay on weights, in one optimizer
    for decoupled in (False, True):
        ours, plain, decayed = make_params(), make_params(), make_params()
        train(lambda ps: sgd([{"params": ps[:1], "weight_decay": 0.3}, {"params": ps[1:]}], lr=0.05, momentum=0.9,
                             decoupled_weight_decay=decoupled), ours, 20)
        train(lambda ps: sgd(ps, lr=0.05, momentum=0.9), plain, 20)
        train(lambda ps: sgd(ps, lr=0.05, momentum=0.9, weight_decay=0.3, decoupled_weight_decay=decoupled), decayed, 20)
        torch.testing.assert_close(ours[0].detach(), decayed[0].detach(), rtol=0, atol=0)
        torch.testing.assert_close(ours[1].detach(), plain[1].detach(), rtol=0, atol=0)


def check_decoupled_survives_state_dict(sgd):
    options = dict(lr=0.05, momentum=0.9, weight_decay=0.2, decoupled_weight_decay=True)
    straight, resumed = make_params(), make_params()
    train(lambda ps: sgd(ps, **options), straight, 16)
    saved = copy.deepcopy(train(lambda ps: sgd(ps, **options), resumed, 8).state_dict())
    fresh = sgd(resumed, lr=0.05)
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["decoupled_weight_decay"] is True
    train(lambda ps: fresh, resumed, 8, first=8)
    torch.testing.assert_close(resumed[0].detach(), straight[0].detach(), rtol=0, atol=0)


def check_decoupled_leaves_grad_alone(sgd):
    params = make_params()
    opt = sgd(params, lr=0.1, momentum=0.9, weight_decay=0.5, decoupled_weight_decay=True)
    for p in params:
        p.grad = gradient_of(p.detach(), 0)
    grads = [p.grad.clone() for p in params]
    opt.step()
    torch.testing.assert_close(opt.state[params[0]]["momentum_buffer"], grads[0], rtol=0, atol=0)
    assert all(torch.equal(p.grad, g) for p, g in zip(params, grads)), "step changed p.grad"


CHECKS = [*SGD_CHECKS, check_same_as_l2_without_momentum_only,
          check_pure_decay_is_geometric, check_decay_per_group, check_decoupled_survives_state_dict,
          check_decoupled_leaves_grad_alone]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_weight_decay(sgd, check):
    check(sgd)


BROKEN = {  # bug of test_b02_04's broken_sgd: the check here that must reject it
    "decoupled_ignored": "check_decoupled_matches_formula",
    "decay_without_lr": "check_decoupled_matches_formula",
    "decay_after_step": "check_decoupled_matches_formula",
    "decay_in_place": "check_leaves_grad_and_gradless_params_alone",
}


@pytest.mark.suite_check
@pytest.mark.parametrize("name", BROKEN)
def test_broken_weight_decay_is_rejected(name):
    check = next(c for c in CHECKS if c.__name__ == BROKEN[name])
    assert failing_checks([check], broken_sgd(**{name: True})) == [BROKEN[name]]


@pytest.mark.suite_check
def test_correct_twin_passes_the_decay_checks():
    assert failing_checks(CHECKS[len(SGD_CHECKS):], broken_sgd()) == []
