"""a02: cross-entropy by hand, forward and backward, as a custom autograd Function, graded against F.cross_entropy
with class weights, ignore_index, label smoothing and the three reductions, and gradcheck / gradgradcheck in float64.
b02-07 grades the same Function with these checks."""
import itertools
import re

import pytest
import torch
import torch.nn.functional as F

from grading import failing_checks

EXERCISE = "a02"
N, C = 9, 5


@pytest.fixture(scope="module")
def cross_entropy(impl_for):
    return impl_for(EXERCISE).cross_entropy


def case(dtype=torch.float64, scale=3.0):
    """Logits, targets with one ignored row (-100) and a repeated class, and positive class weights."""
    x = torch.randn(N, C, dtype=dtype) * scale
    target = torch.randint(0, C, (N,))
    target[2], target[5] = -100, 3
    return x, target, torch.rand(C, dtype=dtype) + 0.1


def value_and_grad(fn, x, upstream=None, **options):
    x = x.detach().clone().requires_grad_()
    loss = fn(x, **options)
    (grad,) = torch.autograd.grad(loss, x, upstream if loss.dim() else None)
    return loss.detach(), grad


def options_grid(target, weight, smoothings):
    for w, ignore_index, reduction, smoothing in itertools.product(
            [None, weight], [-100, 3], ["none", "mean", "sum"], smoothings):
        # ignore_index 3: a real class whose rows are dropped; the -100 row then becomes class 1
        t = target if ignore_index == -100 else target.masked_fill(target == -100, 1)
        yield t, dict(weight=w, ignore_index=ignore_index, reduction=reduction, label_smoothing=smoothing)


def check_matches_torch(cross_entropy):
    x, target, weight = case()
    upstream = torch.randn(N, dtype=torch.float64)
    for t, options in options_grid(target, weight, (0.0, 0.2)):
        ours = value_and_grad(lambda z, **o: cross_entropy(z, t, **o), x, upstream, **options)
        want = value_and_grad(lambda z, **o: F.cross_entropy(z, t, **o), x, upstream, **options)
        for o, w in zip(ours, want):
            torch.testing.assert_close(o, w, rtol=1e-10, atol=1e-12, msg=lambda m: f"{options}: {m}")


def check_float32(cross_entropy):
    x, target, weight = case(torch.float32)
    for t, options in options_grid(target, weight, (0.0, 1.0)):
        torch.testing.assert_close(cross_entropy(x, t, **options), F.cross_entropy(x, t, **options),
                                   rtol=1e-5, atol=1e-6)


def check_many_rows(cross_entropy):
    # hundreds of rows: an implementation that works through the batch in pieces must still give every row its loss
    x = torch.randn(600, 7, dtype=torch.float64) * 3
    target = torch.randint(0, 7, (600,))
    torch.testing.assert_close(cross_entropy(x, target, reduction="none"),
                               F.cross_entropy(x, target, reduction="none"), rtol=1e-10, atol=1e-12)


def check_backward_is_softmax_minus_onehot(cross_entropy):
    x, target = torch.randn(N, C, dtype=torch.float64), torch.randint(0, C, (N,))
    _, grad = value_and_grad(lambda z: cross_entropy(z, target), x)
    torch.testing.assert_close(grad, (torch.softmax(x, 1) - F.one_hot(target, C)) / N, rtol=1e-10, atol=1e-14)
    _, grad = value_and_grad(lambda z: cross_entropy(z, target, reduction="sum"), x)
    torch.testing.assert_close(grad, torch.softmax(x, 1) - F.one_hot(target, C), rtol=1e-10, atol=1e-14)


def check_is_custom_function(cross_entropy):
    loss = cross_entropy(torch.randn(3, 4, requires_grad=True), torch.tensor([0, 3, 1]))
    assert isinstance(loss.grad_fn, torch.autograd.function.BackwardCFunction), type(loss.grad_fn).__name__


def check_gradcheck(cross_entropy):
    x, target, weight = case()
    x.requires_grad_()
    for options in [dict(), dict(weight=weight, label_smoothing=0.3), dict(reduction="none", label_smoothing=0.1),
                    dict(weight=weight, reduction="sum")]:
        fn = lambda z: cross_entropy(z, target, **options)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (x,)), options
        assert torch.autograd.gradgradcheck(fn, (x,)), options


def check_large_logits(cross_entropy):
    x = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [1e4, 1e4, -1e4]], dtype=torch.float32)
    target = torch.tensor([1, 1, 2])
    for options in [dict(), dict(label_smoothing=0.1), dict(reduction="none")]:
        ours = value_and_grad(lambda z, **o: cross_entropy(z, target, **o), x, torch.ones(3), **options)
        want = value_and_grad(lambda z, **o: F.cross_entropy(z, target, **o), x, torch.ones(3), **options)
        for o, w in zip(ours, want):
            assert torch.isfinite(o).all(), options
            torch.testing.assert_close(o, w, msg=lambda m: f"{options}: {m}")


