"""b02-05: gradient clipping by hand, graded against torch.nn.utils.clip_grad_norm_ (every norm type, the returned
total norm, error_if_nonfinite) and clip_grad_value_, with parameters that have no gradient, a single tensor, a
generator of parameters, and the torch built-ins (and foreach kernels) unavailable. a17 grades the same functions."""
import math
from contextlib import ExitStack
from unittest import mock

import pytest
import torch

from grading import failing_checks

EXERCISE = "b02-05"
NORM_TYPES = [0.5, 1.0, 2.0, 3.0, 3.5, math.inf]


@pytest.fixture(scope="module")
def impl(impl_for):
    return impl_for(EXERCISE)


def parameters(dtype=torch.float64, scale=3.0, shapes=((3, 4), (5,), (2, 2, 2), (6,), ())):
    """Parameters with gradients, but for the fourth, which has none."""
    params = [torch.randn(s, dtype=dtype, requires_grad=True) for s in shapes]
    for i, p in enumerate(params):
        if i != 3:
            p.grad = torch.randn(p.shape, dtype=dtype) * scale
    return params


def twins(params):
    copies = [p.detach().clone().requires_grad_() for p in params]
    for p, c in zip(params, copies):
        c.grad = None if p.grad is None else p.grad.clone()
    return copies


def assert_grads_equal(ours, theirs, **tolerance):
    for p, q in zip(ours, theirs):
        assert (p.grad is None) == (q.grad is None)
        if p.grad is not None:
            torch.testing.assert_close(p.grad, q.grad, equal_nan=True, **tolerance)


def check_norm_matches_torch(impl):
    for dtype, tolerance in ((torch.float64, {"rtol": 1e-12, "atol": 1e-12}), (torch.float32, {})):
        for norm_type in NORM_TYPES:
            for max_norm in (0.5, 7.0, 1e6):  # clipping hard, a little, not at all
                params = parameters(dtype)
                ours, theirs = twins(params), twins(params)
                norm = impl.clip_grad_norm_(ours, max_norm, norm_type)
                want = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type, foreach=False)
                assert isinstance(norm, torch.Tensor) and norm.shape == () and norm.dtype == dtype
                torch.testing.assert_close(norm, want, **tolerance, msg=lambda m: f"{norm_type} {max_norm}: {m}")
                assert_grads_equal(ours, theirs, **tolerance)


def check_default_norm_is_two(impl):
    params = parameters()
    ours, theirs = twins(params), twins(params)
    torch.testing.assert_close(impl.clip_grad_norm_(ours, 1.0), torch.nn.utils.clip_grad_norm_(theirs, 1.0))
    assert_grads_equal(ours, theirs)
    ours = twins(params)
    torch.testing.assert_close(impl.clip_grad_norm_(ours, 1.0, "inf"),
                               torch.nn.utils.clip_grad_norm_(twins(params), 1.0, math.inf))


def check_clipped_norm_is_max_norm(impl):
    # the returned norm is the one before clipping; after it the total norm is max_norm (to the 1e-6 guard)
    for norm_type in NORM_TYPES:
        params = parameters()
        before = impl.clip_grad_norm_(twins(params), 1e9, norm_type)
        assert float(impl.clip_grad_norm_(params, 2.0, norm_type)) == pytest.approx(float(before), rel=1e-12)
        after = impl.clip_grad_norm_(twins(params), 1e9, norm_type)
        assert float(after) == pytest.approx(2.0, rel=1e-5)


