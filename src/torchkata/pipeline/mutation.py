"""Mutation testing of the graders: does an exercise's grading reject a wrong solution?

`mutate("a01")` makes the mutants of the exercise's reference module (cosmic-ray's operators: each mutant is
the reference changed in one place), puts each one in place of the learner's starter, and grades it with the
exercise's own starter grading, `pytest --impl starter tests/exercises/test_<id>.py`. A mutant that the
grading rejects is killed; one that passes every check survived: a wrong solution that would get full marks,
that is, a missing test. So the score measures the grader, not the reference.

    score = (killed + timed out) / (mutants - listed equivalents)

A mutant whose grading runs past the timeout counts as rejected (a learner's run that never ends is not a
pass), and is reported apart. Equivalent mutants (they cannot change behaviour, or change only what the
exercise leaves to the learner) are listed, each with its reason, in the reviewed file
`problems/<id>/equivalent_mutants.yaml`:

    - id: ReplaceComparisonOperator_Gt_NotEq@19:15   # operator@line:column (from 0), as a survivor is reported
      reason: one line on why no grader can or should tell it apart
    - place: src/torchkata/tensors/softmax.py:19        # or the survivor's place and change, verbatim
      change: "if x.dim() > 0 and x.shape[dim] == 0: -> if x.dim() > 0 and x.shape[dim] <= 0:"
      reason: ...

A listed mutant that no longer exists (the reference changed) is an error that names it: review the file
again. Listed mutants are not run.

Mutants that change nothing Python runs are left out and counted apart: invalid code that cosmic-ray makes of
`**` unpacking or a bare `*` (`incompetent`), and changes to annotations under `from __future__ import
annotations`, which stay strings (`in_annotations`).

How it runs, and why so: cosmic-ray only makes the mutants (its parso-based operators, recorded in its own
SQLite session, so `cr-report SESSION` reads a kept session). Its own runner starts the test command afresh
for every mutant, which pays `import torch` each time (4.8 s a mutant on a01 here). Instead one server process
imports torch, pytest and the project's test-time modules once and runs no torch op; every mutant is graded
in a child forked from it (a fresh pytest run in a fresh process; the mutant is loaded from its own file as
the learner's starter is) with its own timeout. The server is a new process, never the caller: a process
that has run torch ops can deadlock a forked child in its thread pools.
"""
from __future__ import annotations

import argparse
import ast
import difflib
import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import yaml

from torchkata.pipeline.catalog import ROOT, CatalogError, load_catalog

TOOL = "cosmic-ray"
EQUIVALENTS_FILE = "equivalent_mutants.yaml"
# Imported once by the server (each child then finds them loaded); what is not installed is left out. torch._dynamo:
# tests/conftest.py imports it for every grading (2.7 s).
PRELOAD = ("numpy", "torch", "torch._dynamo", "pytest", "_pytest.python", "_pytest.fixtures", "torchkata.pipeline.catalog",
           "torchkata.pipeline.extensions", "torchkata.pipeline.tracking")
DEFAULT_JOBS = 2
PYTEST_ARGS = ("--impl", "starter", "-x", "-q", "--no-header", "-p", "no:cacheprovider")


class MutationError(RuntimeError):
    """The mutants cannot be graded as asked: a stale equivalents listing, a grader that rejects the reference,
    a missing tool."""


@dataclass(frozen=True)
class Mutant:
    id: str  # stable while the reference's lines stay put: operator@line:column[/k]
    job_id: str  # cosmic-ray's, in its session
    place: str  # file:line, the file relative to the project
    change: str  # the changed line(s): before -> after
    function: str | None
    source: str  # the whole mutated module
    compiles: bool  # False: cosmic-ray 8.7 takes `**` unpacking and a bare `*` in a signature for binary
    # operators and makes invalid code of them; such a mutant tests nothing and is left out (`incompetent`)
    in_annotation: bool = False  # changes an annotation that Python never evaluates (`from __future__ import
    # annotations`): not a change of the program; left out (`in_annotations`)


# --- making the mutants (cosmic-ray) ---------------------------------------------------------------------

def tool_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(TOOL)
    except PackageNotFoundError:
        raise MutationError(f"{TOOL} is not installed: pip install -r envs/requirements-cpu.txt") from None