def check_defaults(cross_entropy):
    # mean, no smoothing, no weights, and -100 ignored by default
    x, target, _ = case()
    torch.testing.assert_close(cross_entropy(x, target), F.cross_entropy(x, target), rtol=1e-12, atol=0)


def check_weight_in_another_dtype(cross_entropy):
    x, target, weight = case()
    torch.testing.assert_close(cross_entropy(x, target, weight=weight.float()),
                               F.cross_entropy(x, target, weight=weight.float().double()), rtol=1e-12, atol=0)


def check_edge_batches(cross_entropy):
    x = torch.randn(3, 4)
    ignored = torch.full((3,), -100)
    assert torch.isnan(cross_entropy(x, ignored))  # 0 / 0, as F.cross_entropy gives
    assert cross_entropy(x, ignored, reduction="sum").item() == 0.0
    empty = torch.empty(0, 4, requires_grad=True)
    assert cross_entropy(empty, torch.empty(0, dtype=torch.int64), reduction="none").shape == (0,)
    loss = cross_entropy(empty, torch.empty(0, dtype=torch.int64), reduction="sum")
    assert loss.item() == 0.0
    loss.backward()
    assert empty.grad.shape == (0, 4)
    one_class, target = torch.randn(3, 1, dtype=torch.float64), torch.tensor([0, -100, 0])  # only class 0 exists
    torch.testing.assert_close(cross_entropy(one_class, target, reduction="none"),
                               F.cross_entropy(one_class, target, reduction="none"))


def check_gradients_with_create_graph(cross_entropy):
    # the backward as autograd runs it when it will be differentiated again: first and second derivatives
    x, target, weight = case()
    v = torch.randn(N, C, dtype=torch.float64)
    for options in [dict(), dict(weight=weight, label_smoothing=0.3, reduction="sum")]:
        results = []
        for fn in (cross_entropy, F.cross_entropy):
            z = x.clone().requires_grad_()
            (grad,) = torch.autograd.grad(fn(z, target, **options), z, create_graph=True)
            results.append([grad.detach(), torch.autograd.grad((grad * v).sum(), z)[0]])
        for o, w in zip(*results):
            torch.testing.assert_close(o, w, rtol=1e-10, atol=1e-12, msg=lambda m: f"{options}: {m}")
    # large float32 logits on that path too: it must shift by the row's max, as the first pass does (exp(x + max)
    # overflows where exp(x - max) cannot)
    big, labels = torch.randn(6, 5, generator=torch.Generator().manual_seed(3)) * 40, torch.tensor([0, 1, 2, 3, 4, 0])
    grads = []
    for fn in (cross_entropy, F.cross_entropy):
        z = big.clone().requires_grad_()
        (grad,) = torch.autograd.grad(fn(z, labels), z, create_graph=True)
        grads.append(grad.detach())
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)


def check_reduction_made_at_runtime(cross_entropy):
    # a reduction string built at run time is equal to the literal but not the same object: compare with ==, not `is`
    x, target, weight = case()
    for reduction in ("none", "mean", "sum"):
        made = "".join(list(reduction))
        ours = value_and_grad(lambda z: cross_entropy(z, target, weight=weight, reduction=made), x,
                              torch.ones(N, dtype=torch.float64))
        want = value_and_grad(lambda z: F.cross_entropy(z, target, weight=weight, reduction=reduction), x,
                              torch.ones(N, dtype=torch.float64))
        for o, w in zip(ours, want):
            torch.testing.assert_close(o, w, rtol=1e-10, atol=1e-12)


def check_non_contiguous_and_untouched(cross_entropy):
    x = torch.randn(C, N, dtype=torch.float64).t()
    assert not x.is_contiguous()
    before = x.clone()
    target = torch.randint(0, C, (N,))
    ours = value_and_grad(lambda z: cross_entropy(z, target, label_smoothing=0.1), x)
    want = value_and_grad(lambda z: F.cross_entropy(z, target, label_smoothing=0.1), x)
    for o, w in zip(ours, want):
        torch.testing.assert_close(o, w, rtol=1e-10, atol=1e-14)
    assert torch.equal(x, before)


