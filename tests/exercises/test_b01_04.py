"""b01-04: elementwise ops without torch's built-in semantics (type promotion, broadcasting and allocation by
hand, torch's arithmetic only as a same-shape kernel), graded against torch's own ops."""
import types

import pytest
import torch

from grading import failing_checks

EXERCISE = "b01-04"
OPS = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "maximum": torch.maximum,
       "minimum": torch.minimum}
DTYPES = [torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float16, torch.bfloat16,
          torch.float32, torch.float64]
RTOL = {torch.float16: 1e-3, torch.bfloat16: 1e-2, torch.float32: 1e-6, torch.float64: 1e-12}
# pairs made broadcastable at negative dims: b is a[..., 0] put back at -1, -2 or -3
PAIRS = [((2, 3, 4), (2, 3, 1)), ((2, 3, 4), (2, 1, 4)), ((2, 3, 4), (1, 3, 4)), ((3, 4), (4,)), ((5,), ()),
         ((), (2, 3)), ((0, 3), (3,)), ((4, 1), (1, 5))]


@pytest.fixture(scope="module")
def impl(impl_for):
    return impl_for(EXERCISE)


def sample(shape, dtype):
    if dtype == torch.bool:
        return torch.rand(shape) > 0.5
    if dtype.is_floating_point:
        return (torch.randn(shape) * 3).to(dtype)
    return torch.randint(1, 50, shape).to(dtype)  # no zeros: integer division by them is not the point


def check_result_type_matches_torch(impl):
    for da in DTYPES:
        for db in DTYPES:
            for a_shape, b_shape in [((2,), (2,)), ((2,), ()), ((), (2,)), ((), ())]:
                a, b = sample(a_shape, da), sample(b_shape, db)
                assert impl.result_type(a, b) == torch.result_type(a, b), (da, a_shape, db, b_shape)
            for number in (True, 3, 2.5):
                assert impl.result_type(sample((2,), da), number) == torch.result_type(sample((2,), da), number)
                assert impl.result_type(number, sample((), da)) == torch.result_type(sample((), da), number)


def check_python_numbers_alone(impl):
    assert impl.result_type(3, 4.5) == torch.float32
    assert impl.result_type(3, True) == torch.int64
    assert impl.result_type(False, True) == torch.bool
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        assert impl.result_type(torch.tensor([1, 2]), 0.5) == torch.float64
        assert impl.div(torch.tensor([1, 2]), torch.tensor([2, 2])).dtype == torch.float64
    finally:
        torch.set_default_dtype(previous)


def check_ops_match_torch(impl):
    for name, op in OPS.items():
        for dtype in [torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.int64]:
            for a_shape, b_shape in PAIRS if dtype in (torch.float64, torch.int64) else PAIRS[::3]:
                a, b = sample(a_shape, dtype), sample(b_shape, dtype)
                for x, y in [(a, b), (b, a)]:
                    got, want = getattr(impl, name)(x, y), op(x, y)
                    assert got.dtype == want.dtype and got.shape == want.shape, (name, dtype, x.shape, y.shape)
                    rtol = RTOL.get(want.dtype, 0)
                    torch.testing.assert_close(got, want, rtol=rtol, atol=rtol)


def check_mixed_dtypes(impl):
    for name, op in OPS.items():
        for da, db in [(torch.int32, torch.float16), (torch.uint8, torch.int8), (torch.bool, torch.int64),
                       (torch.float32, torch.float64), (torch.bfloat16, torch.float16), (torch.int64, torch.bool)]:
            a, b = sample((3, 4), da), sample((4,), db)
            try:
                want = op(a, b)
            except RuntimeError:  # torch refuses to subtract bools; so must the kernel
                with pytest.raises(RuntimeError):
                    getattr(impl, name)(a, b)
                continue
            got = getattr(impl, name)(a, b)
            assert got.dtype == want.dtype, (name, da, db, got.dtype, want.dtype)
            torch.testing.assert_close(got, want, rtol=RTOL.get(want.dtype, 0), atol=RTOL.get(want.dtype, 0))


