"""b03-09: learning-rate schedules by hand (StepLR, CosineAnnealingLR, LinearLR warm-up, OneCycleLR with its
momentum cycling), each run beside torch.optim.lr_scheduler's for 1,000 steps on two parameter groups with different
learning rates: every step's lr (and momentum or beta1) equal to rounding; state_dict round trips; clear errors."""
import types

import pytest
import torch
from torch.optim import lr_scheduler

from grading import failing_checks
from schedule_checks import STEPS, assert_no_torch_schedulers, hyper, optimizer, saved, torch_trajectory, trajectory

EXERCISE = "b03-09"


@pytest.fixture(scope="module")
def schedules(impl_for):
    return impl_for(EXERCISE)


def named_trajectory(name: str, kind: str, options: dict, steps: int = STEPS) -> torch.Tensor:
    """The trajectory of lr_scheduler.<name>(optimizer, **options)."""
    return torch_trajectory((name, kind, repr(options), steps), lambda opt: getattr(lr_scheduler, name)(opt, **options),
                            kind, steps)


def assert_same_schedule(schedules, name: str, kind: str = "sgd", **options):
    ours = trajectory(lambda opt: getattr(schedules, name)(opt, **options), kind)
    torch.testing.assert_close(ours, named_trajectory(name, kind, options), rtol=1e-9, atol=1e-12,
                               msg=lambda m: f"{name} {options}: {m}")


def check_step_lr(schedules):
    for options in [dict(step_size=30, gamma=0.5), dict(step_size=1, gamma=0.995), dict(step_size=7),
                    dict(step_size=1000, gamma=0.5)]:
        assert_same_schedule(schedules, "StepLR", **options)


def check_cosine(schedules):
    # T_max of 1000 anneals once; 300 goes down and back up past T_max, as torch's does
    for options in [dict(T_max=STEPS), dict(T_max=300, eta_min=1e-3), dict(T_max=1, eta_min=0.01), dict(T_max=77)]:
        assert_same_schedule(schedules, "CosineAnnealingLR", **options)


def check_linear_warmup(schedules):
    for options in [dict(), dict(start_factor=0.01, total_iters=100), dict(start_factor=0.5, end_factor=0.1,
                                                                           total_iters=777),
                    dict(start_factor=1.0, end_factor=0.0, total_iters=1), dict(start_factor=0.25, total_iters=STEPS)]:
        assert_same_schedule(schedules, "LinearLR", **options)


def check_one_cycle(schedules):
    for kind, options in [
        ("sgd", dict(max_lr=1.0, total_steps=STEPS)),  # the defaults: two phases, cosine, momentum 0.95 -> 0.85
        ("sgd", dict(max_lr=[1.0, 0.3], epochs=10, steps_per_epoch=100, pct_start=0.25, anneal_strategy="linear",
                     div_factor=10.0, final_div_factor=100.0, base_momentum=[0.8, 0.7], max_momentum=[0.9, 0.99])),
        ("sgd", dict(max_lr=0.5, total_steps=STEPS, three_phase=True)),
        ("sgd", dict(max_lr=0.5, total_steps=STEPS, cycle_momentum=False)),  # momentum stays 0.9
        ("adam", dict(max_lr=[0.01, 0.02], total_steps=STEPS, three_phase=True, anneal_strategy="linear")),
        ("adam", dict(max_lr=0.01, total_steps=STEPS, pct_start=0.5, base_momentum=0.5)),  # beta1 only, beta2 kept
        ("sgd", dict(max_lr=0.1, total_steps=STEPS, pct_start=0.0)),  # no rise at all: pct_start may be 0
    ]:
        assert_same_schedule(schedules, "OneCycleLR", kind, **options)


def check_one_cycle_ends(schedules):
    opt = optimizer()
    schedule = schedules.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    for _ in range(10):
        schedule.step()  # to step total_steps itself, as torch allows
    with pytest.raises(ValueError, match="total_steps"):
        schedule.step()
    # pct_start 1: the whole cycle rises (torch allows it), up to the last step
    ours = trajectory(lambda opt: schedules.OneCycleLR(opt, max_lr=1.0, total_steps=10, pct_start=1.0), steps=9)
    want = named_trajectory("OneCycleLR", "sgd", dict(max_lr=1.0, total_steps=10, pct_start=1.0), steps=9)
    torch.testing.assert_close(ours, want, rtol=1e-9, atol=1e-12)


