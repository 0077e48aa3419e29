"""b01-10: timing ops on the CPU and the GPU: warm-up, synchronisation, the copies, and the crossover size."""
import time

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from grading import failing_checks

EXERCISE = "b01-10"
QUICK = dict(deadline=None, derandomize=True, database=None, max_examples=60)


@pytest.fixture(scope="module")
def speed(impl_for):
    return impl_for(EXERCISE)


def check_synchronizer(impl):
    assert impl.synchronizer("cpu")() is None and impl.synchronizer(torch.device("cpu"))() is None
    assert callable(impl.synchronizer("cuda"))  # made, not called: there may be no GPU here
    for bad in ("meta", "mps"):
        with pytest.raises(ValueError, match=f"'{bad}'"):
            impl.synchronizer(bad)


def check_measure_warms_up_and_waits_for_the_device(impl):
    events = []

    def op():  # 0.2 ms of work: few calls per timing block
        time.sleep(0.0002)
        events.append("op")

    seconds = impl.measure(op, lambda: events.append("sync"), min_run_time=0.005)
    assert seconds > 0
    # one warm-up call before any timing, and the device waited for before every clock read: the first event
    # is the warm-up, a wait follows it, and the last event is a wait (no call after the last clock read)
    assert events[:2] == ["op", "sync"] and events[-1] == "sync", events[:6]
    assert 3 <= events.count("op") < 1000


def check_measure_times_the_work(impl):
    # a statement that returns at once and queues 2 ms of work on a "device" that runs its queue in order: only a
    # clock that waits for the device sees the work
    device = {"free_at": 0.0}

    def launch():
        device["free_at"] = max(device["free_at"], time.perf_counter()) + 0.002

    def wait():
        time.sleep(max(0.0, device["free_at"] - time.perf_counter()))

    seconds = impl.measure(launch, wait, min_run_time=0.02)
    assert 0.0018 < seconds < 0.02, seconds
    for bad in (0, -1):
        with pytest.raises(ValueError, match="min_run_time"):
            impl.measure(lambda: None, lambda: None, min_run_time=bad)


def check_timed_call_results(impl):
    g = torch.Generator().manual_seed(0)
    for name, (op, make) in impl.OPS.items():
        inputs = make(8, g)
        for copies in (False, True):
            got = impl.timed_call(op, inputs, "cpu", copies)()
            torch.testing.assert_close(got, op(*inputs), rtol=0, atol=0)
            assert got.device.type == "cpu"


def check_timed_call_copies(impl):
    """With copies, every call moves each input to the device and the result back; without, only setup does."""
    moves, original = [], torch.Tensor.to

    def recording_to(self, *args, **kwargs):
        moves.append(str(args[0] if args else kwargs.get("device")))
        return original(self, *args, **kwargs)

    a, b = torch.randn(4, 4), torch.randn(4, 4)
    torch.Tensor.to = recording_to
    try:
        for copies, per_call in ((True, ["cpu", "cpu", "cpu"]), (False, [])):
            moves.clear()
            statement = impl.timed_call(torch.mm, (a, b), "cpu", copies)
            at_setup = list(moves)
            statement()
            statement()
            assert moves[len(at_setup):] == per_call * 2, (copies, moves)
            assert at_setup == ([] if copies else ["cpu", "cpu"]), (copies, at_setup)
    finally:
        torch.Tensor.to = original


def brute_crossover(sizes, cpu, gpu):
    for i, size in enumerate(sizes):
        if all(g < c for c, g in zip(cpu[i:], gpu[i:])):
            return size
    return None


def check_crossover(impl):
    sizes = [1, 2, 4, 8]
    assert impl.crossover(sizes, [1, 2, 3, 4], [5, 1, 1, 1]) == 2
    assert impl.crossover(sizes, [1, 2, 3, 4], [0, 5, 1, 1]) == 4  # faster at 1, not at 2: not from 1
    assert impl.crossover(sizes, [1, 2, 3, 4], [0, 1, 1, 4]) is None  # a tie at the largest is no win
    assert impl.crossover(sizes, [1, 2, 3, 4], [2, 3, 4, 5]) is None
    assert impl.crossover([], [], []) is None
    for cpu, gpu in (([1, 2, 3], [1, 2, 3, 4]), ([1, 2, 3, 4], [1, 2, 3]), ([1, 2, 3], [1, 2, 3]),
                     ([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]), ([1, 2, 3, 4], [1, 2, 3, 4, 5])):
        with pytest.raises(ValueError, match="one time per size"):
            impl.crossover(sizes, cpu, gpu)
    for unordered in ([1, 4, 2], [1, 2, 2]):
        with pytest.raises(ValueError, match="strictly increasing"):
            impl.crossover(unordered, [1, 1, 1], [1, 1, 1])

    @settings(**QUICK)
    @given(st.lists(st.tuples(st.integers(1, 5), st.integers(1, 5)), max_size=8))
    def agrees_with_the_definition(times):
        sizes = [2 ** i for i in range(len(times))]
        cpu, gpu = [t[0] for t in times], [t[1] for t in times]
        assert impl.crossover(sizes, cpu, gpu) == brute_crossover(sizes, cpu, gpu)

    agrees_with_the_definition()


