"""m3-deep-3: the benchmark table of every hand-written kernel against its native op. Graded on the harness
(benchmark_table: check each row before timing it, time ours and native alike, the throughput of a pass, the CSV):
every registered kernel passes its check on the CPU at its smoke size, with the rows, columns and units the table
promises; a wrong answer, wrong gradients, NaN, zeros, a wrong shape or a kernel that raises fail their row and get no
times; the times are ours and native's, not swapped; the seeded inputs repeat. The registry itself is checked
against the catalog: every extension has its entry. All timings here are the quick kind (one warm call, one timed)."""
import csv
import dataclasses
import math
import tempfile
import time
from pathlib import Path

import pytest
import torch

from grading import failing_checks
from torchkata.extensions.kernel_registry import KERNELS
from torchkata.pipeline.catalog import load_catalog

EXERCISE = "m3-deep-3"
CPU = torch.device("cpu")
QUICK = 0.0  # pipeline.bench: one warm call and one timed one
BY_NAME = {k.name: k for k in KERNELS}


@pytest.fixture(scope="module")
def table(impl_for):
    return impl_for(EXERCISE)


@pytest.fixture(scope="module")
def libraries(extension_library):
    return {k.extension: str(extension_library(k.extension)) for k in KERNELS if k.extension}


@dataclasses.dataclass
class Harness:
    """The benchmark_table module under test, with the built libraries."""
    table: object
    libraries: dict

    def rows(self, kernel, sizes=None, seed=0, device=CPU):
        return self.table.benchmark(kernel, device, sizes or kernel.sizes["smoke"], torch.Generator().manual_seed(seed),
                                    self.libraries.get(kernel.extension), QUICK, 1)


def fake(name="fake_relu", extension="relu", ours=None, **changes):
    """relu's entry with other callables: ours(x, library_path) by default is the extension's."""
    return dataclasses.replace(BY_NAME["relu"], name=name, extension=extension, **({"ours": ours} if ours else {}),
                               **changes)


def check_every_kernel_passes_on_the_cpu(h):
    """Each entry's smoke rows: checked and timed, one row a size and pass, within its tolerance."""
    for kernel in KERNELS:
        rows = h.rows(kernel)
        if "cpu" in kernel.skip:
            assert rows == [{"device": "cpu", "kernel": kernel.name, "extension": kernel.extension or "",
                             "status": f"skipped: {kernel.skip['cpu']}"}]
            continue
        passes = ["forward", "forward_backward"] if kernel.backward else ["forward"]
        assert [(r["size"], r["pass"]) for r in rows] == [(s, p) for s in kernel.sizes["smoke"] for p in passes]
        for r in rows:
            assert r["status"] == "ok", (kernel.name, r)
            assert r["max_rel_error"] <= kernel.tolerance
            assert set(r) == set(h.table.COLUMNS), set(h.table.COLUMNS) ^ set(r)
            assert (r["device"], r["kernel"], r["extension"], r["tolerance"]) == (
                "cpu", kernel.name, kernel.extension or "", kernel.tolerance)
            assert r["threads"] == torch.get_num_threads()
            assert r["ratio"] == pytest.approx(r["ours_ms"] / r["native_ms"])


def check_exact_kernel_passes_a_zero_tolerance(h):
    rows = h.rows(fake(tolerance=0.0))
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert [r["max_rel_error"] for r in rows] == [0.0, 0.0]


def check_the_shapes_column(h):
    assert h.rows(BY_NAME["relu"], sizes=(1000,))[0]["shapes"] == "1000"
    assert h.rows(BY_NAME["knn"])[0]["shapes"] == "64x3, 64x3, 16"
    assert h.rows(BY_NAME["add_constant"])[1]["shapes"] == "1024, 3.0"


def check_gigabytes_moved(h):
    """relu float32: read x, write y (8 bytes an element); forward + backward also reads the upstream gradient
    and x again and writes the gradient (20). add_constant's 3.0 moves nothing."""
    n = 1 << 12
    for kernel, per_element in ((BY_NAME["relu"], (8, 20)), (BY_NAME["add_constant"], (8, 20)),
                                (BY_NAME["add"], (12, 32))):
        for row, moved in zip(h.rows(kernel, sizes=(n,)), per_element):
            assert row["unit"] == "GB/s"
            assert row["ours_throughput"] == pytest.approx(moved * n / 1e9 / (row["ours_ms"] / 1e3), rel=1e-12)
            assert row["native_throughput"] == pytest.approx(moved * n / 1e9 / (row["native_ms"] / 1e3), rel=1e-12)
    (row,) = h.rows(BY_NAME["warp_sum"], sizes=(n,))
    assert row["ours_throughput"] == pytest.approx((4 * n + 4) / 1e9 / (row["ours_ms"] / 1e3), rel=1e-12)