def check_step_zero_applied_at_construction(schedules):
    for name, options in [("StepLR", dict(step_size=3)), ("CosineAnnealingLR", dict(T_max=10)),
                          ("LinearLR", dict(start_factor=0.1)), ("OneCycleLR", dict(max_lr=1.0, total_steps=10))]:
        ours, want = optimizer(), optimizer()
        schedule = getattr(schedules, name)(ours, **options)
        getattr(lr_scheduler, name)(want, **options)
        assert schedule.last_epoch == 0, name
        torch.testing.assert_close(hyper(ours), hyper(want), rtol=1e-12, atol=0)
        assert [g["initial_lr"] for g in ours.param_groups] == [g["initial_lr"] for g in want.param_groups], name


def check_base_lr_from_initial_lr(schedules):
    # a group that already has an initial_lr (a second schedule, a resumed run) keeps it as its base, as torch does
    ours, want = optimizer(), optimizer()
    for opt in (ours, want):
        opt.param_groups[0]["initial_lr"] = 0.5
    schedule = schedules.StepLR(ours, step_size=2, gamma=0.5)
    assert schedule.base_lrs == lr_scheduler.StepLR(want, step_size=2, gamma=0.5).base_lrs == [0.5, 0.03]
    for _ in range(5):
        schedule.step()
    assert schedule.get_last_lr() == pytest.approx([0.5 * 0.25, 0.03 * 0.25], rel=1e-12)


# (name, optimizer, options, other options: the restarted schedule is made with these, and the state must bring
# back the saved settings, as torch's does)
ROUND_TRIPS = [("StepLR", "sgd", dict(step_size=30, gamma=0.5), dict(step_size=7)),
               ("CosineAnnealingLR", "sgd", dict(T_max=300), dict(T_max=50, eta_min=0.5)),
               ("LinearLR", "sgd", dict(start_factor=0.1, total_iters=600), dict()),
               ("OneCycleLR", "adam", dict(max_lr=[0.01, 0.02], total_steps=STEPS, three_phase=True),
                dict(max_lr=0.5, total_steps=2 * STEPS, pct_start=0.5, anneal_strategy="linear"))]


def check_state_dict_round_trip(schedules):
    for name, kind, options, other in ROUND_TRIPS:
        opt = optimizer(kind)
        schedule, rows = getattr(schedules, name)(opt, **options), []
        for step in range(STEPS):
            if step == 400:  # a restart: a fresh optimizer and schedule, both loaded from what was saved
                state, opt_state = saved(schedule.state_dict()), saved(opt.state_dict())
                assert not any(isinstance(v, torch.optim.Optimizer) for v in state.values()), name
                opt = optimizer(kind)
                schedule = getattr(schedules, name)(opt, **other)
                opt.load_state_dict(opt_state)
                schedule.load_state_dict(state)
                assert schedule.last_epoch == 400, name
            rows.append(hyper(opt))
            schedule.step()
        torch.testing.assert_close(torch.tensor(rows, dtype=torch.float64), named_trajectory(name, kind, options),
                                   rtol=1e-9, atol=1e-12, msg=lambda m: f"{name} resumed at step 400: {m}")


def check_load_state_dict_sets_the_optimizer(schedules):
    # a closed form needs only the step count: loading the schedule alone puts that step's values back
    for name, kind, options, other in ROUND_TRIPS:
        first, second = optimizer(kind), optimizer(kind)
        schedule = getattr(schedules, name)(first, **options)
        for _ in range(250):
            schedule.step()
        getattr(schedules, name)(second, **other).load_state_dict(saved(schedule.state_dict()))
        assert hyper(second) == pytest.approx(hyper(first), rel=1e-12), name


