"""m1-deep-2: a mini autograd engine with reverse mode (vjp) and forward mode (jvp), graded against torch.func.vjp
and torch.func.jvp op by op and on randomly composed programs (hypothesis), and against finite differences."""
import inspect
import types

import pytest
import torch
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from grading import failing_checks

EXERCISE = "m1-deep-2"
F64 = torch.float64
PROPERTY = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                    phases=(Phase.explicit, Phase.generate))


@pytest.fixture(scope="module")
def engine(impl_for):
    return impl_for(EXERCISE)


def randn(*shape, dtype=F64, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def both_modes(engine, f_engine, f_torch, primals, seed=1):
    """Compare output, vjp and jvp of the engine with torch.func for one function and random (co)tangents."""
    dtype = primals[0].dtype
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == F64 else dict(rtol=1e-5, atol=1e-5)
    out, vjp_fn = engine.vjp(f_engine, *primals)
    want, want_vjp_fn = torch.func.vjp(f_torch, *primals)
    torch.testing.assert_close(out, want, **tol)
    cotangent = randn(*want.shape, dtype=dtype, seed=seed)
    for got, expected in zip(vjp_fn(cotangent), want_vjp_fn(cotangent), strict=True):
        assert got.shape == expected.shape and got.dtype == expected.dtype, (got.shape, expected.shape)
        torch.testing.assert_close(got, expected, **tol)
    tangents = tuple(randn(*p.shape, dtype=dtype, seed=seed + 1 + i) for i, p in enumerate(primals))
    out, tangent = engine.jvp(f_engine, primals, tangents)
    want, want_tangent = torch.func.jvp(f_torch, primals, tangents)
    torch.testing.assert_close(out, want, **tol)
    assert tangent.shape == want_tangent.shape, (tangent.shape, want_tangent.shape)
    torch.testing.assert_close(tangent, want_tangent, **tol)


UNARY = ["exp", "log", "tanh", "sin"]


def check_unary_ops(engine):
    for name in UNARY:
        for shape in [(3, 5), (7,), (), (0, 4)]:
            x = randn(*shape).abs() + 0.1 if name == "log" else randn(*shape)
            both_modes(engine, getattr(engine, name), getattr(torch, name), (x,))
    x = randn(2, 3, dtype=torch.float32).abs() + 0.5
    for name in UNARY:
        both_modes(engine, getattr(engine, name), getattr(torch, name), (x,))


BROADCAST_PAIRS = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 4), (3, 1)), ((4,), (3, 4)), ((3, 1), (1, 4)),
                   ((2, 3, 4), (3, 1)), ((3, 4), ()), ((), (2, 5)), ((0, 4), (4,)), ((1, 4), (0, 4)), ((2, 3), (1, 3))]


def check_add_mul_broadcast(engine):
    for a_shape, b_shape in BROADCAST_PAIRS:
        a, b = randn(*a_shape, seed=2), randn(*b_shape, seed=3)
        both_modes(engine, engine.add, torch.add, (a, b))
        both_modes(engine, engine.mul, torch.mul, (a, b))
        both_modes(engine, lambda x, y: x * y + x, lambda x, y: x * y + x, (a, b))
        both_modes(engine, lambda x, y: x - y, lambda x, y: x - y, (a, b))


def check_broadcast_gradient_is_reduced(engine):
    # the bias's gradient of x + b: the cotangent summed over the rows it was copied to
    x, b = randn(3, 4), randn(4)
    _, vjp_fn = engine.vjp(engine.add, x, b)
    g = randn(3, 4, seed=5)
    gx, gb = vjp_fn(g)
    torch.testing.assert_close(gb, g.sum(0))
    _, vjp_fn = engine.vjp(engine.mul, randn(3, 1), randn(1, 4))
    assert [t.shape for t in vjp_fn(g)] == [(3, 1), (1, 4)]