def check_errors_name_the_problem(cross_entropy):
    x, target = torch.randn(4, 3), torch.tensor([0, 1, 2, 1])
    with pytest.raises(TypeError, match="int64"):
        cross_entropy(torch.ones(4, 3, dtype=torch.int64), target)
    with pytest.raises(TypeError, match="list"):
        cross_entropy([[1.0, 2.0]], target)
    for logits in (torch.randn(2, 2, 3), torch.randn(3)):  # more and fewer dims than (batch, classes)
        with pytest.raises(ValueError, match=rf"got {re.escape(str(tuple(logits.shape)))}"):
            cross_entropy(logits, torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="float32"):
        cross_entropy(x, target.float())
    with pytest.raises(TypeError, match="list"):
        cross_entropy(x, [0, 1, 2, 1])
    for wrong in (target[:3], torch.tensor([0, 1, 2, 1, 0])):  # fewer and more targets than rows
        with pytest.raises(ValueError, match=rf"target shape \({len(wrong)},\) does not match"):
            cross_entropy(x, wrong)
    with pytest.raises(ValueError, match="avg"):
        cross_entropy(x, target, reduction="avg")
    for smoothing in (1.5, -0.1):
        with pytest.raises(ValueError, match=str(smoothing)):
            cross_entropy(x, target, label_smoothing=smoothing)
    for size in (4, 2):  # more and fewer weights than classes
        with pytest.raises(ValueError, match=rf"got shape \({size},\)"):
            cross_entropy(x, target, weight=torch.ones(size))
    # the first target out of range is named (the message, not an IndexError of weight[target], which also names it);
    # ignore_index is the one value outside 0..C-1 allowed, and nothing below it is
    for bad, labels in ((3, [0, 3, 5, 1]), (5, [0, 5, 3, 1]), (-1, [0, -1, 1, 1]), (-200, [0, -200, 1, 1])):
        with pytest.raises(IndexError, match=f"target {bad} is out of range for 3 classes"):
            cross_entropy(x, torch.tensor(labels))
    for smoothing in (0.0, 1.0):  # the ends of the range are allowed
        cross_entropy(x, target, label_smoothing=smoothing)


CHECKS = [check_matches_torch, check_float32, check_many_rows, check_backward_is_softmax_minus_onehot,
          check_is_custom_function, check_gradcheck, check_large_logits, check_defaults, check_weight_in_another_dtype,
          check_edge_batches, check_non_contiguous_and_untouched, check_errors_name_the_problem,
          check_reduction_made_at_runtime, check_gradients_with_create_graph]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_cross_entropy(cross_entropy, check):
    check(cross_entropy)


# Broken solutions, built around the reference so that each has exactly one flaw.
def reference():
    from torchkata.autograd.cross_entropy import cross_entropy
    return cross_entropy


def mean_over_batch_size(x, target, reduction="mean", **options):
    if reduction != "mean":
        return reference()(x, target, reduction=reduction, **options)
    return reference()(x, target, reduction="sum", **options) / len(target)  # counts ignored rows, ignores weights


def smoothing_ignores_weight(x, target, weight=None, label_smoothing=0.0, **options):
    if weight is None or not label_smoothing:
        return reference()(x, target, weight=weight, label_smoothing=label_smoothing, **options)
    return ((1 - label_smoothing) * reference()(x, target, weight=weight, **options)
            + label_smoothing * reference()(x, target, label_smoothing=1.0, **options))


def with_backward(grad_of):
    """The reference's forward with the backward `grad_of(x, target, grad_out)` (for the plain mean case)."""
    class Broken(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, target):
            ctx.save_for_backward(x, target)
            return reference()(x.detach(), target)

        @staticmethod
        def backward(ctx, grad_out):
            return grad_of(*ctx.saved_tensors, grad_out), None
    return lambda x, target, **options: Broken.apply(x, target)


def no_shift(x, target, **options):
    return F.nll_loss((x.exp() / x.exp().sum(1, keepdim=True)).log(), target, **options)


def autograd_only(x, target, **options):
    return F.nll_loss(x - x.logsumexp(1, keepdim=True), target)


def softmax(x):
    return torch.softmax(x, 1)


BROKEN = {  # name: (implementation, the check that must reject it)
    "mean_over_batch_size": (mean_over_batch_size, "check_matches_torch"),
    "smoothing_ignores_weight": (smoothing_ignores_weight, "check_matches_torch"),
    "backward_without_one_hot": (with_backward(lambda x, t, g: g * softmax(x) / len(t)),
                                 "check_backward_is_softmax_minus_onehot"),
    "backward_not_averaged": (with_backward(lambda x, t, g: g * (softmax(x) - F.one_hot(t, x.shape[1]))),
                              "check_backward_is_softmax_minus_onehot"),
    "not_twice_differentiable": (with_backward(lambda x, t, g: g * (softmax(x.detach()) - F.one_hot(t, x.shape[1]))
                                               / len(t)), "check_gradcheck"),
    "no_max_shift": (no_shift, "check_large_logits"),
    "autograd_only": (autograd_only, "check_is_custom_function"),
}


def rejected(checks, name, rejected_by):
    check = next(c for c in checks if c.__name__ == rejected_by)
    return failing_checks([check], BROKEN[name][0]) == [rejected_by]


@pytest.mark.suite_check
@pytest.mark.parametrize("name", BROKEN)
def test_broken_cross_entropy_is_rejected(name):
    assert rejected(CHECKS, name, BROKEN[name][1])


@pytest.mark.suite_check
def test_no_builtin_cross_entropy_in_reference():
    import inspect

    from torchkata.autograd import cross_entropy as module

    source = inspect.getsource(module)
    for builtin in ("F.cross_entropy(", "nll_loss(", "log_softmax(", ".softmax(", "logsumexp(", "CrossEntropyLoss("):
        assert builtin not in source, builtin