def check_parameters_forms(impl):
    # a single tensor, and a generator (model.parameters()), read once
    p = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    p.grad = torch.randn(4, 3, dtype=torch.float64) * 5
    q = twins([p])[0]
    torch.testing.assert_close(impl.clip_grad_norm_(p, 1.0), torch.nn.utils.clip_grad_norm_(q, 1.0))
    torch.testing.assert_close(p.grad, q.grad)
    model = torch.nn.Linear(5, 3, dtype=torch.float64)
    model(torch.randn(8, 5, dtype=torch.float64)).pow(2).sum().backward()
    want = [t.grad.clone() for t in model.parameters()]
    norm = impl.clip_grad_norm_(model.parameters(), 0.1)
    scale = 0.1 / (float(torch.cat([w.flatten() for w in want]).norm()) + 1e-6)
    torch.testing.assert_close(norm, torch.cat([w.flatten() for w in want]).norm())
    for t, w in zip(model.parameters(), want):
        torch.testing.assert_close(t.grad, w * scale)
    v = torch.randn(6, dtype=torch.float64, requires_grad=True)
    v.grad = torch.linspace(-3, 3, 6, dtype=torch.float64)
    assert impl.clip_grad_value_(v, 1.0) is None
    torch.testing.assert_close(v.grad, v.grad.clamp(-1, 1))
    assert v.grad.abs().max() == 1.0
    model.weight.grad.fill_(5.0)
    impl.clip_grad_value_(model.parameters(), 0.5)
    assert model.weight.grad.max() == 0.5


def check_no_gradients(impl):
    params = [torch.randn(3, requires_grad=True), torch.randn(2, requires_grad=True)]
    norm = impl.clip_grad_norm_(params, 1.0)
    assert torch.equal(norm, torch.tensor(0.0)) and all(p.grad is None for p in params)
    assert torch.equal(impl.clip_grad_norm_([], 1.0, math.inf), torch.tensor(0.0))
    impl.clip_grad_value_(params, 1.0)
    assert all(p.grad is None for p in params)
    zero = torch.randn(3, dtype=torch.float64, requires_grad=True)
    zero.grad = torch.zeros(3, dtype=torch.float64)
    assert float(impl.clip_grad_norm_([zero], 1.0)) == 0.0 and torch.equal(zero.grad, torch.zeros(3,
                                                                                                  dtype=torch.float64))


def check_empty_gradient(impl):
    for norm_type in (1.0, 2.0, 3.5):  # an empty tensor adds nothing (torch's inf norm refuses empty tensors)
        params = [torch.randn(0, 3, requires_grad=True), torch.randn(4, requires_grad=True)]
        for p in params:
            p.grad = torch.randn(p.shape) * 4
        theirs = twins(params)
        torch.testing.assert_close(impl.clip_grad_norm_(params, 1.0, norm_type),
                                   torch.nn.utils.clip_grad_norm_(theirs, 1.0, norm_type, foreach=False))
        assert_grads_equal(params, theirs)
    params = [torch.randn(0, requires_grad=True), torch.randn(4, requires_grad=True)]
    for p in params:
        p.grad = torch.ones(p.shape) * 4
    torch.testing.assert_close(impl.clip_grad_norm_(params, 1.0, math.inf), torch.tensor(4.0))


def check_in_place(impl):
    params = parameters()
    grads = [p.grad for p in params]
    values = [p.detach().clone() for p in params]
    impl.clip_grad_norm_(params, 0.1)
    assert all(p.grad is g for p, g in zip(params, grads)), "the same gradient tensors, scaled in place"
    assert all(torch.equal(p.detach(), v) for p, v in zip(params, values)), "the parameters are not touched"
    impl.clip_grad_value_(params, 0.01)
    assert all(p.grad is g for p, g in zip(params, grads))


def differentiable_gradients():
    """A layer whose gradients are themselves differentiable (computed with create_graph=True)."""
    torch.manual_seed(3)
    model = torch.nn.Linear(3, 2, dtype=torch.float64)
    loss = model(torch.randn(5, 3, dtype=torch.float64)).pow(2).sum()
    for p, g in zip(model.parameters(), torch.autograd.grad(loss, list(model.parameters()), create_graph=True)):
        p.grad = g
    return model


