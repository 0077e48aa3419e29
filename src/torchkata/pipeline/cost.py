"""What the pipeline costs beyond the experiments' own compute (`torchkata cost`), measured, and projected to
the whole catalog.

It runs `snakemake all` at one scale from empty results in fresh copies of the repository (the extensions
already built, as the budget assumes), once for the first exercise alone and once for all of them, and reads
every run's bench.json: `wall_s`, the job's process start to its last output, and `run_s`, the experiment's own
work; a run job's overhead is the difference. A DAG's overhead is its wall time less its runs' own work spread
over the cores. The two DAGs separate what a call pays once (Snakemake's start, the warm torch process, the
MLflow store, the summary) from what each exercise adds (its runs' start, its determinism and variance jobs):

    per exercise = (overhead(all) - overhead(first)) / (N - 1),   fixed = overhead(first) - per exercise

and the catalog's overhead is projected as fixed + 181 x per exercise. Spreading the runs' work over the cores
assumes they pack perfectly, so the per-exercise figure is an upper bound where exercises wait on each other.

`torchkata cost --tests` runs the README's test command (`pytest -n 2 --dist loadgroup`) with a JUnit report and
projects it to the catalog: its measured wall time, plus, for each exercise without a test file yet, the mean of
the measured exercises' test files, spread over the workers.

`torchkata cost --main` projects the main job (`snakemake --cores 8 all` at the default scale): every
exercise's runs (its variance seeds and the determinism rerun), each as long as its measured runs where the
exercise is done and has run here, else as its catalog allotment (`resources.run_s`), packed onto the run slots
(cores / threads) longest first.
"""
from __future__ import annotations

import heapq
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from torchkata.pipeline.catalog import ROOT, Catalog
from torchkata.pipeline.files import read_json
from torchkata.pipeline.projects import copy_project, snakemake, with_config

CATALOG_SIZE = 181
MAIN_JOB_BUDGET_S = 2 * 3600
TEST_COMMAND_BUDGET_S = 15 * 60
EXERCISE_TESTS_BUDGET_S = 3.0  # one exercise's test file on the reference


def run_dag(exercises: list[str], scale: str, cores: int) -> dict:
    """One `snakemake all` from empty results in a fresh copy: its wall time and every run's bench.json."""
    with tempfile.TemporaryDirectory(prefix="torchkata-cost-") as tmp:
        project = copy_project(Path(tmp) / "project")
        config = with_config(project, "cost.yaml", scale=scale, exercises=list(exercises))
        start = time.perf_counter()
        run = snakemake(project, "all", "--cores", str(cores), "--configfile", str(config))
        wall = time.perf_counter() - start
        if run.returncode != 0:
            raise RuntimeError(f"snakemake failed:\n{run.output[-3000:]}")
        start = time.perf_counter()
        snakemake(project, "all", "-n", "--configfile", str(config))
        up_to_date = time.perf_counter() - start
        runs = {str(p.parent.relative_to(project / "results")): read_json(p)
                for p in sorted(project.glob("results/*/*/*/seed-*/bench.json"))}
    compute = sum(b["run_s"] for b in runs.values())
    return {"exercises": list(exercises), "wall_s": wall, "runs_own_compute_s": compute,
            "overhead_s": wall - compute / cores, "up_to_date_dry_run_s": up_to_date,
            "per_run": {name: {"wall_s": b["wall_s"], "run_s": b["run_s"]} for name, b in runs.items()}}


def measure(exercises: list[str], scale: str = "smoke", cores: int = 2) -> dict:
    if len(exercises) < 2:
        raise ValueError("cost needs two exercises or more: it compares the first alone with all of them")
    first, everything = run_dag(exercises[:1], scale, cores), run_dag(exercises, scale, cores)
    per_exercise = (everything["overhead_s"] - first["overhead_s"]) / (len(exercises) - 1)
    fixed = first["overhead_s"] - per_exercise
    overheads = {k: b["wall_s"] - b["run_s"] for k, b in everything["per_run"].items()}
    forked = [v for k, v in overheads.items() if "/runs/" in k]
    fresh = [v for k, v in overheads.items() if "/rerun/" in k]

    return {
        "scale": scale, "cores": cores, "first": first, "all": everything,
        "run_job_overhead_s": {"forked_median": statistics.median(forked), "forked_max": max(forked),
                               "fresh_rerun_median": statistics.median(fresh)},
        "fixed_overhead_s": fixed, "per_exercise_overhead_s": per_exercise,
        "projected_catalog_overhead_s": fixed + per_exercise * CATALOG_SIZE,
    }


