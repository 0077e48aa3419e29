"""m2-deep-3: the clipping step of a training (torchkata.optim.stability's GradientClipper, on a17's hand-written
clip_grad_norm_) graded against torch.nn.utils.clip_grad_norm_, and the divergence test of a loss curve."""
import inspect
import math
import types

import pytest
import torch
from torch import nn

from grading import failing_checks
from torchkata.training.loop import fit

EXERCISE = "m2-deep-3"
NAN, INF = math.nan, math.inf


@pytest.fixture(scope="module")
def stab(impl_for):
    return impl_for(EXERCISE)


def model_with_grads(scale=1.0, seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    for p in model.parameters():
        p.grad = torch.randn_like(p) * scale
    return model


def grads(model):
    return [p.grad.clone() for p in model.parameters()]


def check_clips_like_torch(stab):
    for norm_type in (2.0, 1.0, 3.0, INF):
        for max_norm in (0.1, 2.0, 100.0):  # below and above the norm
            ours, theirs = model_with_grads(), model_with_grads()
            clipper = stab.GradientClipper(max_norm, norm_type)
            clipper(ours, 0)
            want = torch.nn.utils.clip_grad_norm_(theirs.parameters(), max_norm, norm_type, foreach=False)
            for got, expected in zip(grads(ours), grads(theirs)):
                torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-15)
            assert clipper.norms == [pytest.approx(float(want), rel=1e-12)], (norm_type, max_norm)
            assert isinstance(clipper.norms[0], float)


def check_default_norm_is_euclidean(stab):
    ours, theirs = model_with_grads(), model_with_grads()
    clipper = stab.GradientClipper(0.5)
    clipper(ours, 0)
    want = torch.nn.utils.clip_grad_norm_(theirs.parameters(), 0.5)
    assert clipper.norms == [pytest.approx(float(want), rel=1e-12)]
    torch.testing.assert_close(grads(ours), grads(theirs), rtol=1e-12, atol=1e-15)


def check_records_only_without_max_norm(stab):
    for norm_type in (2.0, 1.0, INF):
        model = model_with_grads(scale=50.0)
        before = grads(model)
        clipper = stab.GradientClipper(None, norm_type)
        for step in range(3):
            clipper(model, step)
        want = torch.linalg.vector_norm(torch.cat([g.flatten() for g in before]), norm_type)
        assert clipper.norms == [pytest.approx(float(want), rel=1e-12)] * 3
        assert all(torch.equal(a, b) for a, b in zip(grads(model), before)), "recording changed the gradients"
        assert clipper.clipped == 0 and clipper.active_fraction == 0.0


def check_counts_active_steps(stab):
    p = nn.Parameter(torch.zeros(2, dtype=torch.float64))
    model = nn.Module()
    model.p = p
    clipper = stab.GradientClipper(5.0)
    assert clipper.active_fraction == 0.0 and clipper.clipped == 0 and clipper.norms == []
    for step, grad in enumerate([[3.0, 4.0], [6.0, 8.0], [0.3, 0.4], [30.0, 40.0], [-3.0, -4.0]]):
        p.grad = torch.tensor(grad, dtype=torch.float64)
        clipper(model, step)
        assert float(p.grad.norm()) <= 5.0 + 1e-9
    assert clipper.norms == pytest.approx([5.0, 10.0, 0.5, 50.0, 5.0], rel=1e-12)
    assert clipper.clipped == 2  # a norm equal to max_norm is not clipped
    assert clipper.active_fraction == pytest.approx(2 / 5, rel=1e-12)


def check_skips_parameters_without_grad(stab):
    for max_norm in (None, 1.0):
        model = model_with_grads()
        model[0].weight.grad = None  # a frozen layer
        kept = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        clipper = stab.GradientClipper(max_norm)
        clipper(model, 0)
        assert model[0].weight.grad is None
        want = torch.linalg.vector_norm(torch.cat([g.flatten() for g in kept]))
        assert clipper.norms == [pytest.approx(float(want), rel=1e-12)]
        empty = stab.GradientClipper(max_norm)
        empty(nn.Linear(2, 2), 0)  # nothing has a gradient yet
        assert empty.norms == [0.0] and empty.clipped == 0


def check_caps_each_sgd_step(stab):
    # in a training: one norm per step, and plain SGD then moves the weights by at most lr * max_norm a step
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(24, 4, generator=g), torch.randint(0, 3, (24,), generator=g)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    clipper, lr, moves = stab.GradientClipper(0.05), 0.5, []
    last = torch.cat([p.detach().flatten() for p in model.parameters()])

    def before_step(m, step):
        clipper(m, step)
        grad = torch.cat([p.grad.flatten() for p in m.parameters()])
        moves.append(float(grad.norm()) * lr)

    fit(model, torch.optim.SGD(model.parameters(), lr=lr), (x, y), (x, y), 2, 8, g, before_step=before_step)
    moved = float((torch.cat([p.detach().flatten() for p in model.parameters()]) - last).norm())
    assert len(clipper.norms) == 6 and clipper.clipped == 6
    assert max(moves) <= lr * 0.05 * (1 + 1e-5) and moved <= 6 * lr * 0.05 * (1 + 1e-5)