def check_builds_no_graph(impl):
    # clipping such gradients records nothing in their graph and returns a plain norm, as torch's (under no_grad)
    second_derivatives = []
    for norm_clip, value_clip in ((impl.clip_grad_norm_, impl.clip_grad_value_),
                                  (torch.nn.utils.clip_grad_norm_, torch.nn.utils.clip_grad_value_)):
        model = differentiable_gradients()
        assert not norm_clip(model.parameters(), 0.1).requires_grad
        value_clip(model.parameters(), 0.01)
        params = list(model.parameters())  # the second derivative sees no clamp: it was not recorded
        second_derivatives.append(torch.autograd.grad(sum(p.grad.sum() for p in params), params, allow_unused=True,
                                                              materialize_grads=True))
    for ours, theirs in zip(*second_derivatives):
        torch.testing.assert_close(ours, theirs)


def check_nonfinite(impl):
    for bad in (math.inf, math.nan):
        params = parameters()
        params[0].grad[1, 2] = bad
        with pytest.raises(RuntimeError, match="non-finite|not finite"):
            impl.clip_grad_norm_(twins(params), 1.0, error_if_nonfinite=True)
        ours, theirs = twins(params), twins(params)  # without the flag: as torch, scaled by the non-finite norm
        torch.testing.assert_close(impl.clip_grad_norm_(ours, 1.0), torch.nn.utils.clip_grad_norm_(theirs, 1.0),
                                   equal_nan=True)
        assert_grads_equal(ours, theirs)
    params = parameters()
    ours, theirs = twins(params), twins(params)
    torch.testing.assert_close(impl.clip_grad_norm_(ours, 1.0, error_if_nonfinite=True),
                               torch.nn.utils.clip_grad_norm_(theirs, 1.0))


def check_value_matches_torch(impl):
    for dtype in (torch.float64, torch.float32):
        for clip_value in (0.0, 0.3, 2.5, 100.0):
            params = parameters(dtype)
            ours, theirs = twins(params), twins(params)
            assert impl.clip_grad_value_(ours, clip_value) is None
            torch.nn.utils.clip_grad_value_(theirs, clip_value, foreach=False)
            assert_grads_equal(ours, theirs, rtol=0, atol=0)


def check_by_hand(impl):
    # torch's clipping, its total-norm helpers, vector norms and the foreach kernels all unavailable
    names = [(torch.nn.utils, n) for n in ("clip_grad_norm_", "clip_grad_norm", "clip_grad_value_",
                                            "get_total_norm", "clip_grads_with_norm_")]
    names += [(torch.nn.utils.clip_grad, n) for n in ("clip_grad_norm_", "clip_grad_value_", "_get_total_norm",
                                                      "_clip_grads_with_norm_")]
    names += [(torch.linalg, "vector_norm"), (torch.linalg, "norm"), (torch, "norm"), (torch.Tensor, "norm")]
    names += [(torch, n) for n in dir(torch) if n.startswith("_foreach_")]
    with ExitStack() as stack:
        for owner, name in names:
            if hasattr(owner, name):
                stack.enter_context(mock.patch.object(owner, name, side_effect=AssertionError(f"{name} used")))
        for norm_type in NORM_TYPES:
            impl.clip_grad_norm_(parameters(), 1.0, norm_type)
        impl.clip_grad_value_(parameters(), 1.0)


def check_errors_name_the_problem(impl):
    for norm_type in (0.0, -1.0):
        with pytest.raises(ValueError, match=f"norm_type.*{norm_type}"):
            impl.clip_grad_norm_(parameters(), 1.0, norm_type)
    with pytest.raises(ValueError, match="max_norm.*-1"):
        impl.clip_grad_norm_(parameters(), -1.0)
    params = parameters()
    impl.clip_grad_norm_(params, 0.0)  # 0 is allowed: every gradient becomes 0
    assert all(torch.equal(p.grad, torch.zeros_like(p)) for p in params if p.grad is not None)
    with pytest.raises(ValueError, match="clip_value.*-0.5"):
        impl.clip_grad_value_(parameters(), -0.5)
    with pytest.raises(TypeError, match="list.*1"):
        impl.clip_grad_norm_([torch.randn(2), [1.0, 2.0]], 1.0)
    with pytest.raises(TypeError, match="float.*0"):
        impl.clip_grad_value_([3.0], 1.0)