def _change(original: str, mutated: str) -> tuple[int, str]:
    """(first changed line, 'before -> after') from the two sources."""
    old, new = original.splitlines(), mutated.splitlines()
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if tag != "equal":
            before = " ".join(line.strip() for line in old[i1:i2])
            after = " ".join(line.strip() for line in new[j1:j2])
            return i1 + 1, f"{before} -> {after}"
    raise AssertionError("a mutant that changes nothing")


def generate(module_path: Path, session: Path, root: Path = ROOT) -> list[Mutant]:
    """Every mutant of `module_path` that cosmic-ray's operators make, recorded in the SQLite `session`."""
    tool_version()
    from cosmic_ray.commands.init import init
    from cosmic_ray.mutating import mutate_code
    from cosmic_ray.plugins import get_operator
    from cosmic_ray.work_db import WorkDB, use_db

    original = module_path.read_text(encoding="utf-8")
    try:
        shown = module_path.resolve().relative_to(root.resolve())
    except ValueError:
        shown = module_path
    made = []  # (operator@line:column, spec, mutated source)
    with use_db(str(session), WorkDB.Mode.create) as db:
        init([module_path], db, {})
        for item in db.work_items:
            (spec,) = item.mutations
            mutated = mutate_code(original, get_operator(spec.operator_name)(**spec.operator_args), spec.occurrence)
            if mutated is not None and mutated != original:
                base = f"{spec.operator_name.removeprefix('core/')}@{spec.start_pos[0]}:{spec.start_pos[1]}"
                made.append((base, item.job_id, spec, mutated))
    made.sort(key=lambda m: (m[2].start_pos, m[0], m[2].occurrence))
    annotations = unevaluated_annotations(original)
    total = {base: sum(b == base for b, *_ in made) for base, *_ in made}
    mutants, seen = [], {}
    for base, job_id, spec, mutated in made:
        k = seen[base] = seen.get(base, -1) + 1  # a position with several mutants (a number: +1, -1): /0, /1
        line, change = _change(original, mutated)
        try:
            with warnings.catch_warnings():  # `x is 1.0` and the like: the mutant is meant to be wrong
                warnings.simplefilter("ignore", SyntaxWarning)
                compile(mutated, str(module_path), "exec", dont_inherit=True)
            compiles = True
        except SyntaxError:
            compiles = False
        position = tuple(spec.start_pos)
        mutants.append(Mutant(id=base if total[base] == 1 else f"{base}/{k}", job_id=job_id, place=f"{shown}:{line}",
                              change=change, function=spec.definition_name, source=mutated, compiles=compiles,
                              in_annotation=any(start <= position < end for start, end in annotations)))
    return mutants


def unevaluated_annotations(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) as (line, column) of every annotation in `source` that Python never evaluates: all of them
    under `from __future__ import annotations` (they stay strings), none otherwise."""
    tree = ast.parse(source)
    if not any(isinstance(node, ast.ImportFrom) and node.module == "__future__"
               and any(alias.name == "annotations" for alias in node.names) for node in tree.body):
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            found += [arg.annotation for arg in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg)
                      if arg is not None] + [node.returns]
        elif isinstance(node, ast.AnnAssign):
            found.append(node.annotation)
    return [((n.lineno, n.col_offset), (n.end_lineno, n.end_col_offset)) for n in found if n is not None]


def _record(session: Path, outcomes: dict[str, dict], mutants: list[Mutant]) -> None:
    """Write the outcomes into cosmic-ray's session, so its own reports (cr-report, cr-html) read them."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult

    with use_db(str(session), WorkDB.Mode.open) as db:
        for m in mutants:
            o = outcomes.get(m.id)
            if o is None:  # a listed equivalent, or invalid code: not run
                db.set_result(m.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED))
                continue
            test = TestOutcome.SURVIVED if o["outcome"] == "survived" else TestOutcome.KILLED
            output = "timeout" if o["outcome"] == "timed_out" else (o.get("killed_by") or "")
            db.set_result(m.job_id, WorkResult(worker_outcome=WorkerOutcome.NORMAL, test_outcome=test, output=output))


# --- the reviewed list of equivalent mutants --------------------------------------------------------------

