"""a15: a polynomial learning-rate schedule with an optional linear warm-up, built on b03-09's LRSchedule. Without
warm-up it must equal torch.optim.lr_scheduler.PolynomialLR at every step of 1,000 (past total_iters too); with it,
torch's SequentialLR of LinearLR and PolynomialLR; a hypothesis property over random settings; state_dict round trips;
errors that name the argument."""
import types

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch.optim import lr_scheduler

from grading import failing_checks
from schedule_checks import STEPS, assert_no_torch_schedulers, hyper, optimizer, saved, torch_trajectory, trajectory

EXERCISE = "a15"


@pytest.fixture(scope="module")
def polynomial(impl_for):
    return impl_for(EXERCISE)


def torch_schedule(opt, total_iters=5, power=1.0, warmup_iters=0, warmup_start_factor=1 / 3):
    decay = lr_scheduler.PolynomialLR(opt, total_iters=total_iters, power=power)
    if warmup_iters == 0:
        return decay
    warmup = lr_scheduler.LinearLR(opt, start_factor=warmup_start_factor, end_factor=1.0, total_iters=warmup_iters)
    return lr_scheduler.SequentialLR(opt, [warmup, decay], milestones=[warmup_iters])


def assert_same(polynomial, steps: int = STEPS, **options):
    ours = trajectory(lambda opt: polynomial.PolynomialLR(opt, **options), steps=steps)
    want = torch_trajectory(("a15", repr(options), steps), lambda opt: torch_schedule(opt, **options), steps=steps)
    torch.testing.assert_close(ours, want, rtol=1e-9, atol=1e-12, msg=lambda m: f"{options}: {m}")


def check_matches_polynomial_lr(polynomial):
    # total_iters below 1,000: the lr must reach 0 and stay there
    for options in [dict(total_iters=STEPS, power=1.0), dict(total_iters=300, power=2.0),
                    dict(total_iters=777, power=0.5), dict(total_iters=1, power=3.0), dict(total_iters=999, power=1.7)]:
        assert_same(polynomial, **options)


def check_defaults(polynomial):
    assert_same(polynomial, steps=10)  # total_iters 5, power 1, no warm-up
    opt = optimizer()
    schedule = polynomial.PolynomialLR(opt)
    assert (schedule.total_iters, schedule.power, schedule.warmup_iters) == (5, 1.0, 0)
    warm = polynomial.PolynomialLR(optimizer(), warmup_iters=3)  # the warm-up starts at LinearLR's 1/3 by default
    assert warm.get_last_lr() == pytest.approx([0.1 / 3, 0.01], rel=1e-12)


def check_warmup(polynomial):
    for options in [dict(total_iters=800, power=1.0, warmup_iters=100, warmup_start_factor=0.01),
                    dict(total_iters=500, power=2.0, warmup_iters=1, warmup_start_factor=0.5),
                    dict(total_iters=300, power=0.5, warmup_iters=250),
                    dict(total_iters=900, power=1.0, warmup_iters=100, warmup_start_factor=1.0)]:
        assert_same(polynomial, **options)


@settings(max_examples=20, deadline=None, derandomize=True)
@given(total_iters=st.integers(1, 60), power=st.sampled_from([0.5, 1.0, 2.0, 3.5]), warmup_iters=st.integers(0, 20),
       warmup_start_factor=st.sampled_from([0.01, 0.25, 1 / 3, 1.0]))
def property_matches_torch(polynomial, total_iters, power, warmup_iters, warmup_start_factor):
    assert_same(polynomial, steps=60, total_iters=total_iters, power=power, warmup_iters=warmup_iters,
                warmup_start_factor=warmup_start_factor)


def check_property(polynomial):
    property_matches_torch(polynomial)


def check_builds_on_b03_09(polynomial):
    from torchkata.optim.schedules import LRSchedule

    assert issubclass(polynomial.PolynomialLR, LRSchedule)  # extends the shared schedule, no copy of its machinery


