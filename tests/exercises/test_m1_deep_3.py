"""m1-deep-3: gradient checkpointing. A checkpointed segment gives the values and gradients of the plain one
(float64, with dropout drawing the same masks), saves only its input, splits a Sequential as asked, and cuts the
activation memory of a deep network by more than half; the saved-tensor byte count is checked on known graphs."""
import types

import pytest
import torch
from torch import nn
from torch.utils import checkpoint as torch_checkpoint

from grading import failing_checks

EXERCISE = "m1-deep-3"
DTYPE = torch.float64


@pytest.fixture(scope="module")
def ckpt(impl_for):
    return impl_for(EXERCISE)


def blocks_of(widths, dropout=0.0):
    torch.manual_seed(0)
    return nn.Sequential(*[nn.Sequential(nn.Linear(a, b, dtype=DTYPE), nn.Tanh(), nn.Dropout(dropout))
                           for a, b in zip(widths, widths[1:])])


def value_and_grads(forward, model, x, seed=0):
    """forward(x), and the gradients of a fixed function of it into x (if it requires one) and every parameter."""
    torch.manual_seed(seed)
    x = x.detach().clone().requires_grad_(x.requires_grad)
    out = forward(x)
    model.zero_grad(set_to_none=True)
    (out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).sum().backward()
    grads = [x.grad] if x.requires_grad else []
    return out.detach(), grads + [p.grad for p in model.parameters()]


def assert_same(got, want):
    torch.testing.assert_close(got[0], want[0], rtol=1e-12, atol=1e-14)
    assert len(got[1]) == len(want[1])
    for g, w in zip(got[1], want[1]):
        if w is None:
            assert g is None
        else:
            torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-14)


def check_checkpoint_matches_plain(ckpt):
    segment = blocks_of([5, 6, 4])
    x = torch.randn(7, 5, dtype=DTYPE, requires_grad=True)
    assert_same(value_and_grads(lambda x: ckpt.checkpoint(segment, x), segment, x),
                value_and_grads(segment, segment, x))
    out = ckpt.checkpoint(segment, x)
    assert isinstance(out.grad_fn, torch.autograd.function.BackwardCFunction), type(out.grad_fn).__name__


def check_saves_only_the_input(ckpt):
    segment = blocks_of([5, 6, 6, 4])
    x = torch.randn(7, 5, dtype=DTYPE, requires_grad=True)
    _, saved = ckpt.saved_activation_bytes(lambda: ckpt.checkpoint(segment, x))
    assert saved == x.numel() * x.element_size()


def check_sequential_segments(ckpt):
    widths = [3, 4, 5, 6, 7, 8]  # five blocks, each output a different width: the saved inputs show the cuts
    blocks, batch = blocks_of(widths), 2
    x = torch.randn(batch, 3, dtype=DTYPE, requires_grad=True)
    plain = value_and_grads(blocks, blocks, x)
    # the longer segments first: 5 blocks in 2 -> 3 + 2, in 3 -> 2 + 2 + 1, in 4 -> 2 + 1 + 1 + 1
    cuts = {1: [0], 2: [0, 3], 3: [0, 2, 4], 4: [0, 2, 3, 4], 5: [0, 1, 2, 3, 4]}
    for segments, starts in cuts.items():
        assert_same(value_and_grads(lambda x: ckpt.checkpoint_sequential(blocks, segments, x), blocks, x), plain)
        _, saved = ckpt.saved_activation_bytes(lambda: ckpt.checkpoint_sequential(blocks, segments, x))
        assert saved == sum(batch * widths[i] * 8 for i in starts), (segments, saved)


def check_matches_torch_checkpoint(ckpt):
    blocks = blocks_of([4, 6, 6, 6, 3], dropout=0.3)
    x = torch.randn(5, 4, dtype=DTYPE, requires_grad=True)
    theirs = value_and_grads(lambda x: torch_checkpoint.checkpoint_sequential(blocks, 2, x, use_reentrant=False),
                             blocks, x, seed=3)
    assert_same(value_and_grads(lambda x: ckpt.checkpoint_sequential(blocks, 2, x), blocks, x, seed=3), theirs)


def check_dropout_draws_the_same_masks(ckpt):
    blocks = blocks_of([6, 8, 8, 8, 2], dropout=0.5)
    x = torch.randn(9, 6, dtype=DTYPE, requires_grad=True)
    plain = value_and_grads(blocks, blocks, x, seed=7)
    after_plain = torch.get_rng_state()
    assert_same(value_and_grads(lambda x: ckpt.checkpoint_sequential(blocks, 2, x), blocks, x, seed=7), plain)
    # the recomputation's draws come from a forked RNG: the global one is where the plain run left it
    assert torch.equal(torch.get_rng_state(), after_plain)


class Partly(nn.Module):
    """A segment with a frozen parameter and one it never uses."""

    def __init__(self):
        super().__init__()
        self.used = nn.Linear(4, 4, dtype=DTYPE)
        self.frozen = nn.Linear(4, 4, dtype=DTYPE).requires_grad_(False)
        self.unused = nn.Linear(4, 4, dtype=DTYPE)

    def forward(self, x):
        return torch.tanh(self.frozen(self.used(x)))


def check_inputs_and_parameters_without_gradients(ckpt):
    torch.manual_seed(1)
    segment = Partly()
    x = torch.randn(3, 4, dtype=DTYPE)  # data: no gradient wanted
    got = value_and_grads(lambda x: ckpt.checkpoint(segment, x), segment, x)
    assert_same(got, value_and_grads(segment, segment, x))
    assert got[1][2] is None and got[1][4] is None  # frozen weight, unused weight
    y = torch.randn(3, 4, dtype=DTYPE, requires_grad=True)
    assert_same(value_and_grads(lambda x: ckpt.checkpoint(segment, x), segment, y),
                value_and_grads(segment, segment, y))


