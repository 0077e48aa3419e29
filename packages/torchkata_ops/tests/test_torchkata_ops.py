"""The tests of torchkata-ops, run against the installed package: `python -m pytest packages/torchkata_ops/tests` in an
environment where the wheel is installed (the a50 experiment makes a fresh one).

Every check takes the package's module, so the torchkata project grades its exercise a50, and a learner's version of
the module, with these same checks on its own builds of the kernels (tests/exercises/test_a50.py). Each op against
torch's own (torch.relu, F.grid_sample, sorted squared distances), values and gradients, with a relative tolerance on
answers large enough that an all-zero one fails; gradcheck in float64; empty, one-element and non-contiguous operands;
errors that name the problem; on CUDA tensors too where the library has its CUDA kernels.
"""
import pytest
import torch
import torch.nn.functional as F

# max |ours - torch| / max |torch|: a few roundings of sums and products, far from any real mistake
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-12}


def devices(ops) -> list[str]:
    return ["cpu", *(["cuda"] if torch.cuda.is_available() and ops.has_cuda() else [])]


def seeded(seed: int):
    return torch.Generator().manual_seed(seed)


def assert_close(ours, expected):
    """Shape, dtype, device, and values within the dtype's tolerance of an answer that is not all zeros."""
    assert ours.shape == expected.shape and ours.dtype == expected.dtype and ours.device == expected.device
    if expected.numel() == 0:
        return
    scale = float(expected.abs().max())
    tolerance = TOLERANCE[expected.dtype]
    assert scale > 100 * tolerance, "the answer is too small to judge"
    error = float((ours - expected).abs().max())
    assert error <= tolerance * scale, f"max error {error:.3g} against max |torch| {scale:.3g}"


def assert_gradient_close(ours, expected):
    """assert_close, and exactly zero where nothing flows back (an empty grid, no queries)."""
    if expected.numel() and not expected.any():
        assert torch.equal(ours, expected)
    else:
        assert_close(ours, expected)


def gradients(fn, inputs, weights):
    """d/d inputs of sum(fn(*inputs) * weights), zeros where an input does not reach the output."""
    leaves = [t.detach().clone().requires_grad_() for t in inputs]
    out = fn(*leaves)
    return torch.autograd.grad((out * weights).sum(), leaves, allow_unused=True, materialize_grads=True)


# -- ReLU (a43's kernels): no rounding, so the same bits as torch.relu, gradient included

def assert_same_bits(ours, expected):
    assert ours.shape == expected.shape and ours.dtype == expected.dtype and ours.device == expected.device
    assert torch.equal(ours.isnan(), expected.isnan())
    finite = ~expected.isnan()
    assert torch.equal(ours[finite], expected[finite])
    assert torch.equal(ours[finite].signbit(), expected[finite].signbit()), "the sign of zero differs"


def check_relu(ops):
    for device in devices(ops):
        for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
            for size in (0, 1, 257, 70_000):  # 70,000: past at::parallel_for's grain, so split over threads
                x = torch.randn(size, generator=seeded(size)).to(dtype).to(device)
                assert_same_bits(ops.relu(x), torch.relu(x))
            x = torch.tensor([-2.0, -0.0, 0.0, 1e-30, 3.0, float("nan"), float("inf"), -float("inf")], dtype=dtype,
                             device=device)
            assert_same_bits(ops.relu(x), torch.relu(x))
            weights = torch.arange(1.0, 9.0, dtype=dtype, device=device)
            assert_same_bits(gradients(ops.relu, [x], weights)[0], gradients(torch.relu, [x], weights)[0])


def check_relu_strides(ops):
    x = torch.randn(7, 33, dtype=torch.float64, generator=seeded(1)).t()  # transposed
    weights = torch.randn(33, 7, dtype=torch.float64, generator=seeded(2))
    assert_same_bits(ops.relu(x), torch.relu(x))
    assert_same_bits(gradients(ops.relu, [x], weights)[0], gradients(torch.relu, [x], weights)[0])


def check_relu_gradcheck(ops):
    x = torch.randn(3, 5, dtype=torch.float64, generator=seeded(3))
    x = x + 0.1 * x.sign()  # away from 0, where ReLU has no derivative
    assert torch.autograd.gradcheck(ops.relu, (x.requires_grad_(),))


# -- grid_sample (a47's kernels)