def check_flops(h):
    """matmul: 2 n^3 forward, three products with the backward; kNN: 3 n^2 D."""
    n = 24
    forward, both = h.rows(BY_NAME["matmul"], sizes=(n,))
    for row, flops in ((forward, 2 * n**3), (both, 6 * n**3)):
        assert row["unit"] == "GFLOP/s"
        assert row["ours_throughput"] == pytest.approx(flops / 1e9 / (row["ours_ms"] / 1e3), rel=1e-12)
        assert row["native_throughput"] == pytest.approx(flops / 1e9 / (row["native_ms"] / 1e3), rel=1e-12)
    (row,) = h.rows(BY_NAME["knn"])
    assert row["ours_throughput"] == pytest.approx(3 * 64 * 64 * 3 / 1e9 / (row["ours_ms"] / 1e3), rel=1e-12)


def check_ours_and_native_are_timed_as_themselves(h):
    """ours sleeps 20 ms a call and native 2 ms: the row's times are theirs, in milliseconds."""
    def slow_relu(x, library_path):
        time.sleep(0.02)
        return torch.relu(x)

    def quick_relu(x):
        time.sleep(0.002)
        return torch.relu(x)

    for row in h.rows(fake(ours=slow_relu, native=quick_relu)):
        assert row["status"] == "ok"
        assert 20 <= row["ours_ms"] < 200 and 2 <= row["native_ms"] < row["ours_ms"]
        assert row["ratio"] == pytest.approx(row["ours_ms"] / row["native_ms"])


def check_wrong_answers_fail_their_row(h):
    """1% off, zeros, NaN in one element, wrong shapes ([n, 1], and [1, n] and [2n, n] with the right values, which a
    difference would broadcast to zeros) and a kernel that raises: failed, with no times."""
    def nan_once(x, library_path):
        out = torch.relu(x)
        out[0] = math.nan
        return out

    def raises(x, library_path):
        raise RuntimeError("relu_forward: x must be contiguous")

    wrong = {"one_percent_off": lambda x, library_path: torch.relu(x) * 1.01,
             "all_zero": lambda x, library_path: torch.zeros_like(x), "nan": nan_once,
             "one_per_row": lambda x, library_path: torch.relu(x)[:, None],
             "extra_dimension": lambda x, library_path: torch.relu(x)[None],
             "repeated": lambda x, library_path: torch.relu(x).expand(2 * len(x), -1), "raises": raises}
    for name, ours in wrong.items():
        rows = h.rows(fake(name, ours=ours))
        assert len(rows) == 2, name
        for row in rows:
            assert row["status"] != "ok" and "ours_ms" not in row and "ratio" not in row, (name, row)
            assert set(row) <= set(h.table.COLUMNS)
            assert not row["max_rel_error"] <= row["tolerance"], (name, row)
        if name == "raises":
            assert rows[0]["status"] == "error: RuntimeError: relu_forward: x must be contiguous"
        else:
            assert rows[0]["status"] == "mismatch", name
    assert h.rows(fake(ours=wrong["one_percent_off"]))[0]["max_rel_error"] == pytest.approx(
        0.01, rel=1e-3)


def check_wrong_gradients_fail_the_backward_row(h):
    class HalfGradient(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.relu(x)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * (x > 0) / 2

    forward, both = h.rows(fake(ours=lambda x, library_path: HalfGradient.apply(x)))
    assert forward["status"] == "ok" and both["status"] == "mismatch"
    assert both["max_rel_error"] == pytest.approx(0.5)


def check_expected_answer_is_not_the_timed_op(h):
    """Where an entry has `expected`, ours is judged by it (kNN's squared distances), native only timed."""
    def also_squared(query, reference, k):
        return BY_NAME["knn"].native(query, reference, k).values.square()

    (row,) = h.rows(dataclasses.replace(BY_NAME["knn"], expected=None))
    assert row["status"] == "mismatch"
    (row,) = h.rows(dataclasses.replace(BY_NAME["knn"], native=also_squared))
    assert row["status"] == "ok"


def check_library_is_passed_where_there_is_one(h):
    seen = []

    def needs_library(x, library_path):
        seen.append(library_path)
        return torch.relu(x)

    assert all(r["status"] == "ok" for r in h.rows(fake(ours=needs_library)))
    assert set(seen) == {h.libraries["relu"]}
    rows = h.rows(fake(extension=None, ours=torch.relu))
    assert [r["status"] for r in rows] == ["ok", "ok"] and rows[0]["extension"] == ""


def check_skipped_device_says_why(h):
    rows = h.rows(fake(skip={"cpu": "no reason at all"}))
    assert rows == [{"device": "cpu", "kernel": "fake_relu", "extension": "relu",
                     "status": "skipped: no reason at all"}]
    assert [r["status"] for r in h.rows(fake(skip={"cuda": "elsewhere"}))] == ["ok", "ok"]


def check_seeded_inputs_repeat(h):
    """The same seed gives the same inputs and upstream gradients, whatever torch's global generator did; another
    seed other ones."""
    def seen(seed):
        tensors = []

        class Recorded(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                tensors.append(x.clone())
                ctx.save_for_backward(x)
                return torch.relu(x)

            @staticmethod
            def backward(ctx, grad):
                tensors.append(grad.clone())
                return grad * (ctx.saved_tensors[0] > 0)

        h.rows(fake(ours=lambda x, library_path: Recorded.apply(x)), seed=seed)
        torch.randn(100)
        return tensors

    first, again, other = seen(5), seen(5), seen(6)
    assert len(first) == len(again) and all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], other[0]) and not torch.equal(first[-1], other[-1])


