"""b01-05: gradients, Jacobians and Hessians computed with torch.autograd.grad, graded against analytic derivatives
and against torch.autograd.functional.jacobian / hessian (float64)."""
from types import SimpleNamespace

import pytest
import torch
from torch.autograd.functional import hessian as torch_hessian
from torch.autograd.functional import jacobian as torch_jacobian

from grading import failing_checks

EXERCISE = "b01-05"
TOL = dict(rtol=1e-12, atol=1e-14)


@pytest.fixture(scope="module")
def impl(impl_for):
    return impl_for(EXERCISE)


def matrix(n=4):
    return torch.randn(n, n, dtype=torch.float64)


def check_gradients_are_analytic(impl):
    x, a = torch.randn(5, dtype=torch.float64), matrix(5)
    cases = [
        (lambda t: t.sin().sum(), x.cos()),
        (lambda t: (t**3).sum(), 3 * x**2),
        (lambda t: t @ a @ t, (a + a.T) @ x),
        (lambda t: t.logsumexp(0), torch.softmax(x, 0)),
        (lambda t: t.norm(), x / x.norm()),
    ]
    for f, want in cases:
        grad = impl.gradient(f, x)
        assert grad.shape == x.shape and not grad.requires_grad
        torch.testing.assert_close(grad, want, **TOL)
    x2 = torch.randn(2, 3, dtype=torch.float64)  # a 2-D input: the gradient keeps its shape
    torch.testing.assert_close(impl.gradient(lambda t: (t * t).sum(), x2), 2 * x2, **TOL)


