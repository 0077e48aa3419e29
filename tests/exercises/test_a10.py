"""a10: gradcheck as a tool, graded on what it must tell apart: the right ScaledLinearFunction (values against the op
through autograd, gradients against autograd's) passes gradcheck in float64; each of the three bugs is the bug it names
(checked on its gradients) and is caught, on square shapes (values only) and others (shapes too); central differences
against autograd's Jacobian and their eps behaviour; gradcheck_passes' verdicts."""
import warnings

import pytest
import torch

from grading import failing_checks

EXERCISE = "a10"
SHAPES = [(4, 4, 4), (5, 3, 2), (1, 2, 3)]  # (N, in, out): square, and not


@pytest.fixture(scope="module")
def impl(impl_for):
    return impl_for(EXERCISE)


def case(shape, dtype=torch.float64):
    n, n_in, n_out = shape
    return [torch.randn(s, dtype=dtype, requires_grad=True) for s in ((n, n_in), (n_out, n_in), (n,), (n_out,))]


def native(x, weight, scale, bias):
    return (x @ weight.T) * scale[:, None] + bias


def gradients(fn, args, upstream):
    out = fn(*args)
    return out.detach(), torch.autograd.grad(out, args, upstream)


def check_right_matches_autograd(impl):
    for shape in SHAPES:
        args = case(shape)
        upstream = torch.randn(shape[0], shape[2], dtype=torch.float64)
        out, grads = gradients(impl.scaled_linear, args, upstream)
        want_out, want = gradients(native, args, upstream)
        torch.testing.assert_close(out, want_out, rtol=1e-12, atol=1e-12)
        for name, g, w in zip(("x", "weight", "scale", "bias"), grads, want):
            torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12, msg=lambda m: f"{shape} d/d{name}: {m}")
    args = case((6, 3, 2), torch.float32)
    torch.testing.assert_close(impl.scaled_linear(*args), native(*args))
    args = case((300, 300, 300), torch.float32)  # sizes above CPython's small-int cache: compared by value, not `is`
    torch.testing.assert_close(impl.scaled_linear(*args), native(*args))
    out = impl.scaled_linear(*args)
    assert isinstance(out.grad_fn, torch.autograd.function.BackwardCFunction), "a custom Function's node"


def check_right_passes_gradcheck(impl):
    for shape in SHAPES:
        args = case(shape)
        assert torch.autograd.gradcheck(impl.scaled_linear, args)
        assert impl.gradcheck_passes(impl.scaled_linear, args)
        assert impl.gradcheck_passes(lambda *a: impl.scaled_linear(*a, bug=None), args, eps=1e-5, atol=1e-6)


def check_bugs_are_the_named_kind(impl):
    assert tuple(impl.BUGS) == ("sign", "transpose", "broadcast")
    args, upstream = case((4, 4, 4)), torch.randn(4, 4, dtype=torch.float64)
    _, want = gradients(native, args, upstream)
    for bug, changed, expected in (("sign", 0, -want[0]), ("transpose", 1, want[1].T),
                                   ("broadcast", 2, upstream * (args[0] @ args[1].T).detach())):
        made_at_runtime = "".join(list(bug))  # equal to the literal, not the same object: compare with ==, not `is`
        out, grads = gradients(lambda *a: impl.scaled_linear(*a, bug=made_at_runtime), args, upstream)
        torch.testing.assert_close(out, native(*args).detach(), msg=lambda m: f"{bug}: the forward is right: {m}")
        for i, (g, w) in enumerate(zip(grads, want)):
            if i != changed:
                torch.testing.assert_close(g, w, msg=lambda m: f"{bug}: only one gradient is wrong: {m}")
        if bug == "broadcast":  # autograd sums the unreduced [N, out] down to scale's [N] over the leading dim
            expected = expected.sum(dim=0)
        torch.testing.assert_close(grads[changed], expected, rtol=1e-12, atol=1e-12, msg=lambda m: f"{bug}: {m}")


def check_bugs_are_caught(impl):
    for bug in impl.BUGS:
        for shape in SHAPES[:2]:
            args = case(shape)
            assert not impl.gradcheck_passes(lambda *a: impl.scaled_linear(*a, bug=bug), args), f"{bug} {shape}"
            with pytest.raises(RuntimeError):  # GradcheckError is one
                torch.autograd.gradcheck(lambda *a: impl.scaled_linear(*a, bug=bug), args)
    args = case((5, 3, 2))  # non-square: autograd itself refuses the wrong shapes
    for bug in ("transpose", "broadcast"):
        with pytest.raises(RuntimeError, match="invalid gradient"):
            impl.scaled_linear(*args, bug=bug).sum().backward()