def report(result: dict) -> str:
    o, everything, first = result["run_job_overhead_s"], result["all"], result["first"]
    lines = [f"scale {result['scale']}, {result['cores']} cores, from empty results:"]
    for dag in (first, everything):
        lines.append(f"  {', '.join(dag['exercises']):<28} DAG {dag['wall_s']:6.1f} s, runs' own work "
                     f"{dag['runs_own_compute_s']:5.1f} s, overhead {dag['overhead_s']:5.1f} s, "
                     f"up-to-date dry run {dag['up_to_date_dry_run_s']:.2f} s")
    lines += [f"  run job overhead: {o['forked_median']:.2f} s median forked (max {o['forked_max']:.2f}, the runs "
              f"that waited for the warm process), {o['fresh_rerun_median']:.2f} s a determinism rerun (own process)",
              f"  overhead: {result['fixed_overhead_s']:.1f} s once per call + {result['per_exercise_overhead_s']:.2f} s "
              f"per exercise -> {result['projected_catalog_overhead_s'] / 60:.1f} min for {CATALOG_SIZE} exercises"]
    lines += [f"    {name:<36} wall {b['wall_s']:6.2f} s  own {b['run_s']:6.2f} s"
              for name, b in everything["per_run"].items()]
    return "\n".join(lines)


def measured_run_s(exercise_id: str, results: Path) -> float | None:
    """Median wall time of the exercise's reference runs at the default scale, where it has run here."""
    walls = [read_json(p)["wall_s"] for p in (results / exercise_id / "reference-default").glob("*/seed-*/bench.json")]
    return statistics.median(walls) if walls else None


def pack(durations: list[float], slots: int) -> float:
    """Makespan of the jobs on `slots` parallel slots, longest first onto the least loaded slot."""
    loads = [0.0] * slots
    for d in sorted(durations, reverse=True):
        heapq.heapreplace(loads, loads[0] + d)
    return max(loads)


