"""b02-03: the Huber loss as a custom autograd Function, graded against F.huber_loss (every reduction, several deltas,
gradients into input and target) and torch.autograd.gradcheck / gradgradcheck in float64."""
import itertools

import pytest
import torch
import torch.nn.functional as F

from grading import failing_checks

EXERCISE = "b02-03"
DELTAS = [0.1, 1.0, 2.5]


@pytest.fixture(scope="module")
def huber_loss(impl_for):
    return impl_for(EXERCISE).huber_loss


def value_and_grads(fn, x, y, upstream, **options):
    x, y = x.detach().clone().requires_grad_(), y.detach().clone().requires_grad_()
    loss = fn(x, y, **options)
    grads = torch.autograd.grad(loss, (x, y), upstream if loss.dim() else None)
    return (loss.detach(), *grads)


def check_matches_torch(huber_loss):
    for shape in [(7,), (3, 5), (2, 3, 4), ()]:
        x, y = torch.randn(shape, dtype=torch.float64) * 3, torch.randn(shape, dtype=torch.float64)
        upstream = torch.randn(shape, dtype=torch.float64)
        for reduction, delta in itertools.product(["none", "mean", "sum"], DELTAS):
            ours = value_and_grads(huber_loss, x, y, upstream, reduction=reduction, delta=delta)
            want = value_and_grads(F.huber_loss, x, y, upstream, reduction=reduction, delta=delta)
            for o, w in zip(ours, want):
                torch.testing.assert_close(o, w, rtol=1e-10, atol=1e-12, msg=lambda m: f"{reduction} {delta}: {m}")


def check_float32(huber_loss):
    x, y = torch.randn(64, 33) * 3, torch.randn(64, 33)
    for reduction, delta in itertools.product(["none", "mean", "sum"], DELTAS):
        torch.testing.assert_close(huber_loss(x, y, reduction=reduction, delta=delta),
                                   F.huber_loss(x, y, reduction=reduction, delta=delta), rtol=1e-5, atol=1e-6)


def check_both_pieces_and_the_seam(huber_loss):
    # residuals inside, exactly at and beyond ±delta: quadratic, the seam, linear
    delta = 1.5
    d = torch.tensor([0.0, 0.3, -1.0, 1.5, -1.5, 2.0, -4.0], dtype=torch.float64)
    want = torch.where(d.abs() <= delta, d**2 / 2, delta * (d.abs() - delta / 2))
    x = d.clone().requires_grad_()
    loss = huber_loss(x, torch.zeros_like(d), reduction="none", delta=delta)
    torch.testing.assert_close(loss.detach(), want, rtol=1e-12, atol=0)
    (grad,) = torch.autograd.grad(loss.sum(), x)
    torch.testing.assert_close(grad, d.clamp(-delta, delta), rtol=1e-12, atol=0)


def check_defaults(huber_loss):
    x, y = torch.randn(4, 5, dtype=torch.float64) * 3, torch.randn(4, 5, dtype=torch.float64)
    torch.testing.assert_close(huber_loss(x, y), F.huber_loss(x, y), rtol=1e-12, atol=0)  # mean, delta 1


def check_reduction_made_at_runtime(huber_loss):
    # a reduction string built at run time is equal to the literal but not the same object: compare with ==, not `is`
    x, y = torch.randn(4, 5, dtype=torch.float64) * 3, torch.randn(4, 5, dtype=torch.float64)
    upstream = torch.ones(4, 5, dtype=torch.float64)
    for reduction in ("none", "mean", "sum"):
        ours = value_and_grads(huber_loss, x, y, upstream, reduction="".join(list(reduction)))
        for o, w in zip(ours, value_and_grads(F.huber_loss, x, y, upstream, reduction=reduction)):
            torch.testing.assert_close(o, w, rtol=1e-10, atol=1e-12)


def check_gradients_with_create_graph(huber_loss):
    # the backward as autograd runs it when it will be differentiated again: first and second derivatives
    x, y = torch.randn(4, 5, dtype=torch.float64) * 2, torch.randn(4, 5, dtype=torch.float64)
    v = torch.randn(4, 5, dtype=torch.float64)
    for reduction, delta in [("mean", 1.0), ("sum", 0.5)]:
        results = []
        for fn in (huber_loss, F.huber_loss):
            a, b = x.clone().requires_grad_(), y.clone().requires_grad_()
            grads = torch.autograd.grad(fn(a, b, reduction=reduction, delta=delta), (a, b), create_graph=True)
            results.append([g.detach() for g in grads] + list(torch.autograd.grad((grads[0] * v).sum(), (a, b))))
        for o, w in zip(*results):
            torch.testing.assert_close(o, w, rtol=1e-10, atol=1e-12)


def check_is_custom_function(huber_loss):
    loss = huber_loss(torch.randn(3, requires_grad=True), torch.randn(3))
    assert isinstance(loss.grad_fn, torch.autograd.function.BackwardCFunction), type(loss.grad_fn).__name__


def check_gradcheck(huber_loss):
    x = (torch.randn(3, 4, dtype=torch.float64) * 2).requires_grad_()
    y = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    for reduction, delta in [("mean", 1.0), ("sum", 0.5), ("none", 2.0)]:
        fn = lambda a, b: huber_loss(a, b, reduction=reduction, delta=delta)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (x, y))
        assert torch.autograd.gradgradcheck(fn, (x, y))


