"""m1-core-3: elementwise ops on hand-written broadcasting, with gradients reduced back to the input shapes,
graded against torch's ops and autograd."""
import types

import pytest
import torch
from hypothesis import Phase, given, settings, strategies as st

from grading import failing_checks

EXERCISE = "m1-core-3"
OPS = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div}
PROPERTY = settings(max_examples=20, deadline=None, derandomize=True, database=None,
                    phases=(Phase.explicit, Phase.generate))
PAIRS = [((3, 1), (1, 4)), ((2, 3, 4), (4,)), ((5,), ()), ((), (2, 3)), ((2, 1, 3), (4, 1)), ((1, 1), (1, 1)),
         ((3, 4), (3, 4)), ((0, 3), (1, 3)), ((2, 1, 1, 3), (1, 5, 2, 1))]


@pytest.fixture(scope="module")
def impl(impl_for):
    return impl_for(EXERCISE)


@st.composite
def broadcastable_pairs(draw):
    """Two shapes of rank 0-5 that broadcast: cut from one base shape, some sizes set to 1."""
    base = draw(st.lists(st.integers(1, 3), max_size=5))
    return tuple(tuple(1 if draw(st.booleans()) else s for s in base[len(base) - draw(st.integers(0, len(base))):])
                 for _ in range(2))


def inputs(a_shape, b_shape, dtype=torch.float64):
    a = torch.randn(a_shape, dtype=dtype)
    b = torch.rand(b_shape, dtype=dtype) + 0.5  # away from 0: div's gradient is 1/b
    return a.requires_grad_(), b.requires_grad_()


def torch_grads(name, a, b, weights):
    out = OPS[name](a, b)
    return torch.autograd.grad((out * weights).sum(), (a, b))


def check_forward_matches_torch(impl):
    cases = [(pair, torch.float64, 1e-12) for pair in PAIRS] + [
        (pair, dtype, rtol) for pair in PAIRS[:3] for dtype, rtol in [(torch.float32, 1e-6), (torch.float16, 1e-3),
                                                                       (torch.bfloat16, 1e-2)]]
    for (a_shape, b_shape), dtype, rtol in cases:
        a, b = inputs(a_shape, b_shape, dtype)
        for name, op in OPS.items():
            got = getattr(impl, name)(a, b)
            assert got.dtype == dtype and got.shape == op(a, b).shape
            torch.testing.assert_close(got, op(a, b), rtol=rtol, atol=rtol)


def check_non_contiguous(impl):
    a = torch.randn(4, 6, dtype=torch.float64)[:, ::2].t().requires_grad_()  # (3, 4), strides (2, 6)
    b = (torch.rand(4, 1, 3, dtype=torch.float64) + 0.5).transpose(0, 2).requires_grad_()  # (3, 1, 4)
    w = torch.randn(3, 3, 4, dtype=torch.float64)
    for name, op in OPS.items():
        torch.testing.assert_close(getattr(impl, name)(a, b), op(a, b))
        got = torch.autograd.grad((getattr(impl, name)(a, b) * w).sum(), (a, b))
        for g, want in zip(got, torch_grads(name, a, b, w)):
            torch.testing.assert_close(g, want)


def check_gradients_match_torch(impl):
    @PROPERTY
    @given(broadcastable_pairs(), st.sampled_from(sorted(OPS)))
    def prop(shapes, name):
        a, b = inputs(*shapes)
        out = getattr(impl, name)(a, b)
        w = torch.randn(out.shape, dtype=torch.float64)
        got = torch.autograd.grad((out * w).sum(), (a, b))
        for g, x, want in zip(got, (a, b), torch_grads(name, a, b, w)):
            assert g.shape == x.shape, (shapes, name, g.shape)
            torch.testing.assert_close(g, want, rtol=1e-10, atol=1e-12)

    prop()


def check_gradcheck(impl):
    for a_shape, b_shape in [((3, 1), (1, 4)), ((), (2, 3)), ((2, 1, 3), (4, 1))]:
        for name in OPS:
            assert torch.autograd.gradcheck(getattr(impl, name), inputs(a_shape, b_shape)), (name, a_shape, b_shape)


def check_grad_dtype_and_one_sided(impl):
    a = torch.randn(3, 1, requires_grad=True)  # float32
    b = torch.rand(4, dtype=torch.float64) + 0.5  # float64, no grad
    for name in OPS:
        a.grad = None
        out = getattr(impl, name)(a, b)
        assert out.dtype == torch.float64
        out.sum().backward()
        want = torch.autograd.grad(OPS[name](a, b).sum(), a)[0]
        assert a.grad.dtype == torch.float32 and b.grad is None
        torch.testing.assert_close(a.grad, want)


