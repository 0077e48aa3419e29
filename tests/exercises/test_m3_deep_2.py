"""m3-deep-2: the shared-memory tree sum, graded like a45's warp-shuffle sum by the shared machinery
(reduction_checks.py): against torch.sum in float64 within the error bound of a tree of the kernels' shape, over
sizes around a warp, a block and the grid-stride loop, empty and one-element inputs, float32 and float64, a long
float32 sum, non-contiguous and 0-d inputs, the errors, and on a GPU the CUDA half to the bit against the CPU twin
(whose order the CUDA kernel's warp-shuffle tail keeps). The suite checks that the tree with wrong levels, and other
broken sums, are rejected."""
import functools

import pytest
import torch

from grading import failing_checks
from kernel_source_checks import assert_no_aten_op
from reduction_checks import CHECKS as SHARED_CHECKS
from reduction_checks import assert_emulation_passes, broken_sums, reduce_ops, seeded, tree_emulation  # noqa: F401
from reduction_checks import shared_tree_fold
from torchkata.pipeline.catalog import ROOT

EXERCISE = "m3-deep-2"


@pytest.fixture(scope="module")
def shared_tree_sum(impl_for, extension_library):
    return functools.partial(impl_for(EXERCISE).shared_tree_sum, library_path=str(extension_library("reduce")))


def check_errors_name_the_problem(total):
    with pytest.raises(RuntimeError, match="shared_tree_sum: x must be float32 or float64, got Long"):
        total(torch.arange(3))
    with pytest.raises(RuntimeError, match="shared_tree_sum: x must be float32 or float64, got Half"):
        total(torch.ones(3, dtype=torch.float16))
    with pytest.raises(TypeError, match="shared_tree_sum: x must be a Tensor, got list"):
        total([1.0, 2.0])


CHECKS = [*SHARED_CHECKS, check_errors_name_the_problem]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_shared_tree_sum(shared_tree_sum, check):
    check(shared_tree_sum)


def test_cpu_twin_pairs_like_the_tree(reduce_ops):
    """The CPU twin adds in the CUDA kernel's order, so where every lane holds one element its float32 sum is the
    torch emulation of the tree's, bit for bit; the warp shuffles pair differently, and round differently."""
    differs = False
    for size in (1, 33, 1000, 70_000):
        x = seeded(size, torch.float32, size)
        assert torch.equal(reduce_ops.shared_tree_sum(x), tree_emulation(shared_tree_fold())(x))
        differs |= not torch.equal(reduce_ops.shared_tree_sum(x), reduce_ops.warp_sum(x))
    assert differs, "the tree and the warp shuffles add in different orders: some sum must differ in its last bits"


WRONG_PAIRINGS = {"tree_starts_at_level_64": shared_tree_fold((64, 32, 16, 8, 4, 2, 1)),
                  "tree_stops_before_level_1": shared_tree_fold((128, 64, 32, 16, 8, 4, 2)),
                  "last_warp_unrolled_from_16": shared_tree_fold((128, 64, 16, 8, 4, 2, 1))}


@pytest.mark.suite_check
@pytest.mark.parametrize("bug", list(broken_sums(None, WRONG_PAIRINGS)))
def test_broken_sum_is_rejected(bug, reduce_ops):
    assert failing_checks(SHARED_CHECKS, broken_sums(reduce_ops.shared_tree_sum, WRONG_PAIRINGS)[bug])


@pytest.mark.suite_check
def test_right_levels_pass():
    assert_emulation_passes(shared_tree_fold())


@pytest.mark.suite_check
def test_kernels_are_hand_written():
    """The kernels add elements themselves (no ATen, std, CUB or thrust reduction, no atomicAdd), with a
    shared-memory tree, barriers between its levels, and the last warp's levels by shuffles."""
    assert_no_aten_op(["csrc/reduce/reduce.cpp", "csrc/reduce/reduce_cuda.cu"],
                      ["at::sum", ".sum(", "at::cumsum", "at::mean", "std::accumulate", "std::reduce", "cub::",
                       "thrust::", "atomicAdd"])
    kernel = (ROOT / "csrc/reduce/reduce_cuda.cu").read_text()
    tree = kernel[kernel.index("shared_tree_kernel("):]
    assert "__shared__ T sums[kBlock]" in tree and "__syncthreads()" in tree and "warp_fold(" in tree