def load_equivalents(path: Path, mutants: list[Mutant]) -> dict[str, str]:
    """{mutant id: reason} from the reviewed file; a listing that matches no mutant is an error naming it."""
    if not path.is_file():
        return {}
    entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if not isinstance(entries, list):
        raise MutationError(f"{path}: expected a list of {{id or place+change, reason}}")
    by_id = {m.id: m for m in mutants}
    by_place = {(m.place, m.change): m for m in mutants}
    listed: dict[str, str] = {}
    for n, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or set(entry) - {"id", "place", "change", "reason"}:
            raise MutationError(f"{path}: entry {n} must have only id, place, change and reason: {entry!r}")
        reason = entry.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise MutationError(f"{path}: entry {n} ({entry.get('id') or entry.get('place')}) needs a reason")
        if "id" in entry:
            mutant = by_id.get(str(entry["id"]))
            name = f"id {entry['id']}"
        elif "place" in entry and "change" in entry:
            mutant = by_place.get((str(entry["place"]), str(entry["change"])))
            name = f"{entry['place']}: {entry['change']}"
        else:
            raise MutationError(f"{path}: entry {n} needs an id, or a place and a change")
        if mutant is None:
            raise MutationError(f"{path}: the listed equivalent mutant {name} is not a mutant of the reference any "
                                "more (did the reference change?); review the listing")
        if mutant.id in listed:
            raise MutationError(f"{path}: mutant {mutant.id} is listed twice")
        listed[mutant.id] = reason.strip()
    return listed


# --- the server: import once, fork a child per mutant ------------------------------------------------------

def _die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent ends, so that no mutant (one that loops forever, say) outlives
    an interrupted run. Elsewhere a no-op."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _preload(names) -> None:
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def _warm_up(job: dict) -> None:
    """Collect the exercise's tests once: pytest's plugins, the conftest and the test module (its asserts
    rewritten) are then imported in every child. No test runs, so no torch op (the children fork from here)."""
    import pytest

    os.chdir(job["root"])
    quiet = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(1), os.dup(2)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    try:
        pytest.main([job["test_file"], *PYTEST_ARGS, "--collect-only"])
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(quiet)


def _reference_imports(path: Path) -> list[str]:
    """The absolute imports at the top of the reference module (torchvision, ...): loaded once by the server."""
    names = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module != "__future__":
            names.append(node.module)
    return names