# (N, C, H, W, Ho, Wo): one pixel, an empty batch, an empty grid, odd sizes
GRID_CASES = [(1, 1, 1, 1, 3, 3), (0, 2, 3, 3, 2, 2), (1, 2, 5, 5, 0, 3), (3, 2, 7, 9, 5, 11)]


def sampling_operands(n, c, h, w, ho, wo, dtype, seed, device="cpu"):
    """An image, a grid with about a third of its points outside [-1, 1] (they read zeros), upstream weights."""
    g = seeded(seed)
    return (torch.randn(n, c, h, w, generator=g, dtype=dtype).to(device),
            (torch.rand(n, ho, wo, 2, generator=g, dtype=dtype) * 3 - 1.5).to(device),
            torch.randn(n, c, ho, wo, generator=g, dtype=dtype).to(device))


def native_grid_sample(image, grid, align_corners=False):
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=align_corners)


def check_grid_sample(ops):
    for device in devices(ops):
        for seed, case in enumerate(GRID_CASES):
            for dtype in TOLERANCE:
                for align_corners in (False, True):
                    image, grid, weights = sampling_operands(*case, dtype, seed, device)
                    assert_close(ops.grid_sample(image, grid, align_corners),
                                 native_grid_sample(image, grid, align_corners))
                    for ours, expected in zip(
                            gradients(lambda x, g: ops.grid_sample(x, g, align_corners), [image, grid], weights),
                            gradients(lambda x, g: native_grid_sample(x, g, align_corners), [image, grid], weights)):
                        assert_gradient_close(ours, expected)


def check_grid_sample_default_and_strides(ops):
    """align_corners defaults to False; a channels-last image and a sliced grid give torch's answer."""
    image, grid, _ = sampling_operands(2, 3, 8, 7, 10, 6, torch.float64, 5)
    image = image.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    grid = grid[:, ::2]
    assert_close(ops.grid_sample(image, grid), native_grid_sample(image, grid, False))


def check_grid_sample_gradcheck(ops):
    for align_corners in (False, True):
        image, grid, _ = sampling_operands(2, 2, 4, 5, 3, 2, torch.float64, 7 + align_corners)
        assert torch.autograd.gradcheck(lambda x, g: ops.grid_sample(x, g, align_corners),
                                        (image.requires_grad_(), grid.requires_grad_()))


# -- kNN (a46's kernel, with the backward of its distances written in PyTorch)

def native_knn(query, reference, k):
    """Every squared distance, sorted per row (stable: ties to the lower index), the first k; differentiable."""
    distances = ((query[:, None, :] - reference[None, :, :]) ** 2).sum(-1)
    distances, indices = distances.sort(dim=1, stable=True)
    return distances[:, :k], indices[:, :k]


# (N, M, D, k): one query, k = M, one dimension, no queries, many queries on few points (each point chosen by many)
KNN_CASES = [(1, 5, 3, 2), (6, 4, 2, 4), (9, 12, 1, 3), (0, 5, 3, 2), (40, 3, 3, 3), (70, 300, 3, 5)]


def check_knn(ops):
    for device in devices(ops):
        for seed, (n, m, d, k) in enumerate(KNN_CASES):
            for dtype in TOLERANCE:
                g = seeded(seed)
                query = torch.randn(n, d, generator=g, dtype=dtype).to(device)
                reference = torch.randn(m, d, generator=g, dtype=dtype).to(device)
                distances, indices = ops.knn(query, reference, k)
                expected_distances, expected_indices = native_knn(query, reference, k)
                assert_close(distances, expected_distances)
                assert indices.dtype == torch.int64 and torch.equal(indices, expected_indices)
                weights = torch.randn(n, k, generator=g, dtype=dtype).to(device)
                for ours, expected in zip(gradients(lambda q, r: ops.knn(q, r, k)[0], [query, reference], weights),
                                          gradients(lambda q, r: native_knn(q, r, k)[0], [query, reference], weights)):
                    assert_gradient_close(ours, expected)


def check_knn_ties_and_strides(ops):
    """Equal distances go to the lower index; a transposed reference gives the answer of its contiguous copy."""
    reference = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [3.0, 3.0]])
    distances, indices = ops.knn(torch.zeros(1, 2), reference, 4)
    assert torch.equal(indices, torch.tensor([[0, 1, 2, 3]])) and torch.equal(distances, torch.ones(1, 4))
    g = seeded(11)
    query, reference = torch.randn(5, 3, generator=g), torch.randn(3, 8, generator=g).t()
    for ours, expected in zip(ops.knn(query, reference, 3), ops.knn(query, reference.contiguous(), 3)):
        assert torch.equal(ours, expected)


