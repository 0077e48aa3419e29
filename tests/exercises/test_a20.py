"""a20: a mini logging system: per-step loss, time, throughput and memory, to a tqdm bar and a JSON-lines file."""
import io
import json
import math
import mmap

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grading import failing_checks
from torchkata.training.loop import train_epoch

EXERCISE = "a20"


@pytest.fixture(scope="module")
def steplog(impl_for):
    return impl_for(EXERCISE)


class FakeClock:
    """Returns the given times one after the other."""

    def __init__(self, *times):
        self.times = list(times)

    def __call__(self):
        return self.times.pop(0)


def run_steps(steplog, path, steps, clock, **options):
    """Feed `steps` (lists of (loss, batch size) micro-batches) through the hooks; returns the logger."""
    logger = steplog.StepLogger(path, console=False, clock=clock, **options)
    loss_fn = logger.loss_fn(lambda out, target: out.mean())
    for k, batches in enumerate(steps):
        for value, n in batches:
            loss_fn(torch.full((n,), float(value)), torch.zeros(n))
        logger.before_step(None, k)
    logger.close()
    return logger


def check_records(steplog, tmp):
    path = tmp / "sub" / "folder" / "log.jsonl"  # its folders are made
    # construction at 0; step 1 ends at 0.25 (closing takes until 0.75), step 2 at 1.75 (closing until 2.0)
    logger = run_steps(steplog, path, [[(2.0, 4)], [(1.0, 2), (4.0, 6)]], FakeClock(0.0, 0.25, 0.75, 1.75, 2.0))
    records = steplog.read_log(path)
    assert [r["step"] for r in records] == [1, 2]
    assert records[0]["loss"] == 2.0 and records[1]["loss"] == (1.0 * 2 + 4.0 * 6) / 8  # weighted by samples
    assert records[0]["step_s"] == 0.25 and records[1]["step_s"] == 1.0  # from the end of the last step's logging
    assert records[0]["samples_per_s"] == 16.0 and records[1]["samples_per_s"] == 8.0
    assert logger.overhead_s == 0.75 and logger.step == 2
    # a step shorter than the clock's resolution: an infinite throughput, not a ZeroDivisionError
    run_steps(steplog, tmp / "instant.jsonl", [[(1.0, 3)]], FakeClock(5.0, 5.0, 5.0))
    assert steplog.read_log(tmp / "instant.jsonl")[0]["samples_per_s"] == math.inf
    for r in records:
        assert r["cpu_mb"] > 1 and (r["gpu_mb"] is None) == (not torch.cuda.is_available())
        assert set(r) == {"step", "loss", "step_s", "samples_per_s", "cpu_mb", "gpu_mb"}


def check_every(steplog, tmp):
    path = tmp / "every.jsonl"
    run_steps(steplog, path, [[(float(k), 1)] for k in range(7)], FakeClock(*range(15)), every=3)
    assert [(r["step"], r["loss"]) for r in steplog.read_log(path)] == [(3, 2.0), (6, 5.0)]
    for every in (0, -1):
        with pytest.raises(ValueError, match="every"):
            steplog.StepLogger(tmp / "bad.jsonl", every=every, console=False)


def check_memory(steplog, tmp):
    rss = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS")) / 1024
    assert abs(steplog.cpu_memory_mb() - rss) < 0.05 * rss + 8
    # 64 MiB of fresh pages, each touched: resident. (Not a tensor: after earlier tests the allocator may hand
    # back memory that is resident already, and the check would be flaky.)
    block = mmap.mmap(-1, 64 * 2 ** 20)
    for offset in range(0, len(block), mmap.PAGESIZE):
        block[offset] = 1
    grown = steplog.cpu_memory_mb()
    block.close()
    assert grown - rss > 48, (rss, grown)
    assert (steplog.gpu_memory_mb() is None) == (not torch.cuda.is_available())