def check_jacobians(impl):
    x, a = torch.randn(4, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    p = torch.softmax(x, 0)
    analytic = [(torch.tanh, torch.diag(1 - x.tanh() ** 2)), (lambda t: a @ t, a),
                (lambda t: torch.softmax(t, 0), torch.diag(p) - torch.outer(p, p))]
    for f, want in analytic:
        torch.testing.assert_close(impl.jacobian(f, x), want, **TOL)
    x2 = torch.randn(2, 3, dtype=torch.float64)
    for f in [lambda t: torch.stack([t.sum(), (t**2).sum(), t.prod(), t[1, 0]]), lambda t: t.exp().t(),
              lambda t: (t @ t.T).sin()]:
        ours = impl.jacobian(f, x2)
        assert not ours.requires_grad
        torch.testing.assert_close(ours, torch_jacobian(f, x2), **TOL)


def check_hessians(impl):
    x, a = torch.randn(4, dtype=torch.float64), matrix()
    p = torch.softmax(x, 0)
    analytic = [(lambda t: t @ a @ t, a + a.T), (lambda t: (t**4).sum(), torch.diag(12 * x**2)),
                (lambda t: t.logsumexp(0), torch.diag(p) - torch.outer(p, p))]
    for f, want in analytic:
        ours = impl.hessian(f, x)
        assert not ours.requires_grad
        torch.testing.assert_close(ours, want, **TOL)
    x2 = torch.randn(2, 2, dtype=torch.float64)
    f = lambda t: (t.sin() * t.roll(1, 0)).sum()  # noqa: E731
    torch.testing.assert_close(impl.hessian(f, x2), torch_hessian(f, x2), **TOL)


def check_works_under_no_grad(impl):
    x = torch.randn(3, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(impl.gradient(lambda t: (t**2).sum(), x), 2 * x, **TOL)
        torch.testing.assert_close(impl.jacobian(lambda t: t**2, x), torch.diag(2 * x), **TOL)
        torch.testing.assert_close(impl.hessian(lambda t: (t**3).sum(), x), torch.diag(6 * x), **TOL)


def check_input_untouched(impl):
    x = torch.randn(3, dtype=torch.float64)
    before = x.clone()
    impl.gradient(lambda t: (t**2).sum(), x)
    impl.jacobian(lambda t: t.exp(), x)
    impl.hessian(lambda t: (t**3).sum(), x)
    assert torch.equal(x, before) and not x.requires_grad and x.grad is None
    leaf = torch.randn(3, dtype=torch.float64, requires_grad=True)
    impl.gradient(lambda t: (t**2).sum(), leaf)
    assert leaf.grad is None  # autograd.grad, not .backward(): nothing accumulates in the caller's .grad


def check_unused_and_constant(impl):
    x = torch.randn(3, dtype=torch.float64)
    assert torch.equal(impl.gradient(lambda t: torch.tensor(2.0, dtype=torch.float64), x), torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(impl.jacobian(lambda t: torch.stack([t[0], torch.ones((), dtype=torch.float64)]), x),
                               torch.tensor([[1.0, 0, 0], [0, 0, 0]], dtype=torch.float64), **TOL)
    assert torch.equal(impl.hessian(lambda t: t.sum(), x), torch.zeros(3, 3, dtype=torch.float64))  # linear: H = 0
    other = torch.randn(3, dtype=torch.float64, requires_grad=True)  # a graph, but one that never meets x
    assert torch.equal(impl.gradient(lambda t: (other * 2).sum(), x), torch.zeros(3, dtype=torch.float64))


def check_shapes_at_the_edges(impl):
    scalar = torch.tensor(2.0, dtype=torch.float64)
    assert impl.gradient(lambda t: t**3, scalar).item() == pytest.approx(12.0)
    assert impl.hessian(lambda t: t**3, scalar).item() == pytest.approx(12.0)
    assert impl.jacobian(lambda t: t * 2, torch.empty(0, dtype=torch.float64)).shape == (0, 0)
    assert impl.jacobian(lambda t: t.sum(), torch.randn(2, 3, dtype=torch.float64)).shape == (2, 3)


def check_errors_name_the_problem(impl):
    x = torch.randn(3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"\(3,\)"):
        impl.gradient(lambda t: t * 2, x)
    with pytest.raises(ValueError, match=r"\(3,\)"):
        impl.hessian(lambda t: t * 2, x)
    with pytest.raises(ValueError, match=r"\(0,\)"):  # an empty output is not a scalar either
        impl.gradient(lambda t: t[:0], x)
    with pytest.raises(ValueError, match=r"\(0,\)"):
        impl.hessian(lambda t: t[:0], x)
    for fn in (impl.gradient, impl.jacobian, impl.hessian):
        with pytest.raises(TypeError, match="int64"):
            fn(lambda t: t.sum(), torch.arange(3))
        with pytest.raises(TypeError, match="float"):
            fn(lambda t: t.sum().item(), x)


CHECKS = [check_gradients_are_analytic, check_jacobians, check_hessians, check_works_under_no_grad,
          check_input_untouched, check_unused_and_constant, check_shapes_at_the_edges, check_errors_name_the_problem]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_gradients(impl, check):
    check(impl)


def reference():
    from torchkata.tensors import gradients
    return gradients


def finite_differences(f, x, h=1e-6):
    x = x.detach()
    basis = torch.eye(x.numel(), dtype=x.dtype).reshape(-1, *x.shape)
    return torch.stack([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in basis]).reshape(x.shape)


def transposed_jacobian(f, x):
    j = reference().jacobian(f, x)
    return j.T if j.dim() == 2 else j


def first_order_hessian(f, x):  # the gradient without create_graph: its Jacobian is taken of a constant
    return reference().jacobian(lambda t: torch.autograd.grad(f(t), t)[0], x)


def backward_accumulating_gradient(f, x):
    with torch.enable_grad():
        f(x.requires_grad_() if not x.requires_grad else x).backward()
    return x.grad


BROKEN = {  # name: (implementation, the check that must reject it)
    "finite_differences": (SimpleNamespace(gradient=finite_differences), "check_gradients_are_analytic"),
    "transposed_jacobian": (SimpleNamespace(jacobian=transposed_jacobian), "check_jacobians"),
    "first_order_hessian": (SimpleNamespace(hessian=first_order_hessian), "check_hessians"),
    "backward_into_x_grad": (SimpleNamespace(gradient=backward_accumulating_gradient, jacobian=reference().jacobian,
                                             hessian=reference().hessian), "check_input_untouched"),
}


@pytest.mark.suite_check
@pytest.mark.parametrize("name", BROKEN)
def test_broken_gradients_are_rejected(name):
    broken, rejected_by = BROKEN[name]
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], broken) == [rejected_by]


@pytest.mark.suite_check
def test_no_ready_made_jacobian_in_reference():
    import inspect

    source = inspect.getsource(reference())
    for builtin in ("autograd.functional", "torch.func", "vmap", "jacrev", "jacfwd", "is_grads_batched"):
        assert builtin not in source, builtin