def check_knn_gradcheck(ops):
    g = seeded(13)
    query = torch.randn(6, 3, generator=g, dtype=torch.float64)
    reference = torch.randn(5, 3, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda q, r: ops.knn(q, r, 3)[0],
                                    (query.requires_grad_(), reference.requires_grad_()))


# -- the three together

def check_second_derivative_raises(ops):
    """The backwards run kernels that record no graph: differentiating them again must fail, not be silently 0."""
    x = torch.randn(4, 3, dtype=torch.float64, generator=seeded(19), requires_grad=True)
    g = seeded(20)
    image, grid = torch.randn(1, 2, 3, 3, generator=g).requires_grad_(), (torch.rand(1, 2, 2, 2, generator=g) - 0.5)
    for out, leaf in ((ops.relu(x), x), (ops.grid_sample(image, grid.requires_grad_()), image),
                      (ops.knn(x, x.detach() + 1, 2)[0], x)):
        (grad,) = torch.autograd.grad((out ** 2).sum(), leaf, create_graph=True)
        with pytest.raises(RuntimeError, match="once_differentiable"):
            grad.sum().backward()


def check_raw_operators(ops):
    """operator(name) hands out the registered op itself (no autograd), and names one that is not there."""
    assert ops.operator("knn") is torch.ops.torchkata.knn
    with pytest.raises(RuntimeError, match="torchkata_ops: operator torchkata::no_such_op is not registered"):
        ops.operator("no_such_op")


def check_errors_name_the_problem(ops):
    image, grid = torch.randn(2, 3, 4, 5), torch.rand(2, 3, 3, 2)
    with pytest.raises(TypeError, match="relu: x must be a Tensor, got list"):
        ops.relu([1.0])
    with pytest.raises(RuntimeError, match="relu_forward: x must be float32 or float64, float16 or bfloat16, got Long"):
        ops.relu(torch.arange(3))
    with pytest.raises(TypeError, match="grid_sample: input must be a Tensor, got list"):
        ops.grid_sample([[0.0]], grid)
    with pytest.raises(TypeError, match="grid_sample: grid must be a Tensor, got list"):
        ops.grid_sample(image, [[0.0, 0.0]])
    with pytest.raises(TypeError, match="grid_sample: align_corners must be a bool, got int"):
        ops.grid_sample(image, grid, 1)
    with pytest.raises(RuntimeError, match=r"grid_sample: grid must be \[N, Ho, Wo, 2\], got shape \[2, 3, 3, 3\]"):
        ops.grid_sample(image, torch.rand(2, 3, 3, 3))
    query, reference = torch.randn(4, 3), torch.randn(5, 3)
    with pytest.raises(TypeError, match="knn: query must be a Tensor, got list"):
        ops.knn([[0.0]], reference, 1)
    with pytest.raises(TypeError, match="knn: reference must be a Tensor, got tuple"):
        ops.knn(query, (0.0,), 1)
    with pytest.raises(TypeError, match="knn: k must be an int, got bool"):
        ops.knn(query, reference, True)
    with pytest.raises(TypeError, match="knn: k must be an int, got float"):
        ops.knn(query, reference, 2.0)
    with pytest.raises(RuntimeError, match=r"knn: k \(6\) must be at most the number of reference points \(5\)"):
        ops.knn(query, reference, 6)
    with pytest.raises(RuntimeError, match="knn: query and reference must have one number of dims"):
        ops.knn(query, reference[:, :2], 1)


CHECKS = [check_relu, check_relu_strides, check_relu_gradcheck, check_grid_sample,
          check_grid_sample_default_and_strides, check_grid_sample_gradcheck, check_knn, check_knn_ties_and_strides,
          check_knn_gradcheck, check_second_derivative_raises, check_raw_operators, check_errors_name_the_problem]


# -- the installed package

@pytest.fixture(scope="module")
def ops():
    import torchkata_ops

    return torchkata_ops


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_ops(ops, check):
    check(ops)


def test_the_library_is_installed_with_the_package(ops):
    """The operators come from the package's own lib/, with its CUDA kernels exactly where torch can run them."""
    assert ops.LIBRARIES and all(path.parent.parent.samefile(ops.__path__[0]) for path in ops.LIBRARIES)
    assert ops.has_cuda() == (torch.version.cuda is not None and torch.cuda.is_available())