def _grade_in_child(job: dict, starter: str, out: Path, order: dict[str, float]) -> None:
    """In a forked child: grade `starter` as the learner's starter file of the exercise; never returns.

    `order`: the clean run's seconds per test; the quickest run first (-x stops at the first failure, and the
    tests are independent, each seeded by the conftest), so that a mutant is rejected as early as it can be.
    """
    code = 3
    try:
        os.setpgid(0, 0)  # a timeout kills the child and whatever it started
        _die_with_parent()
        log = os.open(str(out.with_suffix(".log")), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        sys.dont_write_bytecode = True
        os.chdir(job["root"])
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(job["threads"])
        from torchkata.pipeline import catalog

        own = catalog.Exercise.starter_path

        def starter_path(exercise):
            return Path(starter) if exercise.id == job["exercise"] else own.fget(exercise)

        catalog.Exercise.starter_path = property(starter_path)
        import pytest

        failed: list[str] = []
        durations: dict[str, float] = {}

        class Record:
            @staticmethod
            @pytest.hookimpl(trylast=True)
            def pytest_collection_modifyitems(items):
                if order:
                    items.sort(key=lambda item: order.get(item.nodeid, float("inf")))

            @staticmethod
            def pytest_runtest_logreport(report):
                durations[report.nodeid] = durations.get(report.nodeid, 0.0) + report.duration
                if report.failed:
                    failed.append(report.nodeid)

            @staticmethod
            def pytest_collectreport(report):
                if report.failed:
                    failed.append(report.nodeid or "collection")

        args = [job["test_file"], *PYTEST_ARGS, f"--basetemp={out.with_suffix('.tmp')}"]
        code = int(pytest.main(args, plugins=[Record()]))
        out.write_text(json.dumps({"exit": code, "failed": failed, "durations": durations}))
    except BaseException as err:  # noqa: BLE001 - the child must end here, whatever happened
        try:
            out.write_text(json.dumps({"exit": 3, "failed": [f"harness: {err!r}"]}))
        except Exception:  # noqa: BLE001
            pass
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _collect(status: int, out: Path, timed_out: bool, seconds: float) -> dict:
    result = {"seconds": round(seconds, 3)}
    if timed_out:
        return {**result, "outcome": "timed_out"}
    try:
        report = json.loads(out.read_text())
    except (OSError, ValueError):
        report = {"exit": None, "failed": []}
    if os.WIFSIGNALED(status):
        return {**result, "outcome": "killed", "killed_by": f"signal {os.WTERMSIG(status)}"}
    exit_code = os.WEXITSTATUS(status)
    if exit_code == 0:
        return {**result, "outcome": "survived", "durations": report.get("durations", {})}
    killed_by = report["failed"][0] if report["failed"] else f"exit {exit_code}"
    return {**result, "outcome": "killed", "killed_by": killed_by, "exit": exit_code}


def _run_children(job: dict, tasks: list[tuple[str, str]], timeout_s: float, jobs: int,
                  order: dict[str, float] | None = None) -> dict[str, dict]:
    """Grade each (name, starter file) in a forked child, `jobs` at a time; {name: outcome}."""
    pending, running, outcomes = list(tasks), {}, {}
    while pending or running:
        while pending and len(running) < jobs:
            name, starter = pending.pop(0)
            out = Path(starter).with_name("outcome.json")  # beside the graded file, in its own folder
            pid = os.fork()
            if pid == 0:
                _grade_in_child(job, starter, out, order or {})
            running[pid] = (name, out, time.monotonic())
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            now = time.monotonic()
            for child, (name, out, start) in list(running.items()):
                if now - start > timeout_s:
                    try:
                        os.killpg(child, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    os.waitpid(child, 0)
                    del running[child]
                    outcomes[name] = _collect(0, out, True, now - start)
            time.sleep(0.02)
            continue
        if pid in running:
            name, out, start = running.pop(pid)
            outcomes[name] = _collect(status, out, False, time.monotonic() - start)
    return outcomes


def serve(job_path: Path) -> int:
    """The server's main: grade the clean reference, then every mutant; write the outcomes beside the job."""
    _die_with_parent()
    job = json.loads(Path(job_path).read_text())
    work = Path(job_path).parent
    _preload(job["preload"])
    if job["warm_up"]:
        _warm_up(job)
    # What is loaded now, every child inherits: out of the collector's sight, or each child's garbage collections
    # (pytest runs gc.collect as it ends) walk torch's whole object graph again (0.65 s of a 1.6 s child on m3-deep-3)
    gc.freeze()
    clean = _run_children(job, [("clean", job["clean"])], job["clean_timeout_s"], 1)["clean"]
    result = {"clean": clean}
    # a mutant costs about what the clean grading did: past the time left, grade none (a sample's budget)
    estimate = clean["seconds"] * len(job["mutants"]) / job["jobs"]
    if clean["outcome"] == "survived" and job.get("budget_s") and estimate > job["budget_s"]:
        result["over_budget"] = {"estimate_s": round(estimate, 1), "budget_s": job["budget_s"]}
    elif clean["outcome"] == "survived":  # the reference passes its own grading
        timeout = job["timeout_s"] or max(10.0, 3 * clean["seconds"] + 5)
        result["timeout_s"] = timeout
        order = clean.pop("durations") if job["quick_first"] else {}
        result["mutants"] = _run_children(job, [tuple(t) for t in job["mutants"]], timeout, job["jobs"], order)
        for outcome in result["mutants"].values():
            outcome.pop("durations", None)
    else:
        log = Path(job["clean"]).with_name("outcome.log")
        result["clean_log"] = log.read_text(errors="replace")[-3000:] if log.is_file() else ""
    (work / "outcomes.json").write_text(json.dumps(result))
    gc.unfreeze()  # so that the server's own exit frees them as usual
    return 0


# --- the public entry --------------------------------------------------------------------------------------

def reference_file(reference: str, root: Path = ROOT) -> Path:
    """The reference module's file, found without importing it."""
    parts = reference.split(".")
    for candidate in (root / "src" / Path(*parts)).with_suffix(".py"), root / "src" / Path(*parts) / "__init__.py":
        if candidate.is_file():
            return candidate
    import importlib.util

    spec = importlib.util.find_spec(reference)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise MutationError(f"cannot find the Python source of the reference module {reference}")
    return Path(spec.origin)


def mutate(exercise_id: str, *, timeout_s: float | None = None, jobs: int | None = None, root: Path = ROOT,
           session: Path | None = None, preload: tuple[str, ...] | None = None, warm_up: bool = True,
           quick_first: bool = True, budget_s: float | None = None) -> dict | None:
    """Mutation score of exercise `exercise_id`'s grader: its reference's mutants graded as the learner's starter.

    timeout_s: per mutant (default: 3x the clean grading + 5 s, at least 10 s); jobs: mutants graded at once
    (default 2); session: keep cosmic-ray's SQLite session there (`cr-report SESSION`); root: the project
    (tests point it at a small fake one); preload: the modules the server imports once (default PRELOAD
    and the reference's own imports); warm_up: collect the tests once in the server (pytest's plugins, the
    conftest and the test module are then imported in every child: about 1 s a mutant here); quick_first:
    run a mutant's tests quickest first, as the clean run timed them (the verdict is the same; a rejected
    mutant is rejected sooner); budget_s: grade nothing, and return None, when the mutants would take longer
    (estimated from the clean grading's time).
    """
    started = time.monotonic()
    exercise = load_catalog(root / "catalog.yaml").get(exercise_id)
    if not exercise.reference:
        raise CatalogError(f"{exercise_id} is {exercise.status}: it has no reference solution to mutate")
    module_path = reference_file(exercise.reference, root)
    test_file = root / "tests" / "exercises" / f"test_{exercise.slug}.py"
    if not test_file.is_file():
        raise MutationError(f"{exercise_id}: no grading tests at {test_file}")
    jobs = max(1, jobs or DEFAULT_JOBS)
    with tempfile.TemporaryDirectory(prefix=f"torchkata-mutate-{exercise.slug}-") as tmp:
        work = Path(tmp)
        session_path = Path(session) if session else work / "session.sqlite"
        session_path.parent.mkdir(parents=True, exist_ok=True)
        made = generate(module_path, session_path, root)
        mutants = [m for m in made if m.compiles and not m.in_annotation]
        equivalents = load_equivalents(root / "problems" / exercise.id / EQUIVALENTS_FILE, mutants)
        clean = work / "clean" / "starter.py"
        clean.parent.mkdir()
        clean.write_text(module_path.read_text(encoding="utf-8"), encoding="utf-8")
        tasks = []
        for n, m in enumerate(mutants):
            if m.id in equivalents:
                continue
            path = work / f"m{n}" / "starter.py"  # the learner's file name, in a folder of its own
            path.parent.mkdir()
            path.write_text(m.source, encoding="utf-8")
            tasks.append((m.id, str(path)))
        job = {"root": str(root), "exercise": exercise.id, "test_file": str(test_file), "clean": str(clean),
               "mutants": tasks, "timeout_s": timeout_s, "clean_timeout_s": max(120.0, 3 * (timeout_s or 0)),
               "jobs": jobs, "threads": max(1, (os.cpu_count() or 1) // jobs), "budget_s": budget_s,
               "warm_up": warm_up, "quick_first": quick_first, "preload": list(PRELOAD if preload is None else preload)
               + (_reference_imports(module_path) if preload is None else [])}
        job_path = work / "job.json"
        job_path.write_text(json.dumps(job))
        server = subprocess.run([sys.executable, "-m", "torchkata.pipeline.mutation", "serve", str(job_path)],
                                cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        outcome_path = work / "outcomes.json"
        if server.returncode != 0 or not outcome_path.is_file():
            raise MutationError(f"the mutation server failed (exit {server.returncode}):\n{server.stdout[-3000:]}")
        result = json.loads(outcome_path.read_text())
        if "over_budget" in result:
            return None
        if result["clean"]["outcome"] != "survived":
            raise MutationError(f"{exercise_id}: the grading rejects the unmutated reference ({result['clean']}), "
                                f"so it cannot measure anything:\n{result.get('clean_log', '')}")
        outcomes = result["mutants"]
        _record(session_path, outcomes, made)
    seconds = time.monotonic() - started
    graded = [m for m in mutants if m.id not in equivalents]
    by = {kind: [m for m in graded if outcomes[m.id]["outcome"] == kind] for kind in ("killed", "survived", "timed_out")}
    denominator = len(mutants) - len(equivalents)

    def shown(m: Mutant, **extra) -> dict:
        return {"id": m.id, "place": m.place, "change": m.change, "function": m.function, **extra}

    return {
        "exercise": exercise.id,
        "tool": TOOL,
        "tool_version": tool_version(),
        "mutants": len(mutants),
        "killed": len(by["killed"]),
        "survived": len(by["survived"]),
        "timed_out": len(by["timed_out"]),
        "equivalent": [shown(m, reason=equivalents[m.id]) for m in mutants if m.id in equivalents],
        "incompetent": sum(not m.compiles for m in made),  # made by the tool, but not valid Python: not counted
        "in_annotations": sum(m.compiles and m.in_annotation for m in made),  # never evaluated: not counted
        "score": round((len(by["killed"]) + len(by["timed_out"])) / denominator, 4) if denominator else 1.0,
        "seconds": round(seconds, 2),
        "seconds_per_mutant": round(seconds / len(graded), 3) if graded else 0.0,
        "clean_seconds": result["clean"]["seconds"],
        "timeout_s": result["timeout_s"],
        "jobs": jobs,
        "survivors": [shown(m) for m in by["survived"]],
        "timed_out_mutants": [shown(m) for m in by["timed_out"]],
        "killed_by": {m.id: outcomes[m.id].get("killed_by") for m in by["killed"]},
        "seconds_by_mutant": {m.id: outcomes[m.id]["seconds"] for m in graded},
    }


def report(result: dict) -> str:
    """The result for a person: the score, and each survivor with its place and change."""
    denominator = result["mutants"] - len(result["equivalent"])
    lines = [f"{result['exercise']}: mutation score {result['score']:.1%} "
             f"({result['killed'] + result['timed_out']}/{denominator} rejected; {result['mutants']} mutants, "
             f"{result['killed']} killed, {result['survived']} survived, {result['timed_out']} timed out, "
             f"{len(result['equivalent'])} listed equivalent) in {result['seconds']:.1f} s, "
             f"{result['seconds_per_mutant']:.2f} s a mutant ({result['tool']} {result['tool_version']})"]
    for s in result["survivors"]:
        lines.append(f"  survived  {s['place']}  {s['change']}   [{s['id']}]")
    for s in result["timed_out_mutants"]:
        lines.append(f"  timed out {s['place']}  {s['change']}   [{s['id']}]")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        return serve(Path(argv[1]))
    parser = argparse.ArgumentParser(prog="python -m torchkata.pipeline.mutation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ids", nargs="*", help="exercise ids")
    parser.add_argument("--all", action="store_true", help="every done exercise")
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS)
    parser.add_argument("--timeout-s", type=float)
    parser.add_argument("--json", type=Path, help="write the result here (one id), e.g. results/a01/mutation.json")
    parser.add_argument("--bar", type=float, default=0.0, help="exit 1 when a score is below this (0.9)")
    parser.add_argument("--sample", metavar="KEY", help="done exercises in an order that KEY (e.g. the commit) "
                        "rotates, as many as --budget allows (CI)")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds for --sample (default 300)")
    args = parser.parse_args(argv)
    if args.sample:
        return _sample(args.sample, args.budget, args.bar, args.jobs, args.timeout_s)
    if args.all:
        args.ids = [e.id for e in load_catalog().done()]
    if not args.ids:
        parser.error("name exercise ids, or --all")
    if args.json and len(args.ids) != 1:
        parser.error("--json takes one exercise id")
    failing = 0
    for exercise_id in args.ids:
        try:
            result = mutate(exercise_id, timeout_s=args.timeout_s, jobs=args.jobs)
        except (MutationError, CatalogError) as err:
            print(f"mutate: {err}", file=sys.stderr)
            return 2
        if args.json:
            from torchkata.pipeline.files import write_json

            write_json(args.json, result)
        print(report(result), flush=True)
        failing += result["score"] < args.bar
    return 1 if failing else 0



def _sample(key: str, budget_s: float, bar: float, jobs: int, timeout_s: float | None) -> int:
    """Grade done exercises from a place that `key` chooses onwards while the budget lasts; one whose mutants
    would outlast what is left is passed over (its clean grading timed it). Exit 1 below the bar, 2 if none fit."""
    from torchkata.pipeline.plan import rotated

    started, graded, failing = time.monotonic(), [], 0
    for exercise in rotated(load_catalog().done(), key):
        left = budget_s - (time.monotonic() - started)
        if left < 10:
            break
        result = mutate(exercise.id, timeout_s=timeout_s, jobs=jobs, budget_s=left)
        if result is None:
            print(f"{exercise.id}: passed over, its mutants would take longer than the {left:.0f} s left", flush=True)
            continue
        print(report(result), flush=True)
        graded.append(exercise.id)
        failing += result["score"] < bar
    print(f"sample {key[:12]}: {', '.join(graded) or 'none'} graded in {time.monotonic() - started:.0f} s "
          f"(budget {budget_s:.0f} s); {failing} below the bar {bar}")
    return 2 if not graded else 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
