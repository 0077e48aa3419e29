"""DVC's pipeline files come from the catalog: current, one stage per done exercise, each with its own deps."""
import subprocess

import yaml

from torchkata.pipeline.catalog import ROOT, load_catalog
from torchkata.pipeline.dvc_stages import render
from torchkata.pipeline.plan import rotating_sample


def test_generated_files_are_current():
    for path, text in render(load_catalog()).items():
        assert path.read_text() == text, f"{path.relative_to(ROOT)} is stale: run `torchkata dvc`"


def stages(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())["stages"]["reproduce"]


def test_a_stage_per_done_exercise_with_its_own_inputs():
    catalog = load_catalog()
    for name, scale in [("dvc.yaml", "default"), ("proof/smoke/dvc.yaml", "smoke")]:
        reproduce = stages(name)
        assert set(reproduce["foreach"]) == {e.id for e in catalog.done()}
        slots = reproduce["foreach"]["b04-10"]
        assert slots[0] == "src/torchkata/experiments/b04_10.py" and "src/torchkata/vision/transfer.py" in slots
        assert "src/torchkata/vision/fashion_cnn.py" in slots  # imported: its edit reruns b04-10
        assert f"results/proof/reference-{scale}/b04-06/metrics.json" in slots  # the upstream's proof
        assert "csrc/add_constant/add_constant.cpp" in reproduce["foreach"]["a41"]
        assert "data/fashion-mnist" not in reproduce["foreach"]["a01"]  # a01 reruns for its own files only
        assert f"scale={scale}" in reproduce["do"]["cmd"]


def test_dvc_lists_one_stage_per_exercise():
    dvc = str(ROOT / ".venv" / "bin" / "dvc") if (ROOT / ".venv" / "bin" / "dvc").exists() else "dvc"
    listed = subprocess.run([dvc, "stage", "list", "--name-only"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.split()
    assert {f"reproduce@{e.id}" for e in load_catalog().done()} <= set(listed)


def test_rotating_sample_fits_its_budget_and_rotates():
    done = load_catalog().done()
    cost = {e.id: 100 for e in done}
    samples = {tuple(e.id for e in rotating_sample(done, key, 250, lambda e: cost[e.id])) for key in "abcdefgh"}
    assert all(len(s) == 2 for s in samples)  # two of 100 fit 250, a third does not
    assert len(samples) > 1  # another commit, another sample
    assert [e.id for e in rotating_sample(done, "a", 10, lambda e: cost[e.id])] != []  # always at least one
    assert rotating_sample([], "a", 10, lambda e: 0) == []


def test_every_locked_source_is_the_committed_one():
    """Each lock records the files its stages ran with: a file of the repository that differs from its record means
    a stage that was not reproduced after an edit (CI's proofs would fail on it). Reading the hashes takes
    milliseconds; `dvc status` needs the results, which a checkout does not have (and the results and data a
    working copy holds are not the repository's, so they are left out)."""
    import hashlib

    tracked = set(subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.splitlines())
    for lock in ("dvc.lock", "proof/smoke/dvc.lock"):
        stale = set()
        for name, stage in yaml.safe_load((ROOT / lock).read_text())["stages"].items():
            for dep in stage.get("deps", []):
                source = ROOT / dep["path"]
                if dep["path"] in tracked and hashlib.md5(source.read_bytes()).hexdigest() != dep["md5"]:
                    stale.add(f"{name}: {dep['path']}")
        assert not stale, f"{lock}: reproduce these stages (`dvc repro`): {sorted(stale)}"
