"""a45: the warp-shuffle sum, graded against torch.sum in float64 within the error bound of a tree of the kernels'
shape: seeded trials of sizes around a warp, a block and the grid-stride loop, empty and one-element inputs,
float32 and float64, a long float32 sum on which a plain loop is 1% off, non-contiguous and 0-d inputs, the errors,
and on a GPU the CUDA half, to the bit against the CPU twin. The suite checks that the kernels' algorithm with a
wrong shuffle pairing, and other broken sums, are rejected. The machinery is shared with m3-deep-2
(reduction_checks.py)."""
import functools

import pytest
import torch

from grading import failing_checks
from kernel_source_checks import assert_no_aten_op
from torchkata.pipeline.catalog import ROOT
from reduction_checks import CHECKS as SHARED_CHECKS
from reduction_checks import assert_emulation_passes, broken_sums, reduce_ops, seeded, tree_emulation  # noqa: F401
from reduction_checks import warp_shuffle_fold

EXERCISE = "a45"


@pytest.fixture(scope="module")
def warp_sum(impl_for, extension_library):
    return functools.partial(impl_for(EXERCISE).warp_sum, library_path=str(extension_library("reduce")))


def check_errors_name_the_problem(total):
    with pytest.raises(RuntimeError, match="warp_sum: x must be float32 or float64, got Long"):
        total(torch.arange(3))
    with pytest.raises(RuntimeError, match="warp_sum: x must be float32 or float64, got Half"):
        total(torch.ones(3, dtype=torch.float16))
    with pytest.raises(TypeError, match="warp_sum: x must be a Tensor, got list"):
        total([1.0, 2.0])


CHECKS = [*SHARED_CHECKS, check_errors_name_the_problem]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_warp_sum(warp_sum, check):
    check(warp_sum)


def test_cpu_twin_pairs_like_the_shuffles(reduce_ops):
    """The CPU twin adds in the CUDA kernel's order, so where every lane holds one element its float32 sum is the
    torch emulation of the shuffles', bit for bit (the emulation's lane sums are exact there)."""
    for size in (1, 33, 1000, 70_000):
        x = seeded(size, torch.float32, size)
        assert torch.equal(reduce_ops.warp_sum(x), tree_emulation(warp_shuffle_fold())(x))


def test_op_reports_its_cuda_half(reduce_ops):
    assert reduce_ops.reduce_has_cuda() == (torch.version.cuda is not None and torch.cuda.is_available())


WRONG_PAIRINGS = {"wrong_pairing_starts_at_offset_8": warp_shuffle_fold((8, 4, 2, 1)),
                  "wrong_pairing_stops_at_offset_2": warp_shuffle_fold((16, 8, 4, 2))}


@pytest.mark.suite_check
@pytest.mark.parametrize("bug", list(broken_sums(None, WRONG_PAIRINGS)))
def test_broken_sum_is_rejected(bug, reduce_ops):
    assert failing_checks(SHARED_CHECKS, broken_sums(reduce_ops.warp_sum, WRONG_PAIRINGS)[bug])


@pytest.mark.suite_check
def test_right_pairing_passes():
    assert_emulation_passes(warp_shuffle_fold())


@pytest.mark.suite_check
def test_kernels_are_hand_written():
    """The kernels add elements themselves: no ATen reduction and no CUB/thrust one does the sum."""
    assert_no_aten_op(["csrc/reduce/reduce.cpp", "csrc/reduce/reduce_cuda.cu"],
                      ["at::sum", ".sum(", "at::cumsum", "at::mean", "std::accumulate", "std::reduce", "cub::",
                       "thrust::", "atomicAdd"])
    assert "__shfl_down_sync" in (ROOT / "csrc/reduce/reduce_cuda.cu").read_text()