def check_zero_dim_and_numbers(impl):
    x = torch.randn(3, 4)
    for name, op in OPS.items():
        for other in [torch.tensor(2.5, dtype=torch.float64), torch.tensor(3), torch.tensor(True)]:
            if name == "sub" and other.dtype == torch.bool:
                continue  # refused, see check_bool_subtraction
            got, want = getattr(impl, name)(x, other), op(x, other)
            assert got.dtype == want.dtype == torch.float32
            torch.testing.assert_close(got, want)
    ints = torch.arange(1, 7).view(2, 3).to(torch.int32)
    for name in ("add", "sub", "mul", "div"):
        for number in (2, 2.5, True)[: 2 if name == "sub" else 3]:
            got, want = getattr(impl, name)(ints, number), getattr(torch, name)(ints, number)
            assert got.dtype == want.dtype, (name, number, got.dtype)
            torch.testing.assert_close(got, want)
    torch.testing.assert_close(impl.sub(10, ints), 10 - ints)
    # a number the tensor's dtype cannot hold wraps (integers) or rounds to inf (floats), as in torch
    small = torch.arange(1, 4, dtype=torch.uint8)
    torch.testing.assert_close(impl.add(small, 1000), small + 1000)
    torch.testing.assert_close(impl.mul(small.to(torch.int8), 300), small.to(torch.int8) * 300)
    halves, doubles = torch.ones(2, dtype=torch.float16), torch.zeros(2, dtype=torch.float64)
    torch.testing.assert_close(impl.add(halves, 1e6), halves + 1e6)
    # 0.1 as a double, not a float32 rounded
    torch.testing.assert_close(impl.add(doubles, 0.1), torch.full((2,), 0.1, dtype=torch.float64), rtol=0, atol=0)
    torch.testing.assert_close(impl.div(1.0, x), 1.0 / x)


def check_bool_subtraction(impl):
    # torch refuses any bool operand, even where promotion would make it an integer
    for a, b in [(torch.ones(2, dtype=torch.bool), torch.ones(2, dtype=torch.bool)), (torch.ones(2), True),
                 (torch.ones(2, dtype=torch.bool), 1), (torch.arange(2), torch.tensor(True)), (False, torch.ones(2))]:
        with pytest.raises(RuntimeError, match="bool"):
            impl.sub(a, b)


def check_true_division(impl):
    a, b = torch.tensor([7, -7, 1]), torch.tensor([2, 2, 3])
    got = impl.div(a, b)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, torch.tensor([3.5, -3.5, 1 / 3]))
    assert impl.div(torch.tensor([True]), torch.tensor([True])).dtype == torch.float32
    assert impl.div(torch.ones(2, dtype=torch.float64), torch.ones(2, dtype=torch.int64)).dtype == torch.float64
    assert impl.div(torch.ones(2, dtype=torch.float16), 2).dtype == torch.float16


