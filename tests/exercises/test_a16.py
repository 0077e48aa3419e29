"""a16: linear regression by gradient descent with a hand-written update under torch.no_grad, graded against float64
references: the step against its formula and torch.optim.SGD's, the whole trajectory against gradient descent on the
quadratic written out with the Hessian, the end point against torch.linalg.lstsq, and the stability bound against
2/λ_max of the Hessian that torch.autograd.functional.hessian computes, on both sides of which the runs converge and
diverge."""
import inspect
import types

import pytest
import torch

from grading import failing_checks

EXERCISE = "a16"


@pytest.fixture(scope="module")
def impl(impl_for):
    return impl_for(EXERCISE)


def problem(rows=40, features=3, dtype=torch.float64, seed=0, noise=0.3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, features, generator=g, dtype=dtype) * torch.linspace(0.5, 1.5, features, dtype=dtype)
    y = x @ torch.linspace(-2.0, 3.0, features, dtype=dtype) + 4.0 + noise * torch.randn(rows, generator=g, dtype=dtype)
    return x, y


def design(x):
    return torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)


def hessian_reference(x):
    """The MSE's Hessian in θ = (weight, bias) from autograd, float64: no formula of the exercise's in it."""
    x = x.double()

    def loss(theta):
        return ((x @ theta[:-1] + theta[-1]) ** 2).mean()  # the targets only shift the gradient, not the Hessian
    return torch.autograd.functional.hessian(loss, torch.zeros(x.shape[1] + 1, dtype=torch.float64))


def descent_reference(x, y, lr, steps):
    """Gradient descent on the quadratic, the gradient written out: (2/N) Aᵀ(Aθ − y), float64. -> (θ, losses)."""
    a, y = design(x.double()), y.double()
    theta, losses = torch.zeros(a.shape[1], dtype=torch.float64), []
    for _ in range(steps):
        residual = a @ theta - y
        losses.append(float((residual ** 2).mean()))
        theta = theta - lr * 2 / len(a) * a.T @ residual
    return theta, losses


def check_gradient_step(impl):
    g = torch.Generator().manual_seed(1)
    params = [torch.randn(s, generator=g, dtype=torch.float64, requires_grad=True) for s in [(3, 2), (4,), ()]]
    grads = [torch.randn(p.shape, generator=g, dtype=torch.float64) for p in params]
    for p, grad in zip(params[:2], grads):
        p.grad = grad.clone()
    before = [p.detach().clone() for p in params]
    storages = [p.data_ptr() for p in params]
    impl.gradient_step(iter(params), 0.3)  # any iterable, as model.parameters()
    for p, b, grad in zip(params[:2], before, grads):
        torch.testing.assert_close(p.detach(), b - 0.3 * grad, rtol=1e-15, atol=0)
        assert p.grad is None, "the gradient must be dropped after the update"
    assert torch.equal(params[2].detach(), before[2]), "a parameter without a gradient must not move"
    assert [p.data_ptr() for p in params] == storages, "the update must be in place"
    assert all(p.is_leaf and p.requires_grad and p.grad_fn is None for p in params), "the update must not be recorded"