def check_gpu_memory(steplog, tmp):
    # no GPU on the grading machine: torch.cuda's queries are stubbed, so the GPU branch is graded everywhere
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.cuda, "is_available", lambda: True)
        patch.setattr(torch.cuda, "memory_allocated", lambda device=None: 7 * 2 ** 19)
        patch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: 5 * 2 ** 19)
        assert steplog.gpu_memory_mb() == {"allocated": 3.5, "peak": 2.5}  # MiB, now and at the peak
        run_steps(steplog, tmp / "gpu.jsonl", [[(1.0, 2)]], FakeClock(0.0, 1.0, 1.0))
        assert steplog.read_log(tmp / "gpu.jsonl")[0]["gpu_mb"] == {"allocated": 3.5, "peak": 2.5}
        patch.setattr(torch.cuda, "is_available", lambda: False)
        assert steplog.gpu_memory_mb() is None


def check_console(steplog, tmp):
    out = io.StringIO()  # steps of 0.25 s each: the bar shows 250.0 ms
    logger = steplog.StepLogger(tmp / "bar.jsonl", total=3, file=out, clock=FakeClock(0.0, 0.25, 0.25, 0.5, 0.5,
                                                                                       0.75, 0.75))
    for k in range(3):
        logger.loss_fn(lambda o, t: o.sum())(torch.tensor([0.125]), torch.zeros(1))
        logger.before_step(None, k)
    logger.close()
    text = out.getvalue()
    assert "3/3" in text and "loss=0.1250" in text and "step_ms=250.0" in text, text
    with steplog.StepLogger(tmp / "quiet.jsonl", console=False) as quiet:
        assert quiet.bar is None
    assert quiet.out.closed


def check_through_training_loop(steplog, tmp):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
    x, y = torch.randn(30, 5), torch.randint(0, 3, (30,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    path = tmp / "loop.jsonl"
    with steplog.StepLogger(path, total=4, console=False) as logger:
        result = train_epoch(model, optimizer, x, y, 4, torch.Generator().manual_seed(0),
                             loss_fn=logger.loss_fn(F.cross_entropy), before_step=logger.before_step, accumulate=2)
    records = steplog.read_log(path)
    assert len(records) == result["steps"] == 4
    sizes = [8, 8, 8, 6]  # two micro-batches of 4 a step; the last step has 4 + 2
    assert math.isclose(sum(r["loss"] * n for r, n in zip(records, sizes)) / 30, result["loss"], rel_tol=1e-6)
    assert all(r["step_s"] > 0 and math.isclose(r["samples_per_s"], n / r["step_s"]) for r, n in zip(records, sizes))
    assert 0 < logger.overhead_s < sum(r["step_s"] for r in records)


CHECKS = [check_records, check_every, check_memory, check_gpu_memory, check_console, check_through_training_loop]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_steplog(steplog, check, tmp_path):
    check(steplog, tmp_path)


class Broken:
    def __init__(self, module, **parts):
        self.module, self.parts = module, parts

    def __getattr__(self, name):
        return self.parts.get(name, getattr(self.module, name))


def broken_variants(steplog):
    class unweighted(steplog.StepLogger):  # the mean of the micro-batch losses, not weighted by their sizes
        def before_step(self, model=None, step=None):
            self.losses[:] = [(v, 1) for v, _ in self.losses]
            super().before_step(model, step)

    class never_flushes(steplog.StepLogger):  # the file is not closed: lines still in the buffer
        def close(self):
            if self.bar is not None:
                self.bar.close()

    return {"unweighted": Broken(steplog, StepLogger=unweighted), "never_flushes": Broken(steplog, StepLogger=never_flushes),
            "rss_in_kib": Broken(steplog, cpu_memory_mb=lambda: steplog.cpu_memory_mb() * 1024),
            "gpu_in_bytes": Broken(steplog, gpu_memory_mb=lambda: None if not torch.cuda.is_available() else {
                "allocated": torch.cuda.memory_allocated(), "peak": torch.cuda.max_memory_allocated()})}


@pytest.mark.suite_check
def test_broken_loggers_are_rejected(steplog, tmp_path):
    for name, broken in broken_variants(steplog).items():
        assert failing_checks([lambda m: check_records(m, tmp_path), lambda m: check_memory(m, tmp_path),
                               lambda m: check_gpu_memory(m, tmp_path)], broken), name