def check_input_sizes(impl):
    """Size n means an n x n matmul, and n*n elements for the elementwise op and the reduction."""
    g = torch.Generator().manual_seed(0)
    for n in (1, 3, 8):
        shapes = {name: [tuple(x.shape) for x in make(n, g)] for name, (_, make) in impl.OPS.items()}
        assert shapes == {"matmul": [(n, n), (n, n)], "add": [(n * n,), (n * n,)], "sum": [(n * n,)]}, shapes


def check_sweep(impl):
    rows = impl.sweep("add", [4, 8], "cpu", True, 0.001, torch.Generator().manual_seed(0))
    assert [r["n"] for r in rows] == [4, 8]
    assert all(r["seconds"] > 0 and r["max_abs_error"] == 0.0 for r in rows)
    rows = impl.sweep("matmul", [3], "cpu", False, 0.001, torch.Generator().manual_seed(0))
    assert rows[0]["max_abs_error"] == 0.0


CHECKS = [check_synchronizer, check_measure_warms_up_and_waits_for_the_device, check_measure_times_the_work,
          check_timed_call_results, check_timed_call_copies, check_crossover, check_input_sizes, check_sweep]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_device_speed(speed, check):
    check(speed)


def test_sweep_reports_a_wrong_result(speed, monkeypatch):
    """A device that returns zeros is off by the largest |result|: the error is result against the CPU's op."""
    monkeypatch.setattr(speed, "timed_call", lambda op, inputs, device, copies: lambda: torch.zeros(3, 3))
    (row,) = speed.sweep("matmul", [3], "cpu", False, 0.001, torch.Generator().manual_seed(0))
    op, make = speed.OPS["matmul"]
    expected = op(*make(3, torch.Generator().manual_seed(0))).double().abs().max().item()
    assert expected > 0 and row["max_abs_error"] == expected, (row, expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the GPU half runs where there is one")
def test_the_gpu_computes_what_the_cpu_does(speed):
    for name in speed.OPS:
        for copies in (False, True):
            rows = speed.sweep(name, [64, 256], "cuda", copies, 0.01, torch.Generator().manual_seed(0))
            assert all(r["max_abs_error"] < 1e-2 for r in rows), (name, copies, rows)


class Broken:
    """The reference with one function replaced."""

    def __init__(self, **replaced):
        from torchkata.profiling import device_speed

        self.__dict__.update({k: getattr(device_speed, k) for k in dir(device_speed) if not k.startswith("_")})
        self.__dict__.update(replaced)


def no_warm_up(statement, sync, min_run_time):
    from torch.utils import benchmark

    clock = lambda: (sync(), time.perf_counter())[1]  # noqa: E731
    return benchmark.Timer(stmt="s()", globals={"s": statement}, timer=clock).blocked_autorange(
        min_run_time=min_run_time).median


def no_waiting(statement, sync, min_run_time):
    from torch.utils import benchmark

    statement()
    return benchmark.Timer(stmt="s()", globals={"s": statement}).blocked_autorange(min_run_time=min_run_time).median


def first_win(sizes, cpu, gpu):
    return next((s for s, c, g in zip(sizes, cpu, gpu) if g < c), None)


def copies_once(op, inputs, device, include_transfer):
    placed = [x.to(device) for x in inputs]
    return lambda: op(*placed)


def cuda_for_everything(device):
    return lambda: None


@pytest.mark.suite_check
@pytest.mark.parametrize("broken", [dict(measure=no_warm_up), dict(measure=no_waiting), dict(crossover=first_win),
                                    dict(timed_call=copies_once), dict(synchronizer=cuda_for_everything)],
                         ids=lambda d: next(iter(d.values())).__name__)
def test_broken_timing_is_rejected(broken):
    assert failing_checks(CHECKS, Broken(**broken))