def check_matmul(engine):
    for a_shape, b_shape in [((3, 4), (4, 2)), ((1, 5), (5, 1)), ((4, 4), (4, 4)), ((0, 3), (3, 2)), ((2, 0), (0, 3)),
                             ((1, 300), (300, 2))]:
        both_modes(engine, engine.matmul, torch.matmul, (randn(*a_shape, seed=6), randn(*b_shape, seed=7)))
    both_modes(engine, lambda a, b: a @ b, lambda a, b: a @ b, (randn(3, 4, dtype=torch.float32),
                                                              randn(4, 2, dtype=torch.float32)))


def check_sum(engine):
    for shape in [(3, 4), (2, 3, 4), (5,), ()]:
        x = randn(*shape)
        both_modes(engine, lambda v: v.sum(), lambda v: v.sum(), (x,))
        both_modes(engine, engine.sum_, torch.sum, (x,))
        for dim in range(-max(len(shape), 1), max(len(shape), 1)):
            for keepdim in (False, True):
                both_modes(engine, lambda v: v.sum(dim, keepdim=keepdim), lambda v: v.sum(dim, keepdim=keepdim), (x,))
                both_modes(engine, lambda v: v.sum(dim, keepdim), lambda v: v.sum(dim, keepdim), (x,))
    x = randn(3, 4)
    both_modes(engine, lambda v: v.sum(1), lambda v: v.sum(1), (x,))  # keepdim defaults to False
    both_modes(engine, lambda v: engine.sum_(v, 0), lambda v: v.sum(0), (x,))


def check_fan_out_accumulates(engine):
    # x used three times: its cotangent is the sum of the three shares
    f = lambda x, w: engine.tanh(x @ w) * (x @ w) + engine.sin(x).sum(0, keepdim=True) @ w  # noqa: E731
    g = lambda x, w: torch.tanh(x @ w) * (x @ w) + torch.sin(x).sum(0, keepdim=True) @ w  # noqa: E731
    both_modes(engine, f, g, (randn(3, 4), randn(4, 2, seed=1)))
    both_modes(engine, lambda x: x * x * x, lambda x: x * x * x, (randn(5),))


def check_constants(engine):
    w, c = randn(2, 3, seed=8), randn(3, seed=9)
    f = lambda x: 2.0 * (1.0 - x) * c + engine.exp(-x) + (w @ x).sum(0) * 3  # noqa: E731
    g = lambda x: 2.0 * (1.0 - x) * c + torch.exp(-x) + (w @ x).sum(0) * 3  # noqa: E731
    both_modes(engine, f, g, (randn(3, 3),))
    both_modes(engine, lambda x: x @ w.T - 1, lambda x: x @ w.T - 1, (randn(4, 3),))
    w32 = w.T.float()  # a tensor constant takes the Var's dtype
    both_modes(engine, lambda x: x @ w32, lambda x: x @ w32.double(), (randn(4, 3),))


def programs():
    """A random program over a (4, 4) input and one or two broadcastable ones: a list of (op, operand, operand)."""
    shapes = st.lists(st.sampled_from([(4, 4), (1, 4), (4,), (4, 1), ()]), min_size=1, max_size=2)
    step = st.tuples(st.sampled_from(["exp", "log", "tanh", "sin", "neg", "add", "mul", "sub", "matmul", "sum0",
                                      "sum1"]), st.integers(0, 20), st.integers(0, 20))
    final = st.sampled_from(["none", "all", "dim0", "dim-1"])
    return st.tuples(shapes, st.lists(step, min_size=1, max_size=8), final, st.integers(0, 2**16))


