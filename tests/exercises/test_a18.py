"""a18: a memory-minimal training loop. The instrument first: PeakMemory against allocations whose bytes are known
(views, in-place results, frees, several outputs, a backward pass counted by hand). Then the loop: a checkpointed,
in-place model gives the plain model's outputs, gradients and losses (float64, every segment count), costs less peak
memory, zero_grad(set_to_none) is called as asked at the top of every step, and the steps match torch's own loop."""
import inspect
import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grading import failing_checks

EXERCISE = "a18"
FEATURES, WIDTH, DEPTH, CLASSES = 6, 16, 4, 3


@pytest.fixture(scope="module")
def impl(impl_for):
    return impl_for(EXERCISE)


def make(impl, seed=0, dtype=torch.float64, **options):
    torch.manual_seed(seed)
    return impl.MemoryMinimalMLP(FEATURES, WIDTH, DEPTH, CLASSES, **options).to(dtype)


def batches(count=2, rows=32, dtype=torch.float64, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(rows, FEATURES, generator=g, dtype=dtype), torch.randint(CLASSES, (rows,), generator=g))
            for _ in range(count)]


def peak_of(impl, fn):
    with impl.PeakMemory() as memory:
        fn()
    return memory.peak_bytes


def check_peak_memory_known_allocations(impl):
    before = torch.randn(10)  # allocated before the mode: not counted, nor is an in-place change of it
    with impl.PeakMemory() as memory:
        a = torch.empty(1000)  # 4000 bytes
        b = torch.empty(500, dtype=torch.float64)  # 4000 bytes
        view = a[::2]
        a.add_(1)
        before.mul_(2)
        assert (memory.live_bytes, memory.peak_bytes) == (8000, 8000), "views and in-place results cost nothing"
        del a
        assert memory.live_bytes == 8000, "a storage lives while a view of it does"
        del view
        assert memory.live_bytes == 4000, "freed when its last tensor goes"
        c = torch.empty(250)
        assert (memory.live_bytes, memory.peak_bytes) == (5000, 8000)
        values, indices = torch.sort(before)  # two outputs: 10 float32 and 10 int64
        assert memory.live_bytes == 5000 + 40 + 80
        del b, c, values, indices
        assert memory.live_bytes == 0
        torch.empty(0)
        flag = torch.zeros((), dtype=torch.bool)  # 1 byte
        assert memory.live_bytes == 1
        del flag
        assert memory.live_bytes == 0


def check_peak_memory_counts_backward(impl):
    x = torch.randn(100, requires_grad=True)
    with impl.PeakMemory() as memory:
        t = x * 3  # 400 bytes
        s = t.sum()  # 4
        s.backward()  # backward's seed, ones (4), and dL/dx (400), which becomes x.grad
        del t, s
    assert memory.peak_bytes == 808, memory.peak_bytes
    assert memory.live_bytes == 400, "x.grad is alive"
    with impl.PeakMemory() as fresh:
        pass
    assert (fresh.live_bytes, fresh.peak_bytes) == (0, 0), "each instrument starts from zero"


def check_model_layout_and_init(impl):
    model = make(impl, dtype=torch.float32, inplace=True, segments=2)
    torch.manual_seed(0)
    want = [nn.Linear(FEATURES, WIDTH)] + [nn.Linear(WIDTH, WIDTH) for _ in range(DEPTH - 1)] + [nn.Linear(WIDTH, CLASSES)]
    assert len(model.blocks) == DEPTH
    linears = [block[0] for block in model.blocks] + [model.head]
    for got, expected in zip(linears, want):
        assert isinstance(got, nn.Linear)
        torch.testing.assert_close(got.weight, expected.weight, rtol=0, atol=0)
        torch.testing.assert_close(got.bias, expected.bias, rtol=0, atol=0)
    assert all(isinstance(block[1], nn.ReLU) and block[1].inplace for block in model.blocks)
    assert not any(block[1].inplace for block in make(impl).blocks), "in-place only when asked"
    assert make(impl).segments == 0
    for depth, segments, message in [(0, 0, "depth"), (2, 3, "segments"), (2, -1, "segments")]:
        with pytest.raises(ValueError, match=message):
            impl.MemoryMinimalMLP(FEATURES, WIDTH, depth, CLASSES, segments=segments)
    impl.MemoryMinimalMLP(FEATURES, WIDTH, 2, CLASSES, segments=2)  # as many segments as blocks is allowed
    single = impl.MemoryMinimalMLP(FEATURES, WIDTH, 1, CLASSES, segments=1)  # one block is a network too
    assert len(single.blocks) == 1 and single.blocks[0][0].weight.shape == (WIDTH, FEATURES)
    assert single(torch.randn(2, FEATURES)).shape == (2, CLASSES)
    with pytest.raises(TypeError):  # inplace and segments are keyword-only: a bare True says nothing
        impl.MemoryMinimalMLP(FEATURES, WIDTH, 2, CLASSES, True)