def check_empty_and_non_contiguous(huber_loss):
    empty = torch.empty(0, 3)
    assert torch.isnan(huber_loss(empty, empty))  # mean of nothing, as F.huber_loss
    assert huber_loss(empty, empty, reduction="sum").item() == 0.0
    assert huber_loss(empty, empty, reduction="none").shape == (0, 3)
    x, y = torch.randn(5, 6, dtype=torch.float64).t() * 3, torch.randn(6, 5, dtype=torch.float64)
    assert not x.is_contiguous()
    for reduction in ("none", "mean"):
        torch.testing.assert_close(huber_loss(x, y, reduction=reduction), F.huber_loss(x, y, reduction=reduction))


def check_inputs_untouched(huber_loss):
    x, y = torch.randn(4, 3, dtype=torch.float64) * 3, torch.randn(4, 3, dtype=torch.float64)
    before = x.clone(), y.clone()
    huber_loss(x.requires_grad_(), y, reduction="none").sum().backward()
    assert torch.equal(x.detach(), before[0]) and torch.equal(y, before[1])


def check_errors_name_the_problem(huber_loss):
    x, y = torch.randn(3), torch.randn(3)
    with pytest.raises(TypeError, match="int64"):
        huber_loss(torch.arange(3), y)
    with pytest.raises(TypeError, match="int64"):
        huber_loss(x, torch.arange(3))
    with pytest.raises(TypeError, match="list"):
        huber_loss([1.0, 2.0, 3.0], y)
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        huber_loss(x, torch.randn(4))
    with pytest.raises(ValueError, match=r"\(4,\).*\(3,\)"):
        huber_loss(torch.randn(4), y)
    with pytest.raises(TypeError, match="float64"):
        huber_loss(x, y.double())
    with pytest.raises(ValueError, match="avg"):
        huber_loss(x, y, reduction="avg")
    for delta in (0.0, -1.0):
        with pytest.raises(ValueError, match=str(delta)):
            huber_loss(x, y, delta=delta)


CHECKS = [check_matches_torch, check_float32, check_both_pieces_and_the_seam, check_defaults, check_is_custom_function,
          check_gradcheck, check_empty_and_non_contiguous, check_inputs_untouched, check_errors_name_the_problem,
          check_reduction_made_at_runtime, check_gradients_with_create_graph]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_huber_loss(huber_loss, check):
    check(huber_loss)


def huber_function(loss_of, grad_of, target_grad=True):
    """A custom Function with elementwise `loss_of(d, delta)` and `grad_of(d, delta)` (d = input - target)."""
    class Broken(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, y, reduction, delta):
            ctx.save_for_backward(x, y)
            ctx.options = reduction, delta
            losses = loss_of(x - y, delta)
            return {"none": losses, "sum": losses.sum(), "mean": losses.mean()}[reduction]

        @staticmethod
        def backward(ctx, grad_out):
            x, y = ctx.saved_tensors
            reduction, delta = ctx.options
            grad = grad_of(x - y, delta) * (grad_out / x.numel() if reduction == "mean" else grad_out)
            return grad, -grad if target_grad else None, None, None

    def apply(x, y, reduction="mean", delta=1.0):
        return Broken.apply(x, y, reduction, delta)
    return apply


def right_loss(d, delta):
    c = d.clamp(-delta, delta)
    return c * (d - c / 2)


def right_grad(d, delta):
    return d.clamp(-delta, delta)


def autograd_only(x, y, reduction="mean", delta=1.0):
    return F.huber_loss(x, y, reduction=reduction, delta=delta)


BROKEN = {  # name: (implementation, the check that must reject it)
    "linear_piece_without_delta": (huber_function(lambda d, delta: torch.where(d.abs() <= delta, d**2 / 2,
                                                                               d.abs() - delta / 2), right_grad),
                                   "check_matches_torch"),
    "smooth_l1_scaling": (huber_function(lambda d, delta: right_loss(d, delta) / delta,
                                         lambda d, delta: right_grad(d, delta) / delta), "check_matches_torch"),
    "gradient_unclamped": (huber_function(right_loss, lambda d, delta: d), "check_both_pieces_and_the_seam"),
    "mean_not_divided": (huber_function(right_loss, lambda d, delta: right_grad(d, delta) * d.numel()),
                         "check_matches_torch"),
    "no_target_gradient": (huber_function(right_loss, right_grad, target_grad=False), "check_gradcheck"),
    "not_twice_differentiable": (huber_function(right_loss, lambda d, delta: right_grad(d.detach(), delta)),
                                 "check_gradcheck"),
    "autograd_only": (autograd_only, "check_is_custom_function"),
}


@pytest.mark.suite_check
@pytest.mark.parametrize("name", BROKEN)
def test_broken_huber_is_rejected(name):
    broken, rejected_by = BROKEN[name]
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], broken) == [rejected_by]


@pytest.mark.suite_check
def test_no_builtin_huber_in_reference():
    import inspect

    from torchkata.autograd import huber as module

    source = inspect.getsource(module)
    for builtin in ("F.huber_loss(", "smooth_l1", "HuberLoss(", "huber_loss_backward"):
        assert builtin not in source, builtin