def check_rejects_bad_max_norm(stab):
    for bad in (0.0, -1.0, NAN):
        with pytest.raises(ValueError, match="max_norm"):
            stab.GradientClipper(bad)


def check_first_divergence(stab):
    assert stab.first_divergence([2.3, 2.0, 1.5]) is None
    assert stab.first_divergence([2.3, 2.0, NAN, 1.0]) == 2
    assert stab.first_divergence([2.3, INF]) == 1
    assert stab.first_divergence([NAN, 1.0]) == 0
    assert stab.first_divergence([]) is None
    assert stab.first_divergence([1.0, 10.0]) is None  # ten times the first is the limit, not past it
    assert stab.first_divergence([1.0, 9.0, 10.5, NAN]) == 2
    assert stab.first_divergence([1.0, 2.5, 1.0], factor=2.0) == 1
    assert stab.first_divergence([1.0, 2.0, 40.0], factor=50.0) is None
    assert stab.first_divergence([2.0, 1.0, 15.0], factor=10.0) is None  # relative to the first loss, not the least
    assert stab.first_divergence([2.3, 20.0, 23.5]) == 2  # ten times ln 10, a first loss of chance level


def check_first_divergence_rejects_bad_factor(stab):
    for bad in (1.0, 0.5, NAN):
        with pytest.raises(ValueError, match="factor"):
            stab.first_divergence([1.0, 2.0], factor=bad)


CHECKS = [check_clips_like_torch, check_default_norm_is_euclidean, check_records_only_without_max_norm,
          check_counts_active_steps, check_skips_parameters_without_grad, check_caps_each_sgd_step,
          check_rejects_bad_max_norm, check_first_divergence, check_first_divergence_rejects_bad_factor]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_stability(stab, check):
    check(stab)


def broken(**changes):
    from torchkata.optim import stability
    return types.SimpleNamespace(**{k: v for k, v in vars(stability).items() if not k.startswith("__")} | changes)


def clipper_variant(record_after=False, count_equal=False, value_clip=False):
    from torchkata.autograd import clipping
    from torchkata.optim.stability import GradientClipper

    class Variant(GradientClipper):
        def __call__(self, model, step):
            params = [p for p in model.parameters() if p.grad is not None]
            if value_clip:
                clipping.clip_grad_value_(params, self.max_norm)
                self.norms.append(float(clipping.total_norm([p.grad for p in params], self.norm_type)))
                return
            norm = clipping.clip_grad_norm_(params, self.max_norm, self.norm_type)
            if record_after:
                norm = clipping.total_norm([p.grad for p in params], self.norm_type)
            self.clipped += bool(norm >= self.max_norm if count_equal else norm > self.max_norm)
            self.norms.append(float(norm))
    return Variant


def against_smallest(losses, factor=10.0):
    return next((i for i, v in enumerate(losses) if not math.isfinite(v) or v > factor * min(losses[:i + 1])), None)


def nan_blind(losses, factor=10.0):
    if not factor > 1:
        raise ValueError("factor")
    return next((i for i, v in enumerate(losses) if v > factor * losses[0]), None)


BROKEN = {"records_after_clipping": (broken(GradientClipper=clipper_variant(record_after=True)),
                                     "check_clips_like_torch"),
          "counts_equal_norm": (broken(GradientClipper=clipper_variant(count_equal=True)), "check_counts_active_steps"),
          "clips_values": (broken(GradientClipper=clipper_variant(value_clip=True)), "check_clips_like_torch"),
          "against_smallest_loss": (broken(first_divergence=against_smallest), "check_first_divergence"),
          "nan_blind": (broken(first_divergence=nan_blind), "check_first_divergence")}


@pytest.mark.suite_check
@pytest.mark.parametrize("name", BROKEN)
def test_broken_stability_is_rejected(name):
    implementation, check = BROKEN[name]
    assert failing_checks([c for c in CHECKS if c.__name__ == check], implementation) == [check]


@pytest.mark.suite_check
def test_reference_clips_by_hand():
    # the exercise reuses a17's clipping: torch's clip_grad_norm_ is the grader's reference, not the solution's
    from torchkata.optim import stability

    source = inspect.getsource(stability)
    assert "clip_grad_norm_(" in source and "torch.nn.utils" not in source and "nn.utils.clip" not in source