def check_csv(h):
    rows = h.rows(BY_NAME["relu"], sizes=(16384,))
    rows += h.rows(fake(ours=lambda x, library_path: x))
    rows += h.rows(fake(skip={"cpu": "not here"}))
    rows[0] = rows[0] | {"ratio": 0.123456789}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "table.csv"
        h.table.write_csv(rows, path)
        with open(path, newline="") as f:
            reader = csv.reader(f)
            assert next(reader) == list(h.table.COLUMNS)
            lines = [dict(zip(h.table.COLUMNS, line)) for line in reader]
    assert len(lines) == len(rows) == 5
    assert lines[0]["ratio"] == "0.1235" and lines[0]["size"] == "16384" and lines[0]["status"] == "ok"
    assert lines[0]["ours_ms"] == f"{rows[0]['ours_ms']:.4g}"
    assert lines[2]["status"] == "mismatch" and lines[2]["ours_ms"] == "" and lines[2]["max_rel_error"] != ""
    assert lines[4]["status"] == "skipped: not here" and lines[4]["pass"] == lines[4]["ratio"] == ""


CHECKS = [check_every_kernel_passes_on_the_cpu, check_exact_kernel_passes_a_zero_tolerance, check_the_shapes_column,
        check_gigabytes_moved, check_flops, check_ours_and_native_are_timed_as_themselves,
        check_wrong_answers_fail_their_row, check_wrong_gradients_fail_the_backward_row,
        check_expected_answer_is_not_the_timed_op, check_library_is_passed_where_there_is_one,
        check_skipped_device_says_why, check_seeded_inputs_repeat, check_csv]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_benchmark_table(table, libraries, check):
    check(Harness(table, libraries))


def test_registry_covers_every_extension():
    """Every extension of the catalog has a kernel in the registry, and m3-deep-3 takes each one as an input: a new
    kernel library is benchmarked from the day it is added."""
    catalog = load_catalog()
    benchmarked = {k.extension for k in KERNELS if k.extension}
    assert benchmarked == set(catalog.extensions)
    assert set(catalog.get(EXERCISE).extensions) == benchmarked


def test_registry_entries_are_complete():
    assert len(BY_NAME) == len(KERNELS), "kernel names must be unique"
    for kernel in KERNELS:
        assert set(kernel.sizes) == {"smoke", "cpu", "cuda"}, kernel.name
        for sizes in kernel.sizes.values():
            assert 1 <= len(sizes) <= 3 and list(sizes) == sorted(set(sizes)), kernel.name
        assert set(kernel.skip) <= {"cpu", "cuda"} and all(kernel.skip.values())
        assert 0 < kernel.tolerance < 0.01


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the CUDA half of the table runs on a GPU")
def test_cuda_rows(table, libraries):
    cuda = torch.device("cuda")
    for kernel in KERNELS:
        for row in Harness(table, libraries).rows(kernel, device=cuda):
            assert row["status"] == "ok" or row["status"].startswith("skipped"), (kernel.name, row)


def broken(bug):
    """The reference harness with one deliberate mistake."""
    from torchkata.extensions import benchmark_table as reference

    class Broken:
        COLUMNS = reference.COLUMNS
        write_csv = staticmethod(reference.write_csv)

        @staticmethod
        def benchmark(kernel, device, sizes, generator, library_path, seconds, repeats):
            if bug == "no_check":
                kernel = dataclasses.replace(kernel, tolerance=math.inf)
            if bug == "compared_with_itself":
                kernel = dataclasses.replace(kernel, expected=None, native=lambda *a: kernel.ours(
                    *a, **({} if kernel.extension is None else {"library_path": library_path})))
            rows = reference.benchmark(kernel, device, sizes, generator, library_path, seconds, repeats)
            for row in rows:
                if bug == "swapped_times" and "ratio" in row:
                    row["ours_ms"], row["native_ms"], row["ratio"] = row["native_ms"], row["ours_ms"], 1 / row["ratio"]
                if bug == "forward_bytes_only" and "unit" in row and row["pass"] == "forward_backward":
                    scale = 8 / 20 if row["unit"] == "GB/s" else 1
                    row["ours_throughput"] *= scale
                    row["native_throughput"] *= scale
            if bug == "no_backward_rows":
                rows = [r for r in rows if r.get("pass") != "forward_backward"]
            return rows

    return Broken


@pytest.mark.suite_check
@pytest.mark.parametrize("bug", ["no_check", "compared_with_itself", "swapped_times", "forward_bytes_only",
                                 "no_backward_rows"])
def test_broken_table_is_rejected(bug, libraries):
    assert failing_checks(CHECKS, Harness(broken(bug), libraries))
