"""A slice of the DAG through workflow/profiles/slurm on a real one-node SLURM cluster started for the test
(tests/cluster/local_slurm.py): the jobs go through sbatch, and what they write equals a local run's, byte
for byte.

Needs root, Debian's `slurmctld slurmd slurm-client munge`, and the executor plugin in build/slurm-plugin
(envs/requirements-slurm.txt); skips, saying how to get what is missing, otherwise.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest

from local_slurm import LocalSlurm, missing_requirements
from torchkata.pipeline.projects import copy_project, job_environment, snakemake
from torchkata.pipeline.catalog import ROOT

pytestmark = pytest.mark.slow

PLUGIN = ROOT / "build" / "slurm-plugin"
PLUGIN_INSTALL = (f"{sys.executable} -m pip install --no-deps --upgrade --target {PLUGIN} "
                  f"-r {ROOT / 'envs' / 'requirements-slurm.txt'}")
# the slice, at scale smoke: a01 run twice with the same seed and checked for determinism, a41 (which
# loads the C++ extension) once. The runs go through SLURM; mlflow_init and determinism are bookkeeping,
# run in Snakemake's own process (localrules)
TARGETS = ["results/a01/reference-smoke/determinism.json", "results/a41/reference-smoke/runs/seed-0/metrics.json"]
EXERCISE_RUNS = 3
JOBS = EXERCISE_RUNS
THREADS = 1  # config.yaml's scales.smoke.threads
# what may differ between two runs of the same seed: timings, MLflow run ids, logs, the store itself
NOT_COMPARED = {"bench.json", "run.json", ".snakemake_timestamp"}
NOT_COMPARED_DIRS = {"logs", "mlflow"}
SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (.+?)\)\.")


def _plugin_missing() -> str | None:
    modules = ("snakemake_executor_plugin_slurm", "snakemake_executor_plugin_slurm_jobstep")
    absent = [m for m in modules if not (PLUGIN / m / "__init__.py").is_file()]
    if absent:
        return f"the SLURM executor plugin is not in {PLUGIN} ({', '.join(absent)}): {PLUGIN_INSTALL}"
    return None


@pytest.fixture(scope="module")
def cluster():
    """Started for this module, stopped and removed after it, passed or not. A short folder under /tmp:
    the munge socket's path must fit in a sockaddr."""
    reason = missing_requirements() or _plugin_missing()
    if reason:
        pytest.skip(reason)
    # MinJobAge: the plugin needs >= 3 x its first status check (set to 5 s below); 10 minutes also keeps
    # every job of the run in squeue for the checks after it
    with tempfile.TemporaryDirectory(prefix="torchkata-slurm-") as root, \
            LocalSlurm(Path(root), cpus=2, partition="debug", min_job_age=600) as slurm:
        yield slurm


def _compared_files(project: Path) -> dict[str, bytes]:
    results = project / "results"
    files = {}
    for path in sorted(results.rglob("*")):
        rel = path.relative_to(results)
        if path.is_file() and path.name not in NOT_COMPARED and rel.parts[0] not in NOT_COMPARED_DIRS:
            files[rel.as_posix()] = path.read_bytes()
    return files


def _slurm_jobs(cluster: LocalSlurm) -> dict[str, dict]:
    """Every job the controller still knows (MinJobAge): id -> name, comment, CPUs, state."""
    out = cluster.client("squeue", "--states=all", "--noheader", "--format=%i|%j|%k|%C|%T").stdout
    jobs = {}
    for line in out.splitlines():
        job_id, name, comment, cpus, state = line.strip().split("|")
        jobs[job_id] = {"name": name, "comment": comment, "cpus": int(cpus), "state": state}
    return jobs


def test_slice_through_slurm_equals_local_run(cluster, tmp_path_factory, smoke_project):
    local, local_config = smoke_project  # the same config, run locally (`all`: a superset of TARGETS)
    on_slurm = copy_project(tmp_path_factory.mktemp("on-slurm"))
    shutil.copy2(local_config, on_slurm / local_config.name)

    # MLflow stays on config.yaml's SQLite store: each copy has its own, and the jobs run on this machine
    env = job_environment(cluster.env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGIN), env.get("PYTHONPATH")]))
    start = time.perf_counter()
    run = snakemake(
        on_slurm, *TARGETS, "--profile", "workflow/profiles/slurm",
        "--configfile", str(on_slurm / local_config.name),
        # test-only: poll a small cluster every few seconds (the plugin waits 40 s by default), keep the
        # per-job SLURM logs to check them, and fail rather than retry
        "--slurm-init-seconds-before-status-checks", "5", "--slurm-keep-successful-logs", "--retries", "0",
        env=env, timeout=900,
    )
    slurm_seconds = time.perf_counter() - start
    assert run.returncode == 0, run.output[-5000:] + "\n" + cluster.logs()

    # every job of the DAG went through sbatch, once: the plan's job total, the headers of the jobs Snakemake
    # ran remotely ("rule X:"; local ones print "localrule X:"), the submissions and their SLURM job ids agree
    planned = int(re.search(r"^total\s+(\d+)$", run.output, flags=re.MULTILINE).group(1))
    remote = re.findall(r"^rule \w+:$", run.output, flags=re.MULTILINE)
    local_jobs = re.findall(r"^localrule \w+:$", run.output, flags=re.MULTILINE)
    submissions = SUBMITTED.findall(run.output)
    submitted = {slurm_id for _, slurm_id, _ in submissions}
    assert len(submissions) == len(remote) == len(submitted) == planned - len(local_jobs) == JOBS, \
        run.output[-5000:]

    # the controller ran exactly those jobs, each with this run's name, to completion; exercise jobs got the
    # CPUs of the scale's `threads` (CPU results are bitwise repeatable only for the same thread count)
    known = _slurm_jobs(cluster)
    assert set(known) == submitted, (known, submitted)
    assert "Falling back to 'sacct'" not in run.output  # job states came from squeue
    assert all(job["state"] == "COMPLETED" for job in known.values()), known
    assert len({job["name"] for job in known.values()}) == 1, known
    exercise_jobs = [job for job in known.values() if job["comment"].startswith("rule_exercise_")]
    assert len(exercise_jobs) == EXERCISE_RUNS
    assert all(job["cpus"] == THREADS for job in exercise_jobs), exercise_jobs
    for run_json in on_slurm.glob("results/*/*/*/seed-*/run.json"):
        assert json.loads(run_json.read_text())["params"]["threads"] == THREADS, run_json
    for job, slurm_id, log in submissions:  # .snakemake/slurm_logs/rule_*/*/<id>.log
        assert Path(log).name == f"{slurm_id}.log" and (on_slurm / log).is_file(), (job, log)

    # the same bytes as the local run
    expected, got = _compared_files(local), _compared_files(on_slurm)
    assert set(got) <= set(expected), sorted(set(got) - set(expected))
    different = [name for name in got if expected[name] != got[name]]
    assert not different, different
    metrics = [name for name in got if name.endswith("/metrics.json")]
    assert len(metrics) == EXERCISE_RUNS, metrics

    print(f"\nSLURM run: {len(submitted)} jobs through sbatch (SLURM job ids "
          f"{min(map(int, submitted))}-{max(map(int, submitted))}), "
          f"wall {slurm_seconds:.0f} s; {len(got)} files equal to the local run's byte for byte: "
          f"{', '.join(sorted(got))}")