def run_program(m, inputs, steps, final):
    """Evaluate the program with module m's ops (the engine, or torch for the reference)."""
    pool = list(inputs)
    for op, i, j in steps:
        a, b = pool[i % len(pool)], pool[j % len(pool)]
        if op == "matmul":
            compatible = a.shape[-1:] == b.shape[:1] and len(a.shape) == len(b.shape) == 2
            value = a @ b if compatible else a + b
        elif op in ("add", "mul", "sub"):
            value = {"add": a + b, "mul": a * b, "sub": a - b}[op]
        elif op.startswith("sum"):
            value = a.sum(int(op[3:]) - 1, keepdim=True) if len(a.shape) else a
        else:
            value = {"exp": lambda v: m.exp(m.sin(v)), "log": lambda v: m.log(v * v + 1.0), "tanh": m.tanh,
                     "sin": m.sin, "neg": lambda v: -v}[op](a)
        pool.append(value)
    out = pool[-1]
    if final == "all":
        return out.sum()
    if final.startswith("dim") and len(out.shape):
        return out.sum(int(final[3:]))
    return out


def program_inputs(shapes, seed):
    return [randn(*s, seed=seed + k) * 0.7 for k, s in enumerate([(4, 4), *shapes])]


def check_random_programs_vjp_and_jvp(engine):
    @PROPERTY
    @given(programs())
    def agrees(program):
        shapes, steps, final, seed = program
        both_modes(engine, lambda *xs: run_program(engine, xs, steps, final),
                   lambda *xs: run_program(torch, xs, steps, final), tuple(program_inputs(shapes, seed)), seed=seed)
    agrees()


def check_finite_differences(engine):
    # central differences of the function itself, and the adjoint identity <u, J v> = <Jᵀ u, v> tying both modes
    f = lambda x, w: engine.log(engine.exp(engine.tanh(x @ w)) + 1.0) * engine.sin(x @ w)  # noqa: E731
    x, w, eps = randn(3, 4), randn(4, 2, seed=1), 1e-6
    v = (randn(3, 4, seed=2), randn(4, 2, seed=3))
    out, tangent = engine.jvp(f, (x, w), v)
    plus, minus = engine.vjp(f, x + eps * v[0], w + eps * v[1])[0], engine.vjp(f, x - eps * v[0], w - eps * v[1])[0]
    torch.testing.assert_close(tangent, (plus - minus) / (2 * eps), rtol=1e-6, atol=1e-8)
    u = randn(*out.shape, seed=4)
    grads = engine.vjp(f, x, w)[1](u)
    torch.testing.assert_close((u * tangent).sum(), sum((g * t).sum() for g, t in zip(grads, v)), rtol=1e-12, atol=0)


def check_unused_inputs_and_identity(engine):
    x, y = randn(3), randn(2, 2)
    out, vjp_fn = engine.vjp(lambda a, b: a.sum(), x, y)
    gx, gy = vjp_fn(torch.tensor(2.0, dtype=F64))
    torch.testing.assert_close(gx, torch.full((3,), 2.0, dtype=F64))
    assert torch.equal(gy, torch.zeros(2, 2, dtype=F64))
    _, tangent = engine.jvp(lambda a, b: b * 2.0, (x, y), (randn(3, seed=1), torch.zeros(2, 2, dtype=F64)))
    assert torch.equal(tangent, torch.zeros(2, 2, dtype=F64))
    _, tangent = engine.jvp(lambda a, b: a.sum() + 1.0, (x, y), (randn(3, seed=1), randn(2, 2, seed=2)))
    torch.testing.assert_close(tangent, randn(3, seed=1).sum())
    cotangent = randn(3, seed=3)
    (g,) = engine.vjp(lambda a: a, x)[1](cotangent)
    assert torch.equal(g, cotangent)
    g += 1  # the caller's cotangent must not come back as the gradient itself
    assert torch.equal(cotangent, randn(3, seed=3))
    tangent_in = randn(3, seed=4)
    _, tangent = engine.jvp(lambda a: a, (x,), (tangent_in,))
    tangent += 1
    assert torch.equal(tangent_in, randn(3, seed=4))