def project_main_job(catalog: Catalog, results: Path = ROOT / "results", cores: int = 8,
                     config: Path = ROOT / "config.yaml") -> dict:
    preset = yaml.safe_load(config.read_text())["scales"]["default"]
    slots = max(1, cores // preset["threads"])
    runs = len(preset["variance_seeds"]) + 1  # the seeds, and the result seed's determinism rerun
    per_run, over = {}, {}
    for e in catalog.exercises.values():
        measured = measured_run_s(e.id, results) if e.done else None
        per_run[e.id] = measured if measured is not None else float(e.run_s)
        if measured is not None and measured > e.run_s:
            over[e.id] = {"measured_s": measured, "allotted_s": e.run_s}
    makespan = pack([t for t in per_run.values() for _ in range(runs)], slots)
    return {"cores": cores, "slots": slots, "runs_per_exercise": runs,
            "measured": sorted(e for e in per_run if measured_run_s(e, results) is not None),
            "total_run_s": runs * sum(per_run.values()), "projected_s": makespan, "budget_s": MAIN_JOB_BUDGET_S,
            "over_allotment": over, "per_run_s": per_run}


def main_job_report(result: dict) -> str:
    largest = sorted(result["per_run_s"].items(), key=lambda kv: -kv[1])[:8]
    lines = [f"main job at the default scale, {result['cores']} cores = {result['slots']} run slots, "
             f"{result['runs_per_exercise']} runs per exercise, {len(result['per_run_s'])} exercises "
             f"({len(result['measured'])} measured here, the rest at their allotment):",
             f"  {result['total_run_s'] / 3600:.2f} h of runs -> {result['projected_s'] / 3600:.2f} h projected "
             f"(budget {result['budget_s'] / 3600:.0f} h)",
             "  longest runs: " + ", ".join(f"{k} {v:.0f} s" for k, v in largest)]
    lines += [f"  OVER ALLOTMENT {k}: measured {v['measured_s']:.0f} s a run, allotted {v['allotted_s']} s"
              for k, v in result["over_allotment"].items()]
    return "\n".join(lines)


def seconds_per_test_file(junit: Path) -> dict[str, float]:
    """Seconds per test file (its tests' durations summed) from a pytest JUnit report."""
    import xml.etree.ElementTree as ElementTree

    seconds: dict[str, float] = {}
    for case in ElementTree.parse(junit).iter("testcase"):
        parts = case.get("classname", "").split(".")  # tests.exercises.test_a01[.TestClass]
        module = next((i for i, part in enumerate(parts) if part.startswith("test_")), len(parts) - 1)
        path = "/".join(parts[:module + 1])
        seconds[path] = seconds.get(path, 0.0) + float(case.get("time", 0))
    return seconds


def measure_tests(catalog: Catalog, workers: int = 2, pytest_args: tuple[str, ...] = ()) -> dict:
    """Run the test command once with a JUnit report; its wall time, and its projection to the whole catalog."""
    import subprocess
    import sys

    with tempfile.TemporaryDirectory(prefix="torchkata-cost-tests-") as tmp:
        junit = Path(tmp) / "junit.xml"
        start = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "pytest", "-n", str(workers), "--dist", "loadgroup", "-q",
                              "-p", "no:cacheprovider", f"--junitxml={junit}", *pytest_args], cwd=ROOT,
                             capture_output=True, text=True)
        wall = time.perf_counter() - start
        if not junit.is_file():
            raise RuntimeError(f"pytest wrote no report (exit {run.returncode}):\n{run.stdout[-3000:]}{run.stderr[-2000:]}")
        files = seconds_per_test_file(junit)
    return project_tests(catalog, files, wall, workers) | {"exit_code": run.returncode, "tail": run.stdout[-400:]}


def project_tests(catalog: Catalog, files: dict[str, float], wall: float, workers: int) -> dict:
    """The test command's time at the whole catalog, from one measured run (`files`: seconds per test file)."""
    exercise_files = {e.id: f"tests/exercises/test_{e.slug}" for e in catalog.exercises.values()}
    measured = {eid: files[f] for eid, f in exercise_files.items() if f in files}
    others = sum(t for f, t in files.items() if f not in exercise_files.values())
    mean = statistics.mean(measured.values()) if measured else EXERCISE_TESTS_BUDGET_S
    missing = len(exercise_files) - len(measured)
    # each exercise still to come adds its test file's time, spread over the workers like those measured
    return {"workers": workers, "wall_s": wall, "pipeline_tests_s": others, "exercise_tests_s": measured,
            "exercise_mean_s": mean, "over_budget": {k: v for k, v in measured.items() if v > EXERCISE_TESTS_BUDGET_S},
            "projected_s": wall + missing * mean / workers, "budget_s": TEST_COMMAND_BUDGET_S}


def tests_report(result: dict) -> str:
    slowest = sorted(result["exercise_tests_s"].items(), key=lambda kv: -kv[1])[:8]
    lines = [f"the test command on {result['workers']} workers: {result['wall_s']:.0f} s of wall time "
             f"(exit {result['exit_code']}), {len(result['exercise_tests_s'])} exercises' test files "
             f"(mean {result['exercise_mean_s']:.1f} s each) and {result['pipeline_tests_s']:.0f} s of the others' tests",
             f"  projected to the catalog's exercises: {result['projected_s'] / 60:.1f} min "
             f"(budget {result['budget_s'] / 60:.0f} min)",
             "  slowest exercise files: " + ", ".join(f"{k} {v:.1f} s" for k, v in slowest)]
    lines += [f"  OVER {EXERCISE_TESTS_BUDGET_S:.0f} s: {k} {v:.1f} s" for k, v in result["over_budget"].items()]
    return "\n".join(lines)
