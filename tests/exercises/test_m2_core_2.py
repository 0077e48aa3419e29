"""m2-core-2: the measurements of an optimizer race (torchkata.optim.convergence), graded against float64
references and hand-worked cases, and on a real race: the hand-written SGD and Adam against torch.optim's."""
import math
import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grading import failing_checks
from torchkata.optim.adaptive import Adam
from torchkata.optim.sgd import SGD
from torchkata.training.loop import fit

EXERCISE = "m2-core-2"
NAN, INF = math.nan, math.inf


@pytest.fixture(scope="module")
def conv(impl_for):
    return impl_for(EXERCISE)


def tiny_problem(n=40, classes=3):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 5, generator=g)
    y = (x @ torch.randn(5, classes, generator=g)).argmax(dim=1)  # learnable: a linear rule
    return (x, y), (x[:10], y[:10])


def check_recorder_keeps_each_training_loss(conv):
    train, test = tiny_problem()
    torch.manual_seed(0)
    model, twin = nn.Linear(5, 3), nn.Linear(5, 3)
    twin.load_state_dict(model.state_dict())
    recorder = conv.LossRecorder()
    fit(model, torch.optim.SGD(model.parameters(), lr=0.1), train, test, 2, 16, torch.Generator().manual_seed(3),
        loss_fn=recorder)
    # the same steps by hand: the batch losses in order, and none of the evaluations'
    want, order = [], torch.Generator().manual_seed(3)
    opt = torch.optim.SGD(twin.parameters(), lr=0.1)
    for _ in range(2):
        for idx in torch.randperm(40, generator=order).split(16):
            loss = F.cross_entropy(twin(train[0][idx]), train[1][idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            want.append(loss.item())
    assert recorder.losses == want


def check_recorder_uses_its_loss_fn(conv):
    recorder = conv.LossRecorder(F.mse_loss)
    out, target = torch.randn(4, 2, requires_grad=True), torch.randn(4, 2)
    loss = recorder(out, target)
    assert torch.equal(loss, F.mse_loss(out, target)) and loss.requires_grad
    assert recorder.losses == [F.mse_loss(out, target).item()]
    with torch.no_grad():
        recorder(out, target)  # an evaluation
    assert len(recorder.losses) == 1
    assert conv.LossRecorder().loss_fn is F.cross_entropy


def check_running_mean_against_float64(conv):
    g = torch.Generator().manual_seed(2)
    for length in (1, 2, 7, 30):
        values = torch.rand(length, generator=g, dtype=torch.float64) * 3
        for window in range(1, length + 1):
            want = values.unfold(0, window, 1).mean(dim=1).tolist()
            got = conv.running_mean(values.tolist(), window)
            assert len(got) == len(want) == length - window + 1
            torch.testing.assert_close(torch.tensor(got, dtype=torch.float64), torch.tensor(want, dtype=torch.float64), rtol=1e-12,
                                       atol=1e-12)
    assert conv.running_mean([1.0, 2.0], 3) == [] and conv.running_mean([], 1) == []


def check_running_mean_rejects_bad_window(conv):
    for window in (0, -2):
        with pytest.raises(ValueError, match="window"):
            conv.running_mean([1.0, 2.0], window)
    with pytest.raises(ValueError, match="window"):
        conv.steps_to_reach([1.0, 2.0], 1.0, window=0)


def check_steps_to_reach(conv):
    losses = [3.0, 2.0, 1.0, 0.5, 0.2]
    assert conv.steps_to_reach(losses, 1.0) == 3  # a count of steps: the third loss is the first at 1.0
    assert conv.steps_to_reach(losses, 3.0) == 1
    assert conv.steps_to_reach(losses, 0.99) == 4
    assert conv.steps_to_reach(losses, 0.1) is None
    assert conv.steps_to_reach(losses, 1.5, window=2) == 3  # means 2.5, 1.5: the second window ends at step 3
    assert conv.steps_to_reach(losses, 1.49, window=2) == 4
    assert conv.steps_to_reach(losses, 1.0, window=5) is None  # one window only, mean 1.34
    assert conv.steps_to_reach(losses, 1.34, window=5) == 5
    assert conv.steps_to_reach([0.5, 3.0, 3.0], 1.0, window=2) is None  # one low batch is not convergence
    assert conv.steps_to_reach([], 1.0) is None
    assert conv.steps_to_reach([NAN, 0.5], 1.0) == 2


def check_best_learning_rate(conv):
    assert conv.best_learning_rate({0.1: 0.5, 0.01: 0.3, 1.0: 2.0}) == 0.01
    assert conv.best_learning_rate({0.3: NAN, 0.1: 0.5, 0.03: 0.7}) == 0.1  # nan first: min() would keep it
    assert conv.best_learning_rate({0.1: 0.5, 0.3: NAN, 0.03: 0.7}) == 0.1
    assert conv.best_learning_rate({1.0: -INF, 0.1: 0.5}) == 0.1
    assert conv.best_learning_rate({1.0: INF, 0.1: 0.5}) == 0.1
    assert conv.best_learning_rate({0.1: 0.4, 0.01: 0.4, 0.3: 0.4}) == 0.01  # a tie: the safer, smaller rate
    assert conv.best_learning_rate({0.3: 0.4, 0.1: 0.4}) == 0.1
    assert conv.best_learning_rate({0.5: 1.0}) == 0.5


def check_best_learning_rate_rejects_a_failed_sweep(conv):
    for sweep in ({0.1: NAN, 1.0: INF}, {}):
        with pytest.raises(ValueError, match="finite"):
            conv.best_learning_rate(sweep)


def check_max_curve_difference(conv):
    assert conv.max_curve_difference([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 0.0
    assert conv.max_curve_difference([1.0, 2.0, 3.0], [1.0, 2.5, 2.75]) == 0.5
    assert conv.max_curve_difference([1.0, 2.5], [1.25, 2.0]) == 0.5
    assert conv.max_curve_difference([], []) == 0.0
    assert conv.max_curve_difference([NAN, 1.0], [NAN, 1.0]) == 0.0  # the same diverged run twice
    assert conv.max_curve_difference([float("inf"), 1.0], [float("inf"), 1.0]) == 0.0  # equal, not the same object
    assert conv.max_curve_difference([0.5] * 300, [0.5] * 300) == 0.0
    for ours, theirs in (([1.0, NAN], [1.0, 2.0]), ([1.0, 2.0], [NAN, 2.0]), ([INF], [1.0]), ([1.0], [-INF]),
                         ([NAN, 5.0], [NAN, 1.0])):
        assert conv.max_curve_difference(ours, theirs) == (INF if NAN in ours + theirs and 5.0 not in ours
                                                            or INF in ours + theirs or -INF in theirs else 4.0)


def check_max_curve_difference_rejects_lengths(conv):
    for ours, theirs in (([1.0, 2.0], [1.0]), ([1.0], [1.0, 2.0]), ([], [1.0])):
        with pytest.raises(ValueError, match="length"):
            conv.max_curve_difference(ours, theirs)


def check_a_real_race_equals_torch(conv):
    # the measurements on the experiment's own question: each hand-written optimizer's curve is torch.optim's
    train, test = tiny_problem(32)
    for ours, theirs, options in ((SGD, torch.optim.SGD, dict(lr=0.2, momentum=0.9)),
                                  (Adam, torch.optim.Adam, dict(lr=0.1))):
        curves = []
        for make in (ours, theirs):
            torch.manual_seed(0)
            model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))
            recorder = conv.LossRecorder()
            extra = dict(foreach=False) if make is theirs else {}
            fit(model, make(model.parameters(), **options, **extra), train, test, 3, 8,
                torch.Generator().manual_seed(0), loss_fn=recorder)
            curves.append(recorder.losses)
        assert len(curves[0]) == 12 and conv.max_curve_difference(*curves) == 0.0
        assert conv.steps_to_reach(curves[0], curves[0][0] / 2, window=3) is not None


CHECKS = [check_recorder_keeps_each_training_loss, check_recorder_uses_its_loss_fn, check_running_mean_against_float64,
          check_running_mean_rejects_bad_window, check_steps_to_reach, check_best_learning_rate,
          check_best_learning_rate_rejects_a_failed_sweep, check_max_curve_difference,
          check_max_curve_difference_rejects_lengths, check_a_real_race_equals_torch]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_convergence(conv, check):
    check(conv)


def broken(**changes):
    from torchkata.optim import convergence
    return types.SimpleNamespace(**{k: v for k, v in vars(convergence).items() if not k.startswith("__")} | changes)


class RecordsEverything:
    def __init__(self, loss_fn=F.cross_entropy):
        self.loss_fn, self.losses = loss_fn, []

    def __call__(self, output, target):
        loss = self.loss_fn(output, target)
        self.losses.append(loss.item())
        return loss


def zero_based_steps(losses, threshold, window=1):
    from torchkata.optim.convergence import running_mean
    return next((i for i, m in enumerate(running_mean(losses, window)) if m <= threshold), None)


def strict_threshold(losses, threshold, window=1):
    from torchkata.optim.convergence import running_mean
    return next((end for end, m in enumerate(running_mean(losses, window), window) if m < threshold), None)


def partial_windows(values, window):
    if window < 1:
        raise ValueError("window")
    return [sum(values[max(0, end - window):end]) / min(end, window) for end in range(1, len(values) + 1)]


def plain_min(final_losses):
    if not final_losses:
        raise ValueError("finite")
    return min(final_losses, key=final_losses.get)


def nan_blind_difference(ours, theirs):
    if len(ours) != len(theirs):
        raise ValueError("length")
    return max((abs(a - b) for a, b in zip(ours, theirs) if not (math.isnan(a) or math.isnan(b))), default=0.0)


REJECTED_BY = {"records_evaluation": "check_recorder_uses_its_loss_fn", "zero_based_steps": "check_steps_to_reach",
               "strict_threshold": "check_steps_to_reach", "partial_windows": "check_running_mean_against_float64",
               "plain_min": "check_best_learning_rate", "nan_blind_difference": "check_max_curve_difference"}
BROKEN = {"records_evaluation": broken(LossRecorder=RecordsEverything),
          "zero_based_steps": broken(steps_to_reach=zero_based_steps),
          "strict_threshold": broken(steps_to_reach=strict_threshold),
          "partial_windows": broken(running_mean=partial_windows),
          "plain_min": broken(best_learning_rate=plain_min),
          "nan_blind_difference": broken(max_curve_difference=nan_blind_difference)}


@pytest.mark.suite_check
@pytest.mark.parametrize("name", BROKEN)
def test_broken_convergence_is_rejected(name):
    assert failing_checks([check for check in CHECKS if check.__name__ in REJECTED_BY[name]], BROKEN[name])


@pytest.mark.suite_check
def test_reference_passes_through_the_namespace():
    assert failing_checks([check for check in CHECKS if check.__name__ in REJECTED_BY.values()], broken()) == []