def check_vjp_fn_reusable_and_inputs_untouched(engine):
    x, w = randn(3, 4), randn(4, 2, seed=1)
    x0, w0 = x.clone(), w.clone()
    _, vjp_fn = engine.vjp(lambda a, b: engine.tanh(a @ b), x, w)
    u = randn(3, 2, seed=2)
    first = vjp_fn(u)
    second = vjp_fn(u * 2)
    for a, b in zip(first, second):
        torch.testing.assert_close(b, 2 * a)
    assert torch.equal(x, x0) and torch.equal(w, w0)
    assert not x.requires_grad and x.grad is None


def check_without_torch_autograd(engine):
    # the engine does its own differentiation: it must work where torch's autograd cannot record anything
    x, w = randn(3, 4), randn(4, 2, seed=1)
    want = torch.func.vjp(lambda a, b: torch.tanh(a @ b).sum(), x, w)[1](torch.tensor(1.0, dtype=F64))
    with torch.inference_mode():
        _, vjp_fn = engine.vjp(lambda a, b: engine.tanh(a @ b).sum(), x, w)
        got = vjp_fn(torch.tensor(1.0, dtype=F64))
        _, tangent = engine.jvp(lambda a: engine.exp(a).sum(), (x,), (torch.ones(3, 4, dtype=F64),))
    for g, e in zip(got, want):
        torch.testing.assert_close(g, e)
    torch.testing.assert_close(tangent, x.exp().sum())


def check_deep_graph(engine):
    # 1200 nodes in a chain: the reverse pass must not recurse once per node (Python stops at 1000 frames)
    def f(x):
        for _ in range(400):
            x = engine.sin(x) * 0.999 + 0.001
        return x
    x = torch.tensor([0.3, -0.2], dtype=F64)
    _, vjp_fn = engine.vjp(f, x)
    (g,) = vjp_fn(torch.ones(2, dtype=F64))
    _, tangent = engine.jvp(f, (x,), (torch.ones(2, dtype=F64),))
    torch.testing.assert_close(g, tangent)
    assert torch.isfinite(g).all() and (g > 0).all()


def check_errors_name_the_problem(engine):
    x, w = randn(3, 4), randn(4, 2)
    _, vjp_fn = engine.vjp(lambda a: a @ w, x)
    for wrong in (randn(2, 3), randn(3, 3), randn(3, 2, 1)):
        with pytest.raises(ValueError, match=r"\(3, 2\)"):
            vjp_fn(wrong)
    with pytest.raises(ValueError, match="list"):
        vjp_fn([1.0])
    for wrong in (randn(4, 3), randn(2, 4)):
        with pytest.raises(ValueError, match="tangent"):
            engine.jvp(lambda a: a.sum(), (x,), (wrong,))
    with pytest.raises(ValueError, match="list"):
        engine.jvp(lambda a: a.sum(), (x,), ([1.0],))
    with pytest.raises(ValueError, match="2 primals but 1 tangents"):
        engine.jvp(lambda a, b: a.sum(), (x, x), (randn(3, 4),))
    with pytest.raises(ValueError, match="1 primals but 2 tangents"):
        engine.jvp(lambda a: a.sum(), (x,), (randn(3, 4), randn(3, 4)))
    with pytest.raises(TypeError, match="int64"):
        engine.vjp(lambda a: a.sum(), torch.arange(3))
    with pytest.raises(TypeError, match="int64"):
        engine.jvp(lambda a: a.sum(), (torch.arange(3),), (torch.arange(3),))
    with pytest.raises(ValueError, match=r"\(3, 4\) and \(3,\)"):
        engine.vjp(lambda a: a + engine.Var(randn(3)), x)
    with pytest.raises(ValueError, match=r"\(3, 4\) and \(3,\)"):
        engine.vjp(lambda a: a * engine.Var(randn(3)), x)
    with pytest.raises(ValueError, match=r"\(3, 4\) and \(3, 4\)"):
        engine.vjp(lambda a: a @ a, x)
    with pytest.raises(ValueError, match=r"2-D.*\(4,\)"):
        engine.vjp(lambda a: a @ engine.Var(randn(4)), x)
    for a, b in ((randn(4), randn(4, 2)), (randn(2, 3, 4), randn(4, 2)), (randn(3, 4), randn(2, 4, 2))):
        with pytest.raises(ValueError, match="2-D"):
            engine.vjp(lambda u, v: u @ v, a, b)
    with pytest.raises(ValueError, match=r"\(3, 2\) and \(4, 2\)"):
        engine.vjp(lambda u, v: u @ v, randn(3, 2), randn(4, 2))
    with pytest.raises(TypeError, match="float32"):
        engine.vjp(lambda a: a * engine.Var(randn(3, 4, dtype=torch.float32)), x)
    with pytest.raises(TypeError, match="float32"):
        engine.vjp(lambda a: a @ engine.Var(randn(4, 2, dtype=torch.float32)), x)
    with pytest.raises(TypeError, match="Tensor"):
        engine.vjp(lambda a: a.data.sum(), x)
    with pytest.raises(TypeError, match="str"):
        engine.vjp(lambda a: a * "2", x)
    with pytest.raises(ValueError, match="at least one"):
        engine.vjp(lambda: engine.Var(x))
    with pytest.raises(ValueError, match="at least one"):
        engine.jvp(lambda: engine.Var(x), (), ())