def check_gradient_step_equals_torch_sgd(impl):
    torch.manual_seed(2)
    models = [torch.nn.Linear(5, 3).double() for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    x = torch.randn(8, 5, dtype=torch.float64)
    optimizer = torch.optim.SGD(models[1].parameters(), lr=0.05)
    for _ in range(3):
        for model in models:
            model(x).pow(2).mean().backward()
        impl.gradient_step(models[0].parameters(), 0.05)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    for p, q in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(p, q, rtol=1e-13, atol=1e-15)


def check_gradient_step_errors(impl):
    for lr in (0.0, -0.1, float("nan")):
        p = torch.zeros(2, requires_grad=True)
        p.grad = torch.ones(2)
        with pytest.raises(ValueError, match="lr"):
            impl.gradient_step([p], lr)
        assert torch.equal(p.detach(), torch.zeros(2)), "a refused step must not move the parameters"


def check_fit_follows_gradient_descent(impl):
    for rows, features, lr, steps in [(40, 3, 0.05, 60), (7, 1, 0.3, 25), (30, 5, 0.01, 40)]:
        x, y = problem(rows, features)
        weight, bias, losses = impl.fit_linear_regression(x, y, lr, steps)
        theta, want = descent_reference(x, y, lr, steps)
        assert isinstance(losses, list) and all(isinstance(v, float) for v in losses), type(losses)
        torch.testing.assert_close(torch.tensor(losses, dtype=torch.float64), torch.tensor(want, dtype=torch.float64),
                                   rtol=1e-11, atol=0)
        torch.testing.assert_close(torch.cat([weight, bias[None]]), theta, rtol=1e-11, atol=1e-12)


def check_fit_converges_to_lstsq(impl):
    x, y = problem(60, 4)
    a = design(x)
    lambdas = torch.linalg.eigvalsh(2 / len(a) * a.T @ a)
    lr = 1.9 / float(lambdas[-1] + lambdas[0])  # close to the fastest rate
    weight, bias, losses = impl.fit_linear_regression(x, y, lr, 120)
    optimum = torch.linalg.lstsq(a, y[:, None]).solution.squeeze(1)
    torch.testing.assert_close(torch.cat([weight, bias[None]]), optimum, rtol=0, atol=1e-8)
    assert all(later <= earlier * (1 + 1e-12) for earlier, later in zip(losses, losses[1:])), "the loss must not rise"


def check_fit_outputs(impl):
    x, y = problem(20, 3, dtype=torch.float32)
    x = x.T.contiguous().T  # non-contiguous
    assert not x.is_contiguous()
    weight, bias, losses = impl.fit_linear_regression(x, y, 0.02, 10)
    assert weight.shape == (3,) and bias.shape == (), (weight.shape, bias.shape)
    assert weight.dtype == bias.dtype == torch.float32
    assert not weight.requires_grad and not bias.requires_grad, "return the parameters detached"
    assert len(losses) == 10
    theta, want = descent_reference(x, y, 0.02, 10)
    torch.testing.assert_close(torch.tensor(losses, dtype=torch.float64), torch.tensor(want, dtype=torch.float64),
                               rtol=1e-5, atol=0)
    weight, bias, losses = impl.fit_linear_regression(x, y, 0.02, 0)
    assert torch.equal(weight, torch.zeros(3)) and torch.equal(bias, torch.zeros(())) and losses == []


def check_fit_errors_name_the_problem(impl):
    x, y = problem(6, 2)
    cases = [((x, y[:, None], 0.1, 3), ValueError, r"\(6,\).*\(6, 1\)"),  # would broadcast to [6, 6]
             ((x, y[:5], 0.1, 3), ValueError, r"\(6,\).*\(5,\)"),
             ((x[:, 0], y, 0.1, 3), ValueError, "2-D"),
             ((x[None], y, 0.1, 3), ValueError, "2-D"),
             ((x[:0], y[:0], 0.1, 3), ValueError, "row"),
             ((x, y.float(), 0.1, 3), TypeError, "float32"),
             ((x.long(), y, 0.1, 3), TypeError, "int64"),
             ((x, y, 0.1, -1), ValueError, "steps"),
             ((x, y, -0.1, 3), ValueError, "lr")]
    for args, error, message in cases:
        with pytest.raises(error, match=message):
            impl.fit_linear_regression(*args)


def check_stability_bound_is_two_over_lambda_max(impl):
    for rows, features, dtype, rtol in [(40, 3, torch.float64, 1e-10), (5, 1, torch.float64, 1e-10),
                                        (3, 6, torch.float64, 1e-10), (50, 4, torch.float32, 1e-5)]:
        x, _ = problem(rows, features, dtype)
        want = 2 / float(torch.linalg.eigvalsh(hessian_reference(x))[-1])
        got = impl.stability_bound(x)
        assert isinstance(got, float), type(got)
        assert got == pytest.approx(want, rel=rtol), (rows, features, dtype)
    x, _ = problem(20, 3)
    assert impl.stability_bound(x.T.contiguous().T) == pytest.approx(impl.stability_bound(x), rel=1e-12)
    with pytest.raises(TypeError, match="int64"):
        impl.stability_bound(torch.ones(4, 2, dtype=torch.long))
    for shape in [(4,), (1, 4, 2)]:
        with pytest.raises(ValueError, match="2-D"):
            impl.stability_bound(torch.ones(shape))


def check_bound_separates_convergence_from_divergence(impl):
    x, y = problem(50, 3, noise=0.0)  # an optimum of zero loss
    bound = impl.stability_bound(x)
    _, _, below = impl.fit_linear_regression(x, y, 0.95 * bound, 80)
    _, _, above = impl.fit_linear_regression(x, y, 1.05 * bound, 80)
    assert below[-1] < 1e-3 * below[0], "just below 2/λ_max gradient descent converges"
    assert above[-1] > 1e3 * above[0], "just above 2/λ_max it diverges"


CHECKS = [check_gradient_step, check_gradient_step_equals_torch_sgd, check_gradient_step_errors,
          check_fit_follows_gradient_descent, check_fit_converges_to_lstsq, check_fit_outputs,
          check_fit_errors_name_the_problem, check_stability_bound_is_two_over_lambda_max,
          check_bound_separates_convergence_from_divergence]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_gradient_descent(impl, check):
    check(impl)


# --- broken versions: each must be rejected ---------------------------------------------------------------------

def reference_with(**replaced):
    from torchkata.optim import gradient_descent as ref

    return types.SimpleNamespace(**{name: getattr(ref, name) for name in
                                    ("gradient_step", "fit_linear_regression", "stability_bound")} | replaced)


@torch.no_grad()
def step_keeping_grad(parameters, lr):  # gradients accumulate over the steps
    for p in parameters:
        if p.grad is not None:
            p -= lr * p.grad


@torch.no_grad()
def step_not_in_place(parameters, lr):  # rebinds a local name: the caller's parameter never moves
    for p in parameters:
        if p.grad is not None:
            p = p - lr * p.grad  # noqa: PLW2901


def fit_summed_loss(x, y, lr, steps):  # a sum, not a mean: the gradient, so each step, is N times too large
    weight, bias, losses = reference_with().fit_linear_regression(x, y, lr * len(x), steps)
    return weight, bias, [loss * len(x) for loss in losses]


def bound_without_bias(x):  # the bias is a parameter too: its column of ones belongs in the Hessian
    return 2 / float(torch.linalg.eigvalsh(2 / len(x) * x.T @ x)[-1])


def bound_one_over_lambda(x):  # 1/λ_max is the fastest rate for the top direction, not the edge of stability
    from torchkata.optim import gradient_descent as ref

    return ref.stability_bound(x) / 2


BROKEN = {"step_keeping_grad": reference_with(gradient_step=step_keeping_grad),
          "step_not_in_place": reference_with(gradient_step=step_not_in_place),
          "fit_summed_loss": reference_with(fit_linear_regression=fit_summed_loss),
          "bound_without_bias": reference_with(stability_bound=bound_without_bias),
          "bound_one_over_lambda": reference_with(stability_bound=bound_one_over_lambda)}


@pytest.mark.suite_check
@pytest.mark.parametrize("name", BROKEN)
def test_broken_gradient_descent_is_rejected(name):
    assert failing_checks(CHECKS, BROKEN[name])


@pytest.mark.suite_check
def test_reference_updates_by_hand_under_no_grad():
    from torchkata.optim import gradient_descent as ref

    source = inspect.getsource(ref)
    assert "torch.optim." not in source.replace("torch.optim.SGD does", "") and "no_grad" in source
    assert "lstsq" not in source and ".backward()" in source