def check_gradcheck_passes_lets_other_errors_through(impl):
    def crashing(x):
        raise RuntimeError("not a gradient problem")

    with pytest.raises(RuntimeError, match="not a gradient problem"):
        impl.gradcheck_passes(crashing, [torch.randn(2, dtype=torch.float64, requires_grad=True)])
    x = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert impl.gradcheck_passes(lambda t: t.sin(), (x,)) is True
    assert impl.gradcheck_passes(lambda t: t.sin(), [x], atol=1e-7) is True  # a list works as a tuple


def check_float32_needs_other_settings(impl):
    # float32 at gradcheck's defaults (eps 1e-6) fails the right backward; at eps 1e-2 and tolerance 1e-2 it passes,
    # and the bugs are still caught there
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        args = case((5, 3, 2), torch.float32)
        assert not impl.gradcheck_passes(impl.scaled_linear, args)
        assert impl.gradcheck_passes(impl.scaled_linear, args, eps=1e-2, atol=1e-2, rtol=1e-2)
        for bug in impl.BUGS:
            assert not impl.gradcheck_passes(lambda *a: impl.scaled_linear(*a, bug=bug), args,
                                             eps=1e-2, atol=1e-2, rtol=1e-2), bug


def check_numerical_jacobian(impl):
    x = torch.randn(2, 3, dtype=torch.float64)
    for fn, out_shape in ((lambda t: t.sin() * t.sum(), (2, 3)), (lambda t: (t ** 2).sum(dim=0), (3,)),
                          (lambda t: t.exp().sum(), ())):
        jacobian = impl.numerical_jacobian(fn, x, 1e-6)
        assert jacobian.shape == out_shape + (2, 3)
        torch.testing.assert_close(jacobian, torch.autograd.functional.jacobian(fn, x), rtol=1e-6, atol=1e-7)
    cube = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    error = impl.numerical_jacobian(lambda t: t ** 3, cube, 0.1) - torch.diag(3 * cube ** 2)
    torch.testing.assert_close(error, torch.eye(3, dtype=torch.float64) * 0.01, rtol=1e-9, atol=1e-12)  # central: eps²
    assert impl.numerical_jacobian(lambda t: t * 2, x, 1e-3).dtype == torch.float64
    single = impl.numerical_jacobian(lambda t: t * 2, torch.tensor([1.0]), 1e-2)
    assert single.dtype == torch.float32, "in x's dtype"
    torch.testing.assert_close(single, torch.tensor([[2.0]]))
    assert impl.numerical_jacobian(lambda t: t * 2, torch.empty(0, 2, dtype=torch.float64), 1e-3).shape == (0, 2, 0, 2)


def check_numerical_jacobian_leaves_input(impl):
    x = torch.randn(4, dtype=torch.float64)
    before = x.clone()
    seen = []
    impl.numerical_jacobian(lambda t: seen.append(t.clone()) or t * 3, x, 0.5)
    assert torch.equal(x, before), "x is left as it was"
    moved = [t - before for t in seen if not torch.equal(t, before)]
    assert len(moved) == 8, "each of the 4 entries moved up and down once"
    for diff in moved:  # one entry at a time, by eps
        assert int((diff != 0).sum()) == 1 and torch.isclose(diff.abs().max(), torch.tensor(0.5, dtype=torch.float64))


def check_float32_eps_tradeoff(impl):
    # rounding dominates at a small eps in float32 (error ~ u/eps), far less in float64
    x = torch.linspace(-1, 1, 5, dtype=torch.float64)
    exact = torch.diag(1 - x.tanh() ** 2)
    err = {(dtype, eps): float((impl.numerical_jacobian(torch.tanh, x.to(dtype), eps).double() - exact).abs().max())
           for dtype in (torch.float32, torch.float64) for eps in (1e-6, 1e-2)}
    assert err[torch.float32, 1e-6] > 1e-3 > err[torch.float32, 1e-2]
    assert err[torch.float64, 1e-6] < 1e-8 < err[torch.float64, 1e-2] < 1e-4