def check_checkpointed_equals_plain(impl):
    plain = make(impl)
    (x, y), = batches(1)
    out = plain(x)
    want = torch.autograd.grad(F.cross_entropy(out, y), list(plain.parameters()))
    for segments in range(DEPTH + 1):
        for inplace in (False, True):  # in-place ReLUs must stay safe whatever the cut
            model = make(impl, inplace=inplace, segments=segments)
            got_out = model(x)
            torch.testing.assert_close(got_out, out, rtol=1e-12, atol=0)
            got = torch.autograd.grad(F.cross_entropy(got_out, y), list(model.parameters()))
            for g, w in zip(got, want):
                torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-15, msg=lambda m: f"{segments} {inplace}: {m}")
    with torch.no_grad():
        torch.testing.assert_close(make(impl, segments=2)(x), out.detach(), rtol=1e-12, atol=0)


def check_checkpointing_saves_memory(impl):
    (x, y), = batches(1, rows=256, dtype=torch.float32)
    activation = 256 * WIDTH * 4

    def step_peak(**options):
        model = make(impl, dtype=torch.float32, **options)
        return peak_of(impl, lambda: F.cross_entropy(model(x), y).backward())
    plain, half = step_peak(), step_peak(segments=2)
    assert half <= plain - activation, (plain, half)
    assert step_peak(inplace=True) <= plain, "in-place activations never cost more"
    model = make(impl, dtype=torch.float32, inplace=True)  # a forward alone: in-place ReLU allocates nothing
    plain_forward = peak_of(impl, lambda: make(impl, dtype=torch.float32)(x))
    assert peak_of(impl, lambda: model(x)) <= plain_forward - activation


def check_checkpointing_uses_torch_utils_checkpoint(impl):
    calls = []
    original = torch.utils.checkpoint.checkpoint

    def spy(function, *args, **kwargs):
        calls.append(kwargs.get("use_reentrant"))
        return original(function, *args, **kwargs)
    torch.utils.checkpoint.checkpoint = spy
    try:
        (x, y), = batches(1)
        F.cross_entropy(make(impl, segments=3)(x), y).backward()
    finally:
        torch.utils.checkpoint.checkpoint = original
    # checkpoint_sequential runs its last segment plainly: backward starts there, it would be recomputed at once
    assert calls == [False, False], f"two non-reentrant checkpoints (3 segments) expected, got {calls}"


class Recording(torch.optim.SGD):
    """SGD that records each zero_grad's set_to_none and whether the gradients were there when it was called."""

    def __init__(self, params, lr):
        super().__init__(params, lr=lr)
        self.calls = []

    def zero_grad(self, set_to_none=True):
        self.calls.append(set_to_none)
        super().zero_grad(set_to_none=set_to_none)