CHECKS = [check_unary_ops, check_add_mul_broadcast, check_broadcast_gradient_is_reduced, check_matmul, check_sum,
          check_fan_out_accumulates, check_constants, check_random_programs_vjp_and_jvp, check_finite_differences,
          check_unused_inputs_and_identity, check_vjp_fn_reusable_and_inputs_untouched, check_without_torch_autograd,
          check_deep_graph, check_errors_name_the_problem]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_engine(engine, check):
    check(engine)


def reference_with(old: str, new: str) -> types.ModuleType:
    """The reference engine with one deliberate mistake: `old` replaced by `new` in its source."""
    from torchkata.autograd import engine as module

    source = inspect.getsource(module)
    assert source.count(old) == 1, old
    broken = types.ModuleType("broken_engine")
    exec(compile(source.replace(old, new), "broken_engine", "exec"), broken.__dict__)
    return broken


BROKEN = {  # name: (text in the reference, its replacement, the check that must reject it)
    "bias_gradient_not_reduced": ("lambda g: unbroadcast(g, b.shape), lambda t: t.expand(shape)",
                                  "lambda g: g, lambda t: t.expand(shape)", "check_broadcast_gradient_is_reduced"),
    "matmul_missing_transpose": ("lambda g: g @ b.data.T", "lambda g: g @ b.data", "check_matmul"),
    "tanh_slope_wrong": ("slope = 1 - y * y", "slope = 1 - y", "check_unary_ops"),
    "fan_out_overwrites": ("share if id(parent) not in grads else grads[id(parent)] + share", "share",
                           "check_fan_out_accumulates"),
    "jvp_keeps_first_input_only": ("for x, _, jvp_i in inputs if", "for x, _, jvp_i in inputs[:1] if",
                                   "check_add_mul_broadcast"),
    "sum_dim_vjp_no_unsqueeze": ("g.unsqueeze(dim)", "g", "check_sum"),
    "log_jvp_wrong": ("lambda t: t / a.data", "lambda t: t * a.data", "check_random_programs_vjp_and_jvp"),
}


@pytest.mark.suite_check
@pytest.mark.parametrize("name", BROKEN)
def test_broken_engine_is_rejected(name):
    old, new, rejected_by = BROKEN[name]
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], reference_with(old, new)) == [rejected_by]


@pytest.mark.suite_check
def test_reference_does_not_use_torch_autograd():
    from torchkata.autograd import engine as module

    source = inspect.getsource(module)
    for builtin in ("torch.autograd", "torch.func", "functorch", "requires_grad", ".backward(", ".grad", "_fwd_grad"):
        assert builtin not in source, builtin