def check_errors_name_the_problem(impl):
    args = [t.detach() for t in case((5, 3, 2))]
    with pytest.raises(ValueError, match="'flip'"):
        impl.scaled_linear(*args, bug="flip")
    with pytest.raises(TypeError, match="int64"):
        impl.scaled_linear(torch.ones(5, 3, dtype=torch.int64), *args[1:])
    with pytest.raises(TypeError, match="bias.*list"):
        impl.scaled_linear(*args[:3], [0.0, 0.0])
    for i, name in enumerate(("x", "weight", "scale", "bias")):
        for wrong_dims in (args[i].unsqueeze(0), args[i].flatten()[0] if i > 1 else args[i].flatten()):
            wrong = list(args)
            wrong[i] = wrong_dims
            with pytest.raises(ValueError, match=f"{name} must be {args[i].dim()}-D"):
                impl.scaled_linear(*wrong)
    for i, bad in ((1, torch.randn(2, 4, dtype=torch.float64)), (1, torch.randn(2, 2, dtype=torch.float64)),
                   (2, torch.randn(4, dtype=torch.float64)), (2, torch.randn(6, dtype=torch.float64)),
                   (3, torch.randn(3, dtype=torch.float64)), (3, torch.randn(1, dtype=torch.float64))):
        wrong = list(args)
        wrong[i] = bad
        with pytest.raises(ValueError, match="do not fit"):
            impl.scaled_linear(*wrong)
    for eps in (0.0, -1e-3):
        with pytest.raises(ValueError, match=str(eps)):
            impl.numerical_jacobian(torch.sin, torch.randn(2), eps)


CHECKS = [check_right_matches_autograd, check_right_passes_gradcheck, check_bugs_are_the_named_kind,
          check_bugs_are_caught, check_gradcheck_passes_lets_other_errors_through, check_float32_needs_other_settings,
          check_numerical_jacobian, check_numerical_jacobian_leaves_input, check_float32_eps_tradeoff,
          check_errors_name_the_problem]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_gradcheck_tool(impl, check):
    check(impl)


def variant(**changes):
    from types import SimpleNamespace

    from torchkata.autograd import gradcheck_tool as reference

    names = ("BUGS", "ScaledLinearFunction", "scaled_linear", "numerical_jacobian", "gradcheck_passes")
    return SimpleNamespace(**{name: getattr(reference, name) for name in names} | changes)


def forward_differences(fn, x, eps):
    base, flat, columns = fn(x), x.detach().clone().flatten(), []
    for i in range(flat.numel()):
        flat[i] += eps
        columns.append((fn(flat.view_as(x)) - base) / eps)
        flat[i] -= eps
    return torch.stack(columns, dim=-1).reshape(base.shape + x.shape)


def passes_swallowing_everything(fn, inputs, **options):
    try:
        return torch.autograd.gradcheck(fn, tuple(inputs), raise_exception=False, **options)
    except Exception:
        return False


def passes_raising(fn, inputs, **options):
    return torch.autograd.gradcheck(fn, tuple(inputs), **options)


def all_bugs_sign(x, weight, scale, bias, bug=None):
    from torchkata.autograd.gradcheck_tool import scaled_linear

    return scaled_linear(x, weight, scale, bias, bug="sign" if bug else None)


def always_buggy(x, weight, scale, bias, bug=None):
    from torchkata.autograd.gradcheck_tool import scaled_linear

    return scaled_linear(x, weight, scale, bias, bug=bug or "sign")


BROKEN = {  # name: (broken solution, the check that must reject it)
    "forward_differences": (variant(numerical_jacobian=forward_differences), "check_numerical_jacobian"),
    "shape_errors_escape": (variant(gradcheck_passes=passes_raising), "check_bugs_are_caught"),
    "all_errors_swallowed": (variant(gradcheck_passes=passes_swallowing_everything),
                             "check_gradcheck_passes_lets_other_errors_through"),
    "every_bug_a_sign": (variant(scaled_linear=all_bugs_sign), "check_bugs_are_the_named_kind"),
    "right_one_buggy": (variant(scaled_linear=always_buggy), "check_right_passes_gradcheck"),
}


@pytest.mark.suite_check
@pytest.mark.parametrize("name", BROKEN)
def test_broken_tool_is_rejected(name):
    broken, rejected_by = BROKEN[name]
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], broken) == [rejected_by]