def check_saved_activation_bytes(ckpt):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5, dtype=DTYPE), nn.ReLU(), nn.Linear(5, 2, dtype=DTYPE))
    x = torch.randn(4, 3, dtype=DTYPE, requires_grad=True)
    out, saved = ckpt.saved_activation_bytes(lambda: model(x), model.parameters())
    # the first Linear saves x, ReLU its output, the second Linear that same output: x and one 4x5 tensor, and no
    # weights
    assert saved == (4 * 3 + 4 * 5) * 8
    assert ckpt.saved_activation_bytes(lambda: model(x))[1] == (4 * 3 + 4 * 5 + 3 * 5 + 5 * 2) * 8  # weights too
    torch.testing.assert_close(out, model(x))
    out.sum().backward()  # the saved tensors still work
    assert x.grad is not None and x.grad.shape == x.shape
    _, saved = ckpt.saved_activation_bytes(lambda: x.exp())
    assert saved == 4 * 3 * 8
    with torch.no_grad():
        assert ckpt.saved_activation_bytes(lambda: model(x), model.parameters())[1] == 0


def check_deep_network_memory(ckpt):
    # 36 blocks, each saving one tensor of x's size (the Tanh's output is the next Linear's input): 37 in all.
    # In 6 segments: 6 inputs, and 6 blocks' while one segment is recomputed in backward
    blocks, x = blocks_of([16] * 37), torch.randn(8, 16, dtype=DTYPE, requires_grad=True)
    _, plain = ckpt.saved_activation_bytes(lambda: blocks(x), blocks.parameters())
    _, saved = ckpt.saved_activation_bytes(lambda: ckpt.checkpoint_sequential(blocks, 6, x), blocks.parameters())
    _, recomputed = ckpt.saved_activation_bytes(lambda: blocks[:6](x), blocks.parameters())
    assert plain == 37 * x.numel() * 8 and saved == 6 * x.numel() * 8
    assert saved + recomputed < 0.5 * plain


def check_errors_name_the_problem(ckpt):
    blocks, x = blocks_of([3, 3, 3]), torch.randn(2, 3, dtype=DTYPE)
    for segments in (0, 3, -1):
        with pytest.raises(ValueError, match=f"segments.*2.*{segments}"):
            ckpt.checkpoint_sequential(blocks, segments, x)


CHECKS = [check_checkpoint_matches_plain, check_saves_only_the_input, check_sequential_segments,
          check_matches_torch_checkpoint, check_dropout_draws_the_same_masks,
          check_inputs_and_parameters_without_gradients, check_saved_activation_bytes, check_deep_network_memory,
          check_errors_name_the_problem]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_checkpointing(ckpt, check):
    check(ckpt)


def broken_variants():
    from torchkata.training import checkpointing as ref

    def variant(**changes):
        return types.SimpleNamespace(**{**vars(ref), **changes})

    class NoRngRestore(ref.CheckpointFunction):
        @staticmethod
        def backward(ctx, grad_out):
            ctx.rng_state = torch.get_rng_state()  # recomputes with fresh dropout masks
            return ref.CheckpointFunction.backward(ctx, grad_out)

    class RngNotForked(ref.CheckpointFunction):
        @staticmethod
        def backward(ctx, grad_out):
            grads = ref.CheckpointFunction.backward(ctx, grad_out)
            torch.set_rng_state(ctx.rng_state)  # leaves the global RNG moved back
            return grads

    def with_function(function):
        """The module with `function` in place of CheckpointFunction, in checkpoint and checkpoint_sequential."""
        def checkpoint(segment, x):
            return function.apply(segment, x, *segment.parameters())

        def checkpoint_sequential(blocks, segments, x):
            size, extra = divmod(len(blocks), segments)
            start = 0
            for i in range(segments):
                stop = start + size + (i < extra)
                x = checkpoint(blocks[start:stop], x)
                start = stop
            return x
        return variant(checkpoint=checkpoint, checkpoint_sequential=checkpoint_sequential)

    def short_segments_first(blocks, segments, x):
        size, extra = divmod(len(blocks), segments)
        start = 0
        for i in range(segments):
            stop = start + size + (i >= segments - extra)
            x = ref.checkpoint(blocks[start:stop], x)
            start = stop
        return x

    def counting_parameters(fn, parameters=()):  # every saved tensor, parameters and repeats included
        total = 0

        def pack(t):
            nonlocal total
            total += t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = fn()
        return out, total

    return {  # name: (variant, the check that must reject it)
        "no_rng_restore": (with_function(NoRngRestore), "check_dropout_draws_the_same_masks"),
        "rng_not_forked": (with_function(RngNotForked), "check_dropout_draws_the_same_masks"),
        "no_checkpoint": (variant(checkpoint=lambda segment, x: segment(x)), "check_saves_only_the_input"),
        "short_segments_first": (variant(checkpoint_sequential=short_segments_first), "check_sequential_segments"),
        "counting_parameters": (variant(saved_activation_bytes=counting_parameters), "check_saved_activation_bytes"),
    }


@pytest.mark.suite_check
@pytest.mark.parametrize("name", list(broken_variants()))
def test_broken_checkpointing_is_rejected(name):
    broken, rejected_by = broken_variants()[name]
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], broken) == [rejected_by]


@pytest.mark.suite_check
def test_no_torch_checkpoint_in_reference():
    import inspect

    from torchkata.training import checkpointing as module

    source = inspect.getsource(module)
    assert "torch.utils.checkpoint" not in source.replace("like torch.utils.checkpoint", "")
    assert "utils import checkpoint" not in source