def check_non_contiguous(impl):
    a = torch.randn(6, 8, dtype=torch.float64)[::2, 1::2].transpose(-1, -2)  # (4, 3), strides (2, 16)
    b = torch.randn(3, 5, dtype=torch.float64)[:, 2]  # (3,), stride 5, offset 2
    for name, op in OPS.items():
        torch.testing.assert_close(getattr(impl, name)(a, b), op(a, b), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(getattr(impl, name)(b.unsqueeze(-1), a.T), op(b.unsqueeze(-1), a.T))


def check_kernel_sees_one_shape(impl):
    """The rule of the exercise: the kernel is handed operands of the result's shape and dtype, and the output."""
    seen = []

    def spy(a, b, out):
        seen.append((a.shape, b.shape, out.shape, a.dtype, b.dtype, out.dtype))
        return torch.add(a, b, out=out)

    got = impl.binary(spy, torch.arange(3, dtype=torch.int32).view(3, 1), torch.ones(4, dtype=torch.float16))
    assert seen == [((3, 4), (3, 4), (3, 4), torch.float16, torch.float16, torch.float16)], seen
    torch.testing.assert_close(got, torch.arange(3).view(3, 1) + torch.ones(4, dtype=torch.float16))
    seen.clear()
    impl.binary(spy, 2, torch.ones(2, 2, dtype=torch.float64), torch.float32)  # an explicit dtype wins
    assert seen == [((2, 2), (2, 2), (2, 2), torch.float32, torch.float32, torch.float32)], seen


def check_result_is_new(impl):
    a, b = torch.randn(3, 4), torch.randn(3, 4)
    a0, b0 = a.clone(), b.clone()
    out = impl.add(a, b)
    assert out.data_ptr() not in (a.data_ptr(), b.data_ptr())
    assert torch.equal(a, a0) and torch.equal(b, b0)


def check_errors(impl):
    for name in OPS:
        with pytest.raises(RuntimeError) as error:
            getattr(impl, name)(torch.randn(2, 3), torch.randn(4))
        assert "(2, 3)" in str(error.value) and "(4,)" in str(error.value), str(error.value)
    with pytest.raises(TypeError, match="complex"):
        impl.add(torch.randn(2, dtype=torch.complex64), torch.randn(2))
    with pytest.raises(TypeError):
        impl.add(torch.randn(2), "3")


CHECKS = [check_result_type_matches_torch, check_python_numbers_alone, check_ops_match_torch, check_mixed_dtypes,
          check_zero_dim_and_numbers, check_bool_subtraction, check_true_division, check_non_contiguous,
          check_kernel_sees_one_shape, check_result_is_new, check_errors]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_elementwise(impl, check):
    check(impl)


# --- broken versions the checks must reject -------------------------------------------------------------------

def reference():
    from torchkata.tensors import elementwise

    return elementwise


def promote_everything(a, b):
    """Ignores the priority of tensors with dims over 0-d tensors and numbers: float32 + 0-d float64 gives float64."""
    dtypes = [x.dtype if isinstance(x, torch.Tensor) else reference().scalar_dtype(x) for x in (a, b)]
    return torch.promote_types(*dtypes)


def floor_div(a, b):
    return torch.div(a, b, rounding_mode="floor") if not torch.is_floating_point(torch.as_tensor(a)) else a / b


def torch_broadcasts(kernel, a, b, dtype=None):
    """Leaves the broadcasting and the promotion to the kernel."""
    return kernel(torch.as_tensor(a), torch.as_tensor(b))


def broken(**parts):
    ref = reference()
    names = ("result_type", "scalar_dtype", "binary", *OPS)
    module = types.SimpleNamespace(**{name: getattr(ref, name) for name in names} | parts)
    if "result_type" in parts:  # the ops then promote with the broken rule
        for name, kernel in OPS.items():
            setattr(module, name, lambda a, b, kernel=kernel: ref.binary(kernel, a, b, parts["result_type"](a, b)))
    return module


BROKEN = {
    "promote_everything": broken(result_type=promote_everything),
    "floor_div": broken(div=floor_div),
    "torch_broadcasts": broken(binary=torch_broadcasts),
    "maximum_is_minimum": broken(maximum=lambda a, b: reference().minimum(a, b)),
    "sub_reversed": broken(sub=lambda a, b: reference().sub(b, a)),
}


@pytest.mark.suite_check
@pytest.mark.parametrize("name", BROKEN)
def test_broken_elementwise_is_rejected(name):
    assert failing_checks(CHECKS, BROKEN[name])


@pytest.mark.suite_check
def test_reference_leaves_torch_only_the_kernel():
    """No torch promotion or broadcasting in the reference; every kernel call writes into `out=`."""
    import inspect

    from torchkata.tensors import elementwise as module

    source = inspect.getsource(module)
    for builtin in ("torch.result_type", "torch.can_cast", "torch.broadcast", ".expand(", "sum_to_size"):
        assert builtin not in source, builtin
    assert "kernel(a, b, out=out)" in source