CHECKS = [check_norm_matches_torch, check_default_norm_is_two, check_clipped_norm_is_max_norm, check_parameters_forms,
          check_no_gradients, check_empty_gradient, check_in_place, check_builds_no_graph, check_nonfinite,
          check_value_matches_torch,
          check_by_hand, check_errors_name_the_problem]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_clipping(impl, check):
    check(impl)


def variant(**changes):
    from types import SimpleNamespace

    from torchkata.autograd import clipping as reference

    return SimpleNamespace(**{"clip_grad_norm_": reference.clip_grad_norm_,
                              "clip_grad_value_": reference.clip_grad_value_} | changes)


def norm_of_sum(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Summing the per-tensor norms instead of taking the norm of them."""
    from torchkata.autograd.clipping import vector_norm

    params = [p for p in ([parameters] if isinstance(parameters, torch.Tensor) else parameters) if p.grad is not None]
    norm = sum(vector_norm(p.grad, float(norm_type)) for p in params)
    for p in params:
        p.grad.mul_((max_norm / (norm + 1e-6)).clamp(max=1.0))
    return norm


def clip_per_tensor(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Each tensor clipped to max_norm on its own: the direction of the whole step changes."""
    from torchkata.autograd.clipping import clip_grad_norm_

    return torch.stack([clip_grad_norm_(p, max_norm, norm_type) for p in parameters]).max()


def returns_norm_after(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    from torchkata.autograd.clipping import clip_grad_norm_

    params = list(parameters)
    clip_grad_norm_(params, max_norm, norm_type, error_if_nonfinite)
    return clip_grad_norm_(params, math.inf, norm_type)


def always_scaling(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scaling to max_norm even when the norm is below it (no clamp at 1)."""
    from torchkata.autograd.clipping import _grads, total_norm

    grads = _grads(parameters)
    norm = total_norm(grads, float(norm_type))
    for g in grads:
        g.mul_(max_norm / (norm + 1e-6))
    return norm


def value_by_norm(parameters, clip_value):
    from torchkata.autograd.clipping import clip_grad_norm_

    clip_grad_norm_(parameters, clip_value, math.inf)


BROKEN = {  # name: (broken solution, the check that must reject it)
    "sum_of_norms": (variant(clip_grad_norm_=norm_of_sum), "check_norm_matches_torch"),
    "per_tensor_clipping": (variant(clip_grad_norm_=clip_per_tensor), "check_norm_matches_torch"),
    "norm_after_clipping": (variant(clip_grad_norm_=returns_norm_after), "check_clipped_norm_is_max_norm"),
    "scaling_up_small_gradients": (variant(clip_grad_norm_=always_scaling), "check_norm_matches_torch"),
    "value_clipping_by_scaling": (variant(clip_grad_value_=value_by_norm), "check_value_matches_torch"),
    "torch_builtin": (variant(clip_grad_norm_=torch.nn.utils.clip_grad_norm_), "check_by_hand"),
}


@pytest.mark.suite_check
@pytest.mark.parametrize("name", BROKEN)
def test_broken_clipping_is_rejected(name):
    broken, rejected_by = BROKEN[name]
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], broken) == [rejected_by]


@pytest.mark.suite_check
def test_no_builtin_clipping_in_reference():
    import inspect

    from torchkata.autograd import clipping as module

    source = inspect.getsource(module)
    for builtin in ("nn.utils", "_foreach", "linalg", "torch.norm", ".norm(", "total_norm(parameters"):
        assert builtin not in source, builtin
