"""torchkata: browse the catalog, grade your solutions, see your progress.

    torchkata list [--topic T] [--status S]   the exercises
    torchkata show ID                         an exercise's README, status and files
    torchkata check ID                        grade problems/ID/starter.py with the exercise's tests
    torchkata status                          your progress: the last grade of every exercise you checked
    torchkata readme                          rewrite README.md's progress table from the catalog
    torchkata dvc                             rewrite DVC's pipeline files from the catalog
    torchkata cost [IDS] [--scale S]          measure the pipeline's overhead and project it to the catalog
    torchkata cost --main                     project the main job from measured runs and the catalog's allotments
    torchkata cost --tests                    run the test command, and project its time to the catalog
    torchkata ci-sample KEY --budget S        done exercises whose default runs fit S seconds, rotating by KEY
    torchkata mutate ID... | --all [--bar B]  how strictly each exercise is graded: its mutation score
    torchkata doctor [--record]               does this CPU compute the committed results bit for bit?
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from torchkata.pipeline.catalog import ROOT, SCALES, CatalogError, load_catalog
from torchkata.pipeline.files import read_json, write_json, write_text

PROGRESS = ROOT / "results" / "learner" / "progress.json"
README = ROOT / "README.md"
TABLE_START, TABLE_END = "<!-- progress:start -->", "<!-- progress:end -->"


def test_file(exercise) -> Path:
    return ROOT / "tests" / "exercises" / f"test_{exercise.slug}.py"


def cmd_list(args) -> int:
    rows = [e for e in load_catalog().exercises.values()
            if (args.topic is None or e.topic == args.topic) and (args.status is None or e.status == args.status)]
    for e in rows:
        print(f"{e.id:<10} {e.status:<8} {e.topic:<15} {e.difficulty:<13} {e.title}")
    print(f"{len(rows)} exercises")
    return 0


def cmd_show(args) -> int:
    e = load_catalog().get(args.id)
    print(f"{e.id}: {e.title}\nstatus {e.status} · topic {e.topic} · {e.difficulty} · needs {', '.join(e.needs)}")
    print(f"seed: {e.seed['item']} of {e.seed['document']}")
    if e.done:
        print(f"reference: {e.reference}\nstarter:   {e.starter_path.relative_to(ROOT)}\n"
              f"tests:     {test_file(e).relative_to(ROOT)}\nresult:    results/{e.id}/reference-default/runs/seed-0/metrics.json")
    readme = e.problem_dir / "README.md"
    if readme.is_file():
        print("\n" + readme.read_text(encoding="utf-8"))
    return 0


def grade(exercise) -> dict:
    """Run the exercise's tests on the learner's starter; count outcomes from pytest's JUnit XML."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.xml"
        code = subprocess.call([sys.executable, "-m", "pytest", str(test_file(exercise)), "--impl", "starter",
                                "-q", "--no-header", "-p", "no:cacheprovider", f"--junitxml={report}"], cwd=ROOT)
        suite = ET.parse(report).getroot().find("testsuite")
    tests, failures, errors, skipped = (int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
    return {"passed": tests - failures - errors - skipped, "failed": failures + errors, "skipped": skipped,
            "solved": code == 0, "checked_at": time.strftime("%Y-%m-%dT%H:%M:%S")}


def cmd_check(args) -> int:
    e = load_catalog().get(args.id)
    if not e.done:
        print(f"{e.id} is {e.status}: it has no tests yet", file=sys.stderr)
        return 2
    result = grade(e)
    progress = read_json(PROGRESS) if PROGRESS.is_file() else {}
    progress[e.id] = result
    write_json(PROGRESS, progress)
    verdict = "solved" if result["solved"] else "not yet"
    print(f"\n{e.id}: {verdict} ({result['passed']} passed, {result['failed']} failed)")
    return 0 if result["solved"] else 1


def cmd_status(args) -> int:
    catalog = load_catalog()
    progress = read_json(PROGRESS) if PROGRESS.is_file() else {}
    gradable = catalog.done()
    for e in gradable:
        p = progress.get(e.id)
        state = "not checked" if p is None else ("solved" if p["solved"] else f"{p['passed']} passed, {p['failed']} failed")
        when = f"  ({p['checked_at']})" if p else ""
        print(f"{e.id:<10} {state:<24} {e.title}{when}")
    solved = sum(1 for e in gradable if progress.get(e.id, {}).get("solved"))
    print(f"{solved}/{len(gradable)} gradable exercises solved; {len(catalog.exercises) - len(gradable)} more planned")
    return 0


def progress_table() -> str:
    """Markdown: per topic, how many exercises are done, and which."""
    by_topic: dict[str, list] = {}
    for e in load_catalog().exercises.values():
        by_topic.setdefault(e.topic, []).append(e)
    lines = ["| topic | done | planned | done exercises |", "|---|---:|---:|---|"]
    for topic, exercises in sorted(by_topic.items()):
        done = [e.id for e in exercises if e.done]
        lines.append(f"| {topic} | {len(done)} | {len(exercises) - len(done)} | {', '.join(done)} |")
    total_done = sum(e.done for e in load_catalog().exercises.values())
    lines.append(f"| **all** | **{total_done}** | **{len(load_catalog().exercises) - total_done}** | |")
    return "\n".join(lines)


def readme_with_table(text: str) -> str:
    head, _, rest = text.partition(TABLE_START)
    _, _, tail = rest.partition(TABLE_END)
    return f"{head}{TABLE_START}\n{progress_table()}\n{TABLE_END}{tail}"


def cmd_readme(args) -> int:
    write_text(README, readme_with_table(README.read_text(encoding="utf-8")))
    print(f"updated the progress table in {README}")
    return 0


def cmd_dvc(args) -> int:
    from torchkata.pipeline.dvc_stages import render

    for path, text in render(load_catalog()).items():
        write_text(path, text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


def cmd_cost(args) -> int:
    from torchkata.pipeline.cost import main_job_report, measure, measure_tests, project_main_job, report, tests_report

    catalog = load_catalog()
    if args.tests:
        result = measure_tests(catalog)
        print(tests_report(result))
        if args.json:
            write_json(args.json, result)
        return int(result["exit_code"] != 0 or result["projected_s"] > result["budget_s"])
    if args.main:
        result = project_main_job(catalog, cores=args.cores or 8)
        print(main_job_report(result))
        if args.json:
            write_json(args.json, result)
        return int(result["projected_s"] > result["budget_s"] or bool(result["over_allotment"]))
    for exercise_id in args.ids:
        if not catalog.get(exercise_id).done:
            raise CatalogError(f"{exercise_id} is planned: it has no experiment to measure")
    result = measure(args.ids, args.scale, args.cores or 2)
    print(report(result))
    if args.json:
        write_json(args.json, result)
    return 0


def cmd_doctor(arguments: list[str]) -> int:
    # a process of its own: it pins the CPU code paths through the environment before torch loads
    return subprocess.call([sys.executable, "-m", "torchkata.pipeline.doctor", *arguments])


def cmd_mutate(arguments: list[str]) -> int:
    from torchkata.pipeline.mutation import main as mutate_main

    return mutate_main(arguments)


# commands with parsers of their own: everything after the command's name is theirs, options first too
PASS_THROUGH = {"doctor": cmd_doctor, "mutate": cmd_mutate}


def cmd_ci_sample(args) -> int:
    """What CI proves at the default scale: a sample that fits its budget, with the upstream exercises that each
    one consumes (dvc repro runs them too), chosen by the commit so that successive runs rotate."""
    from torchkata.pipeline.plan import rotating_sample

    catalog = load_catalog()

    def cost(exercise) -> float:
        return exercise.budget_s + sum(cost(catalog.get(c.source)) for c in exercise.checkpoints)

    chosen = rotating_sample(catalog.done(), args.key, args.budget, cost)
    print(" ".join(f"reproduce@{e.id}" for e in chosen))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in PASS_THROUGH:
        return PASS_THROUGH[argv[0]](argv[1:])
    parser = argparse.ArgumentParser(prog="torchkata", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="list exercises")
    p.add_argument("--topic")
    p.add_argument("--status", choices=("planned", "done"))
    p.set_defaults(func=cmd_list)
    for name, func, text in [("show", cmd_show, "show an exercise"), ("check", cmd_check, "grade your starter")]:
        p = sub.add_parser(name, help=text)
        p.add_argument("id")
        p.set_defaults(func=func)
    sub.add_parser("status", help="your progress").set_defaults(func=cmd_status)
    sub.add_parser("readme", help="rewrite README.md's progress table").set_defaults(func=cmd_readme)
    sub.add_parser("dvc", help="rewrite DVC's pipeline files from the catalog").set_defaults(func=cmd_dvc)
    p = sub.add_parser("cost", help="measure the pipeline's overhead beyond the experiments' compute")
    p.add_argument("ids", nargs="*", default=["a01", "a41"], help="done exercises (default: a01 a41)")
    p.add_argument("--scale", choices=SCALES, default="smoke")
    p.add_argument("--cores", type=int, default=None, help="default: 2 (8 with --main)")
    p.add_argument("--main", action="store_true",
                   help="project the main job instead, from the measured default-scale runs and the allotments; "
                        "exit 1 over its 2 hours or where an exercise runs over its allotment")
    p.add_argument("--tests", action="store_true",
                   help="run the README's test command and project its time to the catalog; exit 1 on a failed "
                        "test or over its 15 minutes")
    p.add_argument("--json", type=Path, help="also write the figures to this file")
    p.set_defaults(func=cmd_cost)
    sub.add_parser("doctor", help="does this CPU compute the committed results bit for bit? (op fingerprints; "
                                  "`torchkata doctor --help`)")
    sub.add_parser("mutate", help="mutation score: mutants of the reference, graded as a learner's starter is "
                                  "(`torchkata mutate --help`)")
    p = sub.add_parser("ci-sample", help="the exercises CI proves at the default scale")
    p.add_argument("key", help="what chooses the sample, e.g. the commit")
    p.add_argument("--budget", type=float, required=True, help="seconds of default-scale budget in all")
    p.set_defaults(func=cmd_ci_sample)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CatalogError as err:
        print(f"torchkata: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