def reference_steps(model, data, lr, set_to_none):
    """torch's own loop, through optimizer.step(closure)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)

    def closure(x, y):
        optimizer.zero_grad(set_to_none=set_to_none)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss
    return [optimizer.step(lambda: closure(x, y)).item() for x, y in data]


def check_train_steps(impl):
    data = batches(3)
    for set_to_none in (True, False):
        model, twin = make(impl, inplace=True, segments=2), make(impl)
        optimizer = Recording(model.parameters(), lr=0.3)
        losses = impl.train_steps(model, optimizer, iter(data), set_to_none=set_to_none)
        assert optimizer.calls == [set_to_none] * 3, optimizer.calls
        want = reference_steps(twin, data, 0.3, set_to_none)
        assert isinstance(losses, list) and all(isinstance(v, float) for v in losses)
        torch.testing.assert_close(torch.tensor(losses, dtype=torch.float64), torch.tensor(want, dtype=torch.float64),
                                   rtol=1e-12, atol=0)
        for p, q in zip(model.parameters(), twin.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-15)
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-12, atol=1e-15)  # the last step's, not a sum
    optimizer = Recording(make(impl).parameters(), lr=0.3)
    impl.train_steps(optimizer.param_groups[0]["params"] and make(impl), optimizer, data[:1])
    assert optimizer.calls == [True], "set_to_none defaults to True"
    with pytest.raises(TypeError):  # set_to_none is keyword-only
        impl.train_steps(make(impl), optimizer, data[:1], False)
    assert impl.train_steps(make(impl), Recording(make(impl).parameters(), lr=0.3), []) == []


def check_set_to_none_lowers_the_peak(impl):
    data = batches(2, rows=64, dtype=torch.float32)
    peaks = {}
    for set_to_none in (True, False):
        model = make(impl, dtype=torch.float32)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        peaks[set_to_none] = peak_of(impl, lambda: impl.train_steps(model, optimizer, data, set_to_none=set_to_none))
    grad_bytes = sum(p.numel() * 4 for p in make(impl).parameters())
    assert peaks[True] <= peaks[False] - grad_bytes // 2, (peaks, grad_bytes)


CHECKS = [check_peak_memory_known_allocations, check_peak_memory_counts_backward, check_model_layout_and_init,
          check_checkpointed_equals_plain, check_checkpointing_saves_memory,
          check_checkpointing_uses_torch_utils_checkpoint, check_train_steps, check_set_to_none_lowers_the_peak]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_memory_minimal(impl, check):
    check(impl)


# --- broken versions: each must be rejected ---------------------------------------------------------------------

def reference_with(**replaced):
    from torchkata.training import memory_minimal as ref

    return types.SimpleNamespace(**{name: getattr(ref, name) for name in
                                    ("PeakMemory", "MemoryMinimalMLP", "train_steps")} | replaced)


def broken_instruments():
    from torchkata.training.memory_minimal import PeakMemory

    class CountingViews(PeakMemory):  # every output counted, as if a view or an in-place result were new memory
        def _count(self, storage, inputs):
            super()._count(storage, set())

    class NeverFreeing(PeakMemory):  # the peak of everything ever allocated, not of what is alive at once
        def _free(self, pointer):
            pass
    return CountingViews, NeverFreeing


def broken_models():
    from torchkata.training.memory_minimal import MemoryMinimalMLP
    from torch.utils.checkpoint import checkpoint_sequential

    class FlatCut(MemoryMinimalMLP):  # segments cut over Linear and ReLU alike: an in-place ReLU may start a segment
        def forward(self, x):
            if self.segments:
                layers = nn.Sequential(*(layer for block in self.blocks for layer in block))
                return self.head(checkpoint_sequential(layers, self.segments + 1, x, use_reentrant=False))
            return self.head(self.blocks(x))

    class NoCheckpoint(MemoryMinimalMLP):  # segments accepted and ignored
        def forward(self, x):
            return self.head(self.blocks(x))
    return FlatCut, NoCheckpoint


def steps_without_zero_grad(model, optimizer, batches, *, set_to_none=True):  # gradients pile up over the steps
    losses = []
    for x, y in batches:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def steps_always_zeroing(model, optimizer, batches, *, set_to_none=True):  # set_to_none ignored
    from torchkata.training.memory_minimal import train_steps

    return train_steps(model, optimizer, batches, set_to_none=False)


BROKEN = {"counting_views": lambda: reference_with(PeakMemory=broken_instruments()[0]),
          "never_freeing": lambda: reference_with(PeakMemory=broken_instruments()[1]),
          "flat_cut": lambda: reference_with(MemoryMinimalMLP=broken_models()[0]),
          "no_checkpoint": lambda: reference_with(MemoryMinimalMLP=broken_models()[1]),
          "steps_without_zero_grad": lambda: reference_with(train_steps=steps_without_zero_grad),
          "steps_always_zeroing": lambda: reference_with(train_steps=steps_always_zeroing)}


@pytest.mark.suite_check
@pytest.mark.parametrize("name", BROKEN)
def test_broken_memory_minimal_is_rejected(name):
    assert failing_checks(CHECKS, BROKEN[name]())


@pytest.mark.suite_check
def test_reference_uses_torch_checkpointing():
    from torchkata.training import memory_minimal as ref

    source = inspect.getsource(ref)
    assert "torch.utils.checkpoint" in source and "use_reentrant=False" in source
    assert "memory_allocated(" not in source and "torch.profiler" not in source  # the instrument is the exercise's own
