"""b02-07: cross-entropy implemented manually (the Function a02 builds, graded by a02's checks), here also checked
against autograd differentiating the written-out formula, and property-tested against F.cross_entropy on random
batches and options (hypothesis)."""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from test_a02 import BROKEN, CHECKS as A02_CHECKS, rejected, with_backward

EXERCISE = "b02-07"
# repeatable, and no shrinking: the first failing batch is reported as drawn (shrinking took 30 s a wrong solution)
QUICK = dict(deadline=None, derandomize=True, database=None, phases=(Phase.explicit, Phase.generate))


@pytest.fixture(scope="module")
def cross_entropy(impl_for):
    return impl_for(EXERCISE).cross_entropy


@st.composite
def batches(draw):
    n, c = draw(st.integers(1, 6)), draw(st.integers(2, 6))
    seed = draw(st.integers(0, 2**16))
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, generator=gen, dtype=torch.float64) * draw(st.sampled_from([0.1, 1.0, 30.0]))
    target = torch.randint(0, c, (n,), generator=gen)
    ignore = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    target = target.masked_fill(torch.tensor(ignore) & (torch.arange(n) > 0), -100)  # row 0 always kept
    weight = draw(st.sampled_from([None, torch.rand(c, generator=gen, dtype=torch.float64) + 0.05]))
    options = dict(weight=weight, reduction=draw(st.sampled_from(["none", "mean", "sum"])),
                   label_smoothing=draw(st.sampled_from([0.0, 0.05, 0.5, 1.0])))
    return x, target, options


def grads(fn, x, target, options):
    x = x.detach().clone().requires_grad_()
    loss = fn(x, target, **options)
    (grad,) = torch.autograd.grad(loss.sum(), x)
    return loss.detach(), grad


def check_property_against_torch(cross_entropy):
    @settings(max_examples=40, **QUICK)
    @given(batches())
    def matches(batch):
        for o, w in zip(grads(cross_entropy, *batch), grads(F.cross_entropy, *batch)):
            torch.testing.assert_close(o, w, rtol=1e-9, atol=1e-12)
    matches()


def written_out(x, target, weight=None, reduction="mean", label_smoothing=0.0):
    """The loss as a formula in plain tensor ops, for autograd to differentiate."""
    c = x.shape[1]
    weight = torch.ones(c, dtype=x.dtype) if weight is None else weight
    keep = target != -100
    t = target.masked_fill(~keep, 0)
    log_p = x - x.logsumexp(1, keepdim=True)
    row_weight = weight[t] * keep
    losses = ((1 - label_smoothing) * row_weight * -log_p.gather(1, t[:, None]).squeeze(1)
              + label_smoothing / c * -(log_p * weight).sum(1) * keep)
    return {"none": losses, "sum": losses.sum(), "mean": losses.sum() / row_weight.sum()}[reduction]


def check_matches_autograd_of_the_formula(cross_entropy):
    @settings(max_examples=25, **QUICK)
    @given(batches())
    def matches(batch):
        x, target, options = batch
        _, ours = grads(cross_entropy, x, target, options)
        _, want = grads(written_out, x, target, options)
        torch.testing.assert_close(ours, want, rtol=1e-9, atol=1e-12)
    matches()


def check_gradient_rows_sum_to_zero(cross_entropy):
    # each kept row's gradient is a weighted (p - target distribution): it sums to 0; an ignored row is all 0
    x = torch.randn(8, 5, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([0, 1, 2, 3, 4, -100, 1, -100])
    loss = cross_entropy(x, target, weight=torch.rand(5, dtype=torch.float64) + 0.1, label_smoothing=0.3,
                         reduction="none")
    (grad,) = torch.autograd.grad(loss, x, torch.randn(8, dtype=torch.float64))
    torch.testing.assert_close(grad.sum(1), torch.zeros(8, dtype=torch.float64), rtol=0, atol=1e-14)
    assert (grad[target == -100] == 0).all()
    assert (grad[target != -100] != 0).all()


CHECKS = A02_CHECKS + [check_property_against_torch, check_matches_autograd_of_the_formula,
                       check_gradient_rows_sum_to_zero]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_cross_entropy(cross_entropy, check):
    check(cross_entropy)


def smoothing_without_weight_in_backward(x, target, weight=None, reduction="mean", label_smoothing=0.0, **options):
    """Right forward; a backward that forgets the class weights in the smoothing term."""
    class Broken(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return written_out(x.detach(), target, weight, reduction, label_smoothing)

        @staticmethod
        def backward(ctx, grad_out):
            (x,) = ctx.saved_tensors
            with torch.enable_grad():
                z = x.detach().requires_grad_()
                return torch.autograd.grad(written_out(z, target, None, reduction, label_smoothing), z, grad_out)[0]
    return Broken.apply(x)


OWN_BROKEN = {  # name: (implementation, the check of this file that must reject it)
    "smoothing_without_weight_in_backward": (smoothing_without_weight_in_backward,
                                             "check_matches_autograd_of_the_formula"),
    "backward_without_one_hot": (BROKEN["backward_without_one_hot"][0], "check_gradient_rows_sum_to_zero"),
    "mean_over_batch_size": (BROKEN["mean_over_batch_size"][0], "check_property_against_torch"),
    "smoothing_ignores_weight": (BROKEN["smoothing_ignores_weight"][0], "check_property_against_torch"),
    "backward_not_averaged": (with_backward(lambda x, t, g: g * (torch.softmax(x, 1) - F.one_hot(t, x.shape[1]))),
                              "check_property_against_torch"),
}


@pytest.mark.suite_check
@pytest.mark.parametrize("name", BROKEN)
def test_broken_cross_entropy_is_rejected(name):
    assert rejected(CHECKS, name, BROKEN[name][1])


@pytest.mark.suite_check
@pytest.mark.parametrize("name", OWN_BROKEN)
def test_this_files_checks_reject(name):
    from grading import failing_checks

    broken, rejected_by = OWN_BROKEN[name]
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], broken) == [rejected_by]
