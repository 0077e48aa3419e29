"""What the reduction exercises' graders share (a45: blocks folded by warp shuffles, m3-deep-2: by a shared-memory
tree): the checks of a sum of all elements against torch.sum in float64, within the error bound of a tree of the
kernels' shape (torchkata.extensions.reduce.error_bound), and the broken sums each grader must reject, among them
the kernels' algorithm written in torch with a wrong pairing."""
import numpy as np
import pytest
import torch

from torchkata.extensions.reduce import BLOCK, MAX_BLOCKS, error_bound

# around a warp (32), a block (256), the last size with one element a thread (2^18), and a grid-stride loop
SIZES = [0, 1, 31, 32, 33, 255, 256, 257, 1000, 4097, 70_000, (1 << 18) + 1, (1 << 19) + 3]
DTYPES = [torch.float32, torch.float64]
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
WARP = 32


def seeded(size, dtype, seed, device="cpu"):
    """Normal values around 1: a sum far from 0, so that an all-zero answer cannot pass, with both signs in it."""
    return (torch.randn(size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + 1).to(dtype).to(
        device)


def assert_sum_close(ours, x):
    """A 0-d tensor of x's dtype and device, within the tree's error bound of the exact sum (torch.sum in float64,
    whose own error is far below it), on a sum large enough to judge."""
    assert ours.shape == () and ours.dtype == x.dtype and ours.device == x.device
    exact = float(torch.sum(x.detach().double()))
    if x.numel() == 0:
        assert float(ours) == 0.0
        return
    bound = error_bound(x)
    assert abs(exact) > 100 * bound, "the sum is too small to judge"
    error = abs(float(ours) - exact)
    assert error <= bound, f"error {error:.3g} over the tree's bound {bound:.3g} (sum {exact:.6g}, n {x.numel()})"


def check_values(total):
    for device in DEVICES:
        for seed, size in enumerate(SIZES):
            for dtype in DTYPES:
                x = seeded(size, dtype, seed, device)
                ours = total(x)
                assert_sum_close(ours, x)
                if device == "cuda":  # the CPU twin adds in the CUDA kernels' order: the same bits
                    assert torch.equal(ours.cpu(), total(x.cpu()))


def check_long_sum_accuracy(total):
    """2^20 times 0.1 in float32: a loop adding one element after another is off by about 1% (its running sum's
    rounding grows with it); a tree stays within its bound."""
    for device in DEVICES:
        x = torch.full((1 << 20,), 0.1, device=device)
        assert_sum_close(total(x), x)


def check_shapes_and_strides(total):
    g = torch.Generator().manual_seed(3)
    for x in (torch.randn(33, 70, dtype=torch.float64, generator=g).t() + 1,  # transposed
              (torch.randn(4, 50, 30, generator=g) + 1)[:, ::3, 1::2],  # a strided slice
              (torch.randn(300, 1, generator=g) + 1).expand(300, 5),  # stride 0
              torch.tensor(2.5), torch.empty(0, 3)):  # 0-d, and empty with a shape
        before = x.clone()
        assert_sum_close(total(x), x)
        assert torch.equal(x, before), "the input was written to"


CHECKS = [check_values, check_long_sum_accuracy, check_shapes_and_strides]


def tree_emulation(fold_block):
    """The kernels' algorithm in torch: each of blocks * 256 lanes sums its grid-stride elements, each block folds
    its lanes with fold_block ([blocks, 256] -> [blocks]), a second one-block pass folds the partial sums."""

    def one_pass(values, blocks):
        lanes = blocks * BLOCK
        padded = torch.cat([values, values.new_zeros(-len(values) % lanes)])
        return fold_block(padded.reshape(-1, lanes).sum(0).reshape(blocks, BLOCK))

    def total(x, library_path=None):
        flat = x.reshape(-1)
        partial = one_pass(flat, min(max(-(-len(flat) // BLOCK), 1), MAX_BLOCKS))
        return one_pass(partial, 1)[0]

    return total


def fold(values, offsets):
    """Lane l adds lane l + offset for each offset in turn (__shfl_down_sync, or a shared-memory tree level); lane
    0's value."""
    values = values.clone()
    for offset in offsets:
        values[..., :offset] += values[..., offset:2 * offset]
    return values[..., 0]


def warp_shuffle_fold(offsets=(16, 8, 4, 2, 1)):
    """Each warp folds its 32 lanes, then the first warp folds the 8 warp sums padded with zeros to 32 lanes."""

    def fold_block(lanes):
        warp_sums = fold(lanes.reshape(len(lanes), BLOCK // WARP, WARP), offsets)
        return fold(torch.cat([warp_sums, warp_sums.new_zeros(len(lanes), WARP - BLOCK // WARP)], 1), offsets)

    return fold_block


def sequential_float32(x, library_path=None):
    """One running sum, element after element, in x's dtype (numpy's accumulate is a plain loop)."""
    return torch.tensor(np.add.accumulate(x.detach().reshape(-1).cpu().numpy())[-1] if x.numel() else 0.0,
                        dtype=x.dtype, device=x.device)


def shared_tree_fold(levels=(128, 64, 32, 16, 8, 4, 2, 1)):
    """The block's 256 sums halved in shared memory: thread t adds t + s for each level s."""
    return lambda lanes: fold(lanes, levels)


def broken_sums(total, wrong_pairings):
    """Mistakes around a correct sum `total(x)`, each of which the checks must reject, and the kernels' algorithm
    with each of `wrong_pairings` ({name: fold_block}) for a block's fold."""

    def first_block_only(x, library_path=None):  # no second pass: the first block's partial sum is the answer
        flat = x.reshape(-1)
        lanes = BLOCK * min(max(-(-len(flat) // BLOCK), 1), MAX_BLOCKS)
        positions = torch.arange(len(flat), device=x.device) % lanes
        return total(flat[positions < BLOCK])

    return {
        **{name: tree_emulation(fold_block) for name, fold_block in wrong_pairings.items()},
        "drops_partial_last_block": lambda x, library_path=None: total(x.reshape(-1)[:x.numel() // BLOCK * BLOCK]),
        "float64_through_float32": lambda x, library_path=None: total(x.float()).to(x.dtype),
        "sequential_float32": sequential_float32,
        "first_block_only": first_block_only,
    }


def assert_emulation_passes(fold_block):
    """The torch emulation with the right pairing passes the checks that the broken pairings fail: they fail for
    the pairing, not for the emulation."""
    emulation = tree_emulation(fold_block)
    for check in CHECKS:
        check(emulation)


@pytest.fixture(scope="module")
def reduce_ops(extension_library):
    from torchkata.extensions.reduce import ops

    return ops(str(extension_library("reduce")))