def check_state_dict_round_trip(polynomial):
    options = dict(total_iters=600, power=2.0, warmup_iters=100, warmup_start_factor=0.1)
    want = torch_trajectory(("a15", repr(options), STEPS), lambda opt: torch_schedule(opt, **options))
    for restart in (50, 400, 800):  # in the warm-up, in the decay, after it
        opt = optimizer()
        schedule, rows = polynomial.PolynomialLR(opt, **options), []
        for step in range(STEPS):
            if step == restart:
                state, opt_state = saved(schedule.state_dict()), saved(opt.state_dict())
                assert not any(isinstance(v, torch.optim.Optimizer) for v in state.values())
                opt = optimizer()
                schedule = polynomial.PolynomialLR(opt)  # made with the defaults: the state brings the settings
                opt.load_state_dict(opt_state)
                schedule.load_state_dict(state)
            rows.append(hyper(opt))
            schedule.step()
        torch.testing.assert_close(torch.tensor(rows, dtype=torch.float64), want, rtol=1e-9, atol=1e-12,
                                   msg=lambda m: f"restarted at {restart}: {m}")


def check_errors_name_the_argument(polynomial):
    bad = [(dict(total_iters=0), "total_iters"), (dict(total_iters=2.5), "total_iters"),
           (dict(power=0.0), "power"), (dict(power=-1.0), "power"), (dict(power=float("nan")), "power"),
           (dict(warmup_iters=-1), "warmup_iters"), (dict(warmup_iters=1.5), "warmup_iters"),
           (dict(warmup_iters=True), "warmup_iters"),
           (dict(warmup_iters=5, warmup_start_factor=0.0), "warmup_start_factor"),
           (dict(warmup_iters=5, warmup_start_factor=-0.5), "warmup_start_factor"),
           (dict(warmup_iters=5, warmup_start_factor=1.5), "warmup_start_factor")]
    for options, name in bad:
        with pytest.raises(ValueError, match=name):
            polynomial.PolynomialLR(optimizer(), **options)


CHECKS = [check_matches_polynomial_lr, check_defaults, check_warmup, check_property, check_builds_on_b03_09,
          check_state_dict_round_trip, check_errors_name_the_argument]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_polynomial(polynomial, check):
    check(polynomial)


def broken_variants():
    from torchkata.optim import polynomial as ref

    def variant(lr_at):
        return types.SimpleNamespace(**{**vars(ref), "PolynomialLR": type("Broken", (ref.PolynomialLR,),
                                                                           {"lr_at": lr_at})})

    def no_clamp(self, step, base):  # past total_iters (1 - t/T) turns negative: an odd power gives a negative lr
        if step < self.warmup_iters:
            return ref.PolynomialLR.lr_at(self, step, base)
        return base * abs(1 - (step - self.warmup_iters) / self.total_iters) ** self.power

    def decay_counts_the_warmup(self, step, base):  # the decay starts at step 0, not after the warm-up
        if step < self.warmup_iters:
            return ref.PolynomialLR.lr_at(self, step, base)
        return base * (1 - min(step, self.total_iters) / self.total_iters) ** self.power

    def power_on_the_step(self, step, base):  # (1 - (t/T)^p) instead of (1 - t/T)^p
        if step < self.warmup_iters:
            return ref.PolynomialLR.lr_at(self, step, base)
        return base * (1 - (min(step - self.warmup_iters, self.total_iters) / self.total_iters) ** self.power)

    return {"no_clamp": (variant(no_clamp), "check_matches_polynomial_lr"),
            "decay_counts_the_warmup": (variant(decay_counts_the_warmup), "check_warmup"),
            "power_on_the_step": (variant(power_on_the_step), "check_matches_polynomial_lr")}


@pytest.mark.suite_check
@pytest.mark.parametrize("name", list(broken_variants()))
def test_broken_polynomial_is_rejected(name):
    broken, rejected_by = broken_variants()[name]
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], broken) == [rejected_by]


@pytest.mark.suite_check
def test_reference_does_not_use_torch_schedulers():
    from torchkata.optim import polynomial as module

    assert_no_torch_schedulers(module)