def check_errors_name_the_argument(schedules):
    opt = optimizer()
    bad = [(schedules.StepLR, dict(step_size=0), "step_size"), (schedules.StepLR, dict(step_size=2.5), "step_size"),
           (schedules.StepLR, dict(step_size=True), "step_size"),
           (schedules.CosineAnnealingLR, dict(T_max=0), "T_max"),
           (schedules.LinearLR, dict(start_factor=0.0), "start_factor"),
           (schedules.LinearLR, dict(start_factor=1.5), "start_factor"),
           (schedules.LinearLR, dict(start_factor=-0.5), "start_factor"),
           (schedules.LinearLR, dict(end_factor=-0.1), "end_factor"),
           (schedules.LinearLR, dict(end_factor=1.1), "end_factor"),
           (schedules.LinearLR, dict(total_iters=0), "total_iters"),
           (schedules.OneCycleLR, dict(max_lr=1.0), "total_steps"),
           (schedules.OneCycleLR, dict(max_lr=1.0, epochs=3), "total_steps.*steps_per_epoch"),
           (schedules.OneCycleLR, dict(max_lr=1.0, steps_per_epoch=3), "total_steps.*epochs"),
           (schedules.OneCycleLR, dict(max_lr=1.0, total_steps=0), "total_steps"),
           (schedules.OneCycleLR, dict(max_lr=1.0, epochs=0, steps_per_epoch=5), "epochs"),
           (schedules.OneCycleLR, dict(max_lr=1.0, epochs=2, steps_per_epoch=0), "steps_per_epoch"),
           (schedules.OneCycleLR, dict(max_lr=1.0, total_steps=10, pct_start=1.5), "pct_start"),
           (schedules.OneCycleLR, dict(max_lr=1.0, total_steps=10, pct_start=-0.1), "pct_start"),
           (schedules.OneCycleLR, dict(max_lr=1.0, total_steps=10, anneal_strategy="exp"), "anneal_strategy"),
           (schedules.OneCycleLR, dict(max_lr=[1.0, 2.0, 3.0], total_steps=10), "max_lr"),
           (schedules.OneCycleLR, dict(max_lr=1.0, total_steps=10, base_momentum=[0.8]), "base_momentum")]
    for make, options, name in bad:
        with pytest.raises(ValueError, match=name):
            make(opt, **options)
    no_momentum = torch.optim.Adagrad([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="momentum"):
        schedules.OneCycleLR(no_momentum, max_lr=1.0, total_steps=10)
    schedules.OneCycleLR(no_momentum, max_lr=1.0, total_steps=10, cycle_momentum=False)  # fine without
    with pytest.raises(TypeError, match="Optimizer"):
        schedules.StepLR([torch.nn.Parameter(torch.zeros(1))], step_size=1)


CHECKS = [check_step_lr, check_cosine, check_linear_warmup, check_one_cycle, check_one_cycle_ends,
          check_step_zero_applied_at_construction, check_base_lr_from_initial_lr, check_state_dict_round_trip,
          check_load_state_dict_sets_the_optimizer, check_errors_name_the_argument]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_schedules(schedules, check):
    check(schedules)


def broken_variants():
    from torchkata.optim import schedules as ref

    def variant(name, **methods):
        return types.SimpleNamespace(**{**vars(ref), name: type(f"Broken{name}", (getattr(ref, name),), methods)})

    def momentum_with_the_lr(self):  # momentum rising and falling with the lr instead of against it
        ref.LRSchedule._apply(self)
        i, pct = self._phase(self.last_epoch)
        for group, low, high in zip(self.optimizer.param_groups, self.base_momentums, self.max_momentums):
            points = [low, high, low, low] if self.three_phase else [low, high, low]
            group["momentum"] = self._anneal(points[i], points[i + 1], pct)

    def load_without_applying(self, state):
        self.__dict__.update(state)

    return {  # name: (variant, the check that must reject it)
        "step_lr_one_early": (variant("StepLR", lr_at=lambda self, t, base: base * self.gamma ** ((t + 1) //
                                                                                                  self.step_size)),
                              "check_step_lr"),
        "cosine_ignores_eta_min": (variant("CosineAnnealingLR", lr_at=lambda self, t, base: base * (
            1 + __import__("math").cos(__import__("math").pi * t / self.T_max)) / 2), "check_cosine"),
        "warmup_never_stops": (variant("LinearLR", lr_at=lambda self, t, base: base * (
            self.start_factor + (self.end_factor - self.start_factor) * t / self.total_iters)), "check_linear_warmup"),
        "momentum_not_inverted": (variant("OneCycleLR", _apply=momentum_with_the_lr), "check_one_cycle"),
        "load_state_dict_forgets_the_lr": (variant("StepLR", load_state_dict=load_without_applying),
                                           "check_load_state_dict_sets_the_optimizer"),
    }


@pytest.mark.suite_check
@pytest.mark.parametrize("name", list(broken_variants()))
def test_broken_schedule_is_rejected(name):
    broken, rejected_by = broken_variants()[name]
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], broken) == [rejected_by]


@pytest.mark.suite_check
def test_reference_does_not_use_torch_schedulers():
    from torchkata.optim import schedules as module

    assert_no_torch_schedulers(module)
