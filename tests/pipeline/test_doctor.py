"""torchkata doctor (op fingerprints), the op trace of a rerun, and what both say about other CPU models."""
import json
import subprocess
import sys

import pytest
import torch

from torchkata.pipeline.doctor import FINGERPRINTS, PROBES, compare, cross_cpu
from torchkata.pipeline.numerics import op_trace, sqrt


def test_the_committed_fingerprints_hold_this_torch_and_two_cpu_models():
    store = json.loads(FINGERPRINTS.read_text())
    assert torch.__version__ in store["builds"], "record this torch build: torchkata doctor --record"
    assert set(store["builds"][torch.__version__]["families"]) == set(PROBES)
    assert any(len(build["machines"]) >= 2 for build in store["builds"].values())


def test_doctor_agrees_here_and_names_a_family_that_differs(tmp_path):
    """On this machine every family agrees with the committed fingerprints; a changed one is named, exit 1."""
    store = json.loads(FINGERPRINTS.read_text())
    store["builds"][torch.__version__]["families"]["matmul"]["threads-2"] = "0" * 16
    tampered = tmp_path / "fingerprints.json"
    tampered.write_text(json.dumps(store))
    run = subprocess.run([sys.executable, "-m", "torchkata.pipeline.doctor", "--fingerprints", str(tampered)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stdout + run.stderr
    lines = dict(line.split(None, 1) for line in run.stdout.splitlines() if line.startswith("  "))
    assert lines.pop("matmul").startswith("differs")
    for family in set(PROBES) - {"matmul"}:
        assert lines[family] == "agrees", (family, run.stdout)
    assert f"{len(PROBES) - 1}/{len(PROBES)} op families agree" in run.stdout


def test_compare_names_new_and_different_families():
    known = {"a": {"threads-1": "x"}, "b": {"threads-1": "y"}}
    found = {"a": {"threads-1": "x"}, "b": {"threads-1": "z"}, "c": {"threads-1": "w"}}
    assert compare(found, known) == {"a": "agrees", "b": "differs", "c": "new"}


def test_portable_sqrt_is_correctly_rounded():
    """No float32 neighbour of the result squares closer to x: the exact answer, whatever the CPU's own sqrt."""
    x = torch.rand(20000, generator=torch.Generator().manual_seed(0)) * 100 + 1e-3
    y = sqrt(x)
    below, above = torch.nextafter(y, torch.zeros_like(y)), torch.nextafter(y, torch.full_like(y, float("inf")))
    error = lambda t: (t.double() ** 2 - x.double()).abs()  # noqa: E731
    assert (error(y) <= error(below)).all() and (error(y) <= error(above)).all()
    assert y.dtype == torch.float32 and sqrt(x.double()).dtype == torch.float64


def test_op_trace_records_ops_and_leaves_results_alone():
    x = torch.randn(100, generator=torch.Generator().manual_seed(1))
    with op_trace() as trace:
        traced = [x.exp(), x.abs().pow(0.5), sqrt(x.abs()), x.clone().tanh_()]
    assert torch.equal(traced[0], x.exp()) and torch.equal(traced[3], x.tanh())
    assert {"aten.exp", "aten.abs", "aten.tanh", "aten.sqrt"} <= trace.ops  # pow(x, 0.5) is sqrt
    with op_trace() as portable_only:
        sqrt(x.abs())
    assert "aten.sqrt" not in portable_only.ops  # numerics.sqrt's float64 sqrt is exact once rounded back


@pytest.fixture
def fingerprints(tmp_path):
    store = {"probed_ops": ["aten.exp", "aten.mm"], "builds": {
        "2.0": {"machines": [{"cpu": "A"}, {"cpu": "B"}]}, "3.0": {"machines": [{"cpu": "A"}]}}}
    path = tmp_path / "fingerprints.json"
    path.write_text(json.dumps(store))
    return path


@pytest.mark.parametrize("ops, version, verdict", [
    (["aten.exp", "aten.mm", "aten.add"], "2.0", "across CPU models"),
    (["aten.exp", "aten.sqrt"], "2.0", "same CPU model only"),
    (["aten._foreach_sqrt"], "2.0", "same CPU model only"),
    (["aten.atan", "aten.mm"], "2.0", "not probed"),
    (["aten.exp"], "3.0", "not tried with this torch"),
])
def test_cross_cpu_verdicts(fingerprints, ops, version, verdict):
    result = cross_cpu(ops, version, fingerprints)
    assert result["verdict"] == verdict, result
    if verdict == "not tried with this torch":
        assert "under torch 2.0 its probes agree on A; B" in result["why"]