def check_sum_to_shape(impl):
    cases = [((2, 3, 4), (3, 1)), ((2, 3, 4), (4,)), ((2, 3, 4), ()), ((2, 3, 4), (1, 1, 1)), ((2, 3, 4), (2, 3, 4)),
             ((5, 1, 4), (1, 4)), ((0, 3), (1, 3)), ((3, 0), (3, 1)), ((), ()), ((6,), (1,)), ((2, 3), (2, 1)),
             ((2, 0, 3), (0, 3)), ((2, 0, 3), (1, 0, 1))]
    for grad_shape, shape in cases:
        grad = torch.randn(grad_shape, dtype=torch.float64)
        got = impl.sum_to_shape(grad, torch.Size(shape))
        assert got.shape == shape, (grad_shape, shape, got.shape)
        torch.testing.assert_close(got, grad.sum_to_size(shape), rtol=1e-12, atol=1e-12)


def check_sum_to_shape_error_names_shapes(impl):
    # a gradient never has fewer dims than its input: (3,) cannot come from (1, 3)
    for grad_shape, shape in [((2, 3), (4,)), ((3,), (2, 3)), ((2, 3), (2, 2)), ((3,), (1, 3))]:
        with pytest.raises(RuntimeError) as error:
            impl.sum_to_shape(torch.zeros(grad_shape), torch.Size(shape))
        assert str(grad_shape) in str(error.value) and str(shape) in str(error.value), str(error.value)


def check_broadcast_error_names_shapes(impl):
    for name in OPS:
        with pytest.raises(RuntimeError) as error:
            getattr(impl, name)(torch.randn(2, 3), torch.randn(4))
        assert "(2, 3)" in str(error.value) and "(4,)" in str(error.value), str(error.value)


CHECKS = [check_forward_matches_torch, check_non_contiguous, check_gradients_match_torch, check_gradcheck,
          check_grad_dtype_and_one_sided, check_sum_to_shape, check_sum_to_shape_error_names_shapes,
          check_broadcast_error_names_shapes]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_elementwise_autograd(impl, check):
    check(impl)


# --- broken versions the checks must reject -------------------------------------------------------------------

RIGHT_GRADS = {"add": lambda g, a, b: (g, g), "sub": lambda g, a, b: (g, -g), "mul": lambda g, a, b: (g * b, g * a),
               "div": lambda g, a, b: (g / b, -g * a / (b * b))}


def right_reduce(grad, shape):
    return grad.sum_to_size(shape)


def ops_with(reduce=right_reduce, **grads):
    """The ops as autograd Functions: reference forward, gradients from `grads` (else the right ones) reduced
    with `reduce`."""
    from torchkata.tensors.elementwise_autograd import elementwise

    def op(name):
        class Op(torch.autograd.Function):
            @staticmethod
            def forward(ctx, a, b):
                ctx.save_for_backward(a, b)
                return getattr(elementwise, name)(a, b)

            @staticmethod
            def backward(ctx, grad):
                a, b = ctx.saved_tensors
                grad_a, grad_b = grads.get(name, RIGHT_GRADS[name])(grad, a, b)
                return reduce(grad_a, a.shape), reduce(grad_b, b.shape)

        return Op.apply

    return types.SimpleNamespace(sum_to_shape=reduce, **{name: op(name) for name in OPS})


def leading_dims_only(grad, shape):
    """Sums away the missing leading dims but forgets the size-1 ones."""
    lead = grad.dim() - len(shape)
    return grad.sum(dim=tuple(range(lead))) if lead else grad


def first_dim_only(grad, shape):
    """Sums dim 0 until the ranks match: right for (N, D) against (D,) only."""
    while grad.dim() > len(shape):
        grad = grad.sum(0)
    return grad.sum_to_size(shape) if all(s != 1 for s in shape) else grad.reshape(-1)[: max(1, grad.numel())]


def mean_not_sum(grad, shape):
    return grad.sum_to_size(shape) / max(1, grad.numel() // max(1, torch.Size(shape).numel()))


BROKEN = {
    "unreduced": ops_with(reduce=lambda grad, shape: grad),
    "leading_dims_only": ops_with(reduce=leading_dims_only),
    "first_dim_only": ops_with(reduce=first_dim_only),
    "mean_not_sum": ops_with(reduce=mean_not_sum),
    "mul_swapped": ops_with(mul=lambda g, a, b: (g * a, g * b)),
    "div_wrong_sign": ops_with(div=lambda g, a, b: (g / b, g * a / (b * b))),
    "sub_like_add": ops_with(sub=lambda g, a, b: (g, g)),
}


@pytest.mark.suite_check
@pytest.mark.parametrize("name", BROKEN)
def test_broken_gradients_are_rejected(name):
    assert failing_checks(CHECKS, BROKEN[name])


@pytest.mark.suite_check
def test_reference_has_its_own_backward():
    """No torch op does the broadcasting or the reduction for the reference: sum_to_size, expand and torch's
    own +, -, *, / on tensors are absent; the forward and backward go through b01-04's ops."""
    import inspect

    from torchkata.tensors import elementwise_autograd as module

    source = inspect.getsource(module)
    for builtin in ("sum_to_size", ".expand(", "torch.add", "torch.mul", "torch.sub", "torch.div", "grad *", "* grad",
                    "grad /", "-grad"):
        assert builtin not in source, builtin
