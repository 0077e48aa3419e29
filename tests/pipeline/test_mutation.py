"""Mutation testing of the graders (torchkata.pipeline.mutation), on a tiny fake project: one exercise whose
reference has ten mutants, graded like a real one: `--impl starter`, each mutant loaded from its file as the
learner's starter. (Its reference module is not importable and its real starter raises, and a suite check
fails: a mutant graded any other way, or the clean reference, would fail, and mutate would refuse.)"""
from __future__ import annotations

import json
import textwrap

import pytest

from torchkata.pipeline.mutation import MutationError, generate, mutate, report

# 10 mutants (a call such as math.prod has none; `x * factor` would add 11, and seconds to every test)
REFERENCE = '''\
import math


def scale(x, factor=2):
    """x times factor; a negative x is refused."""
    if x < 0:
        raise ValueError("negative")
    return math.prod((x, factor))
'''

CONFTEST = '''\
from pathlib import Path

import pytest

from torchkata.pipeline.catalog import load_catalog, load_impl

ROOT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser):
    parser.addoption("--impl", choices=("reference", "starter"), default="reference")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--impl") == "starter":
        for item in items:
            if "suite_check" in item.keywords:
                item.add_marker(pytest.mark.skip(reason="checks the suite"))


@pytest.fixture(scope="session")
def impl_for(request):
    catalog = load_catalog(ROOT / "catalog.yaml")
    return lambda exercise_id: load_impl(catalog.get(exercise_id), request.config.getoption("--impl"))
'''

TESTS = '''\
import pytest


@pytest.fixture
def scale(impl_for):
    return impl_for("z01").scale


def test_values(scale):
    assert scale(3, factor=2) == 6  # `factor` always given: its default is never checked
    assert scale(5, factor=3) == 15


def test_negative_is_refused(scale):
    with pytest.raises(ValueError):
        scale(-1, factor=2)


@pytest.mark.suite_check
def test_never_run_on_a_starter():
    raise AssertionError("a suite check must not grade a mutant")  # nor the clean reference: mutate would refuse
'''

CATALOG = '''\
exercises:
- id: z01
  title: scale by hand
  topic: tensors
  difficulty: beginner
  needs: [cpu]
  status: done
  seed: {document: none, item: none}
  reference: fakekata.scaling
  metric: none
'''


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    for path, text in {"catalog.yaml": CATALOG, "src/fakekata/__init__.py": "", "src/fakekata/scaling.py": REFERENCE,
                       "problems/z01/starter.py": "def scale(x, factor=2):\n    raise NotImplementedError\n",
                       "tests/conftest.py": CONFTEST, "tests/exercises/test_z01.py": TESTS,
                       "pytest.ini": "[pytest]\nmarkers =\n    suite_check: checks the suite\n"}.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(textwrap.dedent(text))
    return root


def run(project, **kwargs):
    return mutate("z01", root=project, preload=("pytest", "torchkata.pipeline.catalog"), jobs=2, **kwargs)


def by_change(mutants, text):
    (found,) = [m for m in mutants if m.change.endswith(text)]
    return found


def test_mutants_are_the_reference_changed_in_one_place(project, tmp_path):
    mutants = generate(project / "src/fakekata/scaling.py", tmp_path / "s.sqlite", project)
    assert len({m.id for m in mutants}) == len(mutants)  # ids are unique
    assert len(mutants) == 10
    default = by_change(mutants, "def scale(x, factor= 3):")
    assert default.place == "src/fakekata/scaling.py:4" and default.id == "NumberReplacer@4:20/0"
    assert default.change == "def scale(x, factor=2): -> def scale(x, factor= 3):"
    assert default.function == "scale"
    assert all(m.source != REFERENCE and compile(m.source, "m", "exec") for m in mutants)


def test_invalid_code_from_the_tool_is_left_out(tmp_path):
    # cosmic-ray 8.7 takes a bare `*` (keyword-only marker) for a multiplication: `+`, `-`, ... there is no Python
    module = tmp_path / "keywords.py"
    module.write_text("def scale(x, *, factor=2):\n    return x\n")
    mutants = generate(module, tmp_path / "s.sqlite", tmp_path)
    invalid = [m for m in mutants if not m.compiles]
    assert invalid and all(m.id.startswith("ReplaceBinaryOperator_Mul_") for m in invalid)
    assert sorted(m.change.split(" -> ")[1] for m in mutants if m.compiles) == [
        "def scale(x, *, factor= 1):", "def scale(x, *, factor= 3):",
        "def scale(x, /, factor=2):"]  # valid, and a real change: `factor` may then be passed by position


@pytest.mark.parametrize("future", [True, False], ids=["postponed", "evaluated"])
def test_annotations_python_never_evaluates_are_left_out(tmp_path, future):
    """Under `from __future__ import annotations` an annotation stays a string: changing it changes nothing."""
    module = tmp_path / "typed.py"
    module.write_text(("from __future__ import annotations\n" if future else "")
                      + "def f(x: int | None = None) -> int | None:\n    return x - 1\n")
    mutants = generate(module, tmp_path / "s.sqlite", tmp_path)
    def_line = 2 if future else 1
    on_def = [m for m in mutants if m.place.endswith(f":{def_line}")]  # the `|` of both annotations
    in_body = [m for m in mutants if m.place.endswith(f":{def_line + 1}")]  # `x - 1`
    assert len(on_def) > 2 and in_body
    assert all(m.in_annotation == future for m in on_def)  # evaluated when the def runs: `int - None` raises
    assert not any(m.in_annotation for m in in_body)


def test_killed_survived_and_the_score(project, tmp_path):
    result = run(project, session=tmp_path / "session.sqlite")
    assert result["tool"] == "cosmic-ray" and result["tool_version"].startswith("8.")
    assert (result["mutants"], result["equivalent"], result["timed_out"]) == (10, [], 0)
    # no test uses the default factor, nor tries x = 0: these wrong solutions pass, and are named
    assert {(s["place"], s["change"]) for s in result["survivors"]} == {
        ("src/fakekata/scaling.py:4", "def scale(x, factor=2): -> def scale(x, factor= 3):"),
        ("src/fakekata/scaling.py:4", "def scale(x, factor=2): -> def scale(x, factor= 1):"),
        ("src/fakekata/scaling.py:6", "if x < 0: -> if x <= 0:"),
        ("src/fakekata/scaling.py:6", "if x < 0: -> if x < 1:")}
    assert (result["killed"], result["survived"], result["score"]) == (6, 4, 0.6)
    # the rest are caught, each by the test that checks what it broke
    killed = result["killed_by"]
    assert killed["ReplaceComparisonOperator_Lt_NotEq@6:9"].endswith("test_values")  # x != 0: scale(3) refused
    assert killed["NumberReplacer@6:11/1"].endswith("test_negative_is_refused")  # x < -1: scale(-1) accepted
    assert "src/fakekata/scaling.py:6  if x < 0: -> if x <= 0:" in report(result)
    json.dumps(result)  # what results/<id>/mutation.json holds
    assert (tmp_path / "session.sqlite").is_file()  # cosmic-ray's own session, for cr-report


def test_a_listed_equivalent_leaves_the_denominator(project):
    listing = project / "problems/z01/equivalent_mutants.yaml"
    listing.write_text("- id: NumberReplacer@4:20/0\n  reason: the exercise leaves the default to the learner\n"
                       "- place: src/fakekata/scaling.py:6\n  change: 'if x < 0: -> if x <= 0:'\n"
                       "  reason: listed by place and change\n")
    result = run(project)
    assert [e["id"] for e in result["equivalent"]] == ["NumberReplacer@4:20/0", "ReplaceComparisonOperator_Lt_LtE@6:9"]
    assert result["equivalent"][0]["reason"] == "the exercise leaves the default to the learner"
    assert (result["mutants"], result["killed"], result["survived"], result["score"]) == (10, 6, 2, 0.75)
    assert not {s["id"] for s in result["survivors"]} & {e["id"] for e in result["equivalent"]}


def test_a_stale_listing_is_an_error_that_names_it(project):
    listing = project / "problems/z01/equivalent_mutants.yaml"
    listing.write_text("- id: NumberReplacer@9:9\n  reason: the line moved\n")
    with pytest.raises(MutationError, match="NumberReplacer@9:9 is not a mutant"):
        run(project)
    listing.write_text("- id: NumberReplacer@4:20/0\n")
    with pytest.raises(MutationError, match="needs a reason"):
        run(project)


def test_a_grader_that_rejects_the_reference_is_an_error(project):
    (project / "tests/exercises/test_z01.py").write_text(TESTS + "\n\ndef test_wrong(scale):\n    assert scale(1) == 3\n")
    with pytest.raises(MutationError, match="rejects the unmutated reference"):
        run(project)


def test_a_mutant_that_never_ends_is_timed_out(project):
    (project / "src/fakekata/scaling.py").write_text(
        "import math\n\n\ndef scale(x, factor=2):\n    while False:  # `while True` never ends\n        pass\n"
        "    if x < 0:\n        raise ValueError\n    return math.prod((x, factor))\n")
    result = run(project, timeout_s=1.5)
    assert sorted(m["change"].split(" -> ")[1] for m in result["timed_out_mutants"]) == [
        "while True:  # `while True` never ends", "while not False:  # `while True` never ends"]
    assert result["timed_out"] == 2 and result["timeout_s"] == 1.5
    # a grading that never ends is no pass: the mutant counts as rejected
    assert result["score"] == round((result["killed"] + 2) / result["mutants"], 4)


def test_mutants_that_would_outlast_the_budget_are_not_graded(project):
    """The clean grading times one mutant; a sample's exercise whose mutants would take longer is passed over."""
    assert run(project, budget_s=1e-3) is None
    assert run(project, budget_s=600)["mutants"] > 0


# What the source holds where an operator's mutant starts (line, column): the token it replaces. Generating the real
# mutants takes up to a minute a module; this text check runs in milliseconds and catches a listing left behind by
# an edit that moved the code (the listed position then points at something else).
OPERATOR_TOKENS = {
    "Eq": "==", "NotEq": "!=", "LtE": "<=", "Lt": "<", "GtE": ">=", "Gt": ">", "IsNot": "is not", "Is": "is",
    "NotIn": "not in", "In": "in", "Add": "+", "Sub": "-", "Mul": "*", "Div": "/", "FloorDiv": "//", "Mod": "%",
    "Pow": "**", "LShift": "<<", "RShift": ">>", "BitOr": "|", "BitAnd": "&", "BitXor": "^", "USub": "-",
    "UAdd": "+", "Invert": "~", "Not": "not",
}
KEYWORD_TOKENS = {"RemoveDecorator": "@", "ReplaceTrueWithFalse": "True", "ReplaceFalseWithTrue": "False",
                  "ReplaceAndWithOr": "and", "ReplaceOrWithAnd": "or", "ReplaceBreakWithContinue": "break",
                  "ReplaceContinueWithBreak": "continue"}


def expected_token(operator: str) -> tuple[str, ...] | None:
    """The texts a mutant of this operator can start at; None where the position says nothing checkable."""
    if operator in KEYWORD_TOKENS:
        return (KEYWORD_TOKENS[operator],)
    if operator == "NumberReplacer":
        return tuple("0123456789.")
    family, _, kinds = operator.partition("_")
    if family in ("ReplaceComparisonOperator", "ReplaceBinaryOperator", "ReplaceUnaryOperator"):
        original = kinds.split("_")[0]
        return (OPERATOR_TOKENS[original],) if original in OPERATOR_TOKENS else None
    return None


def listed_equivalents():
    from torchkata.pipeline.catalog import ROOT, load_catalog
    from torchkata.pipeline.mutation import EQUIVALENTS_FILE, reference_file

    import yaml

    for exercise in load_catalog().done():
        listing = ROOT / "problems" / exercise.id / EQUIVALENTS_FILE
        if listing.is_file() and exercise.reference:
            for entry in yaml.safe_load(listing.read_text(encoding="utf-8")) or []:
                yield pytest.param(reference_file(exercise.reference), entry, id=f"{exercise.id}:{entry.get('id')}")


@pytest.mark.parametrize("reference, entry", list(listed_equivalents()))
def test_a_listed_equivalent_still_points_at_its_operator(reference, entry):
    """Every reviewed equivalent of a done exercise names a place in its reference that still holds what the
    mutant changes (`torchkata mutate` refuses a stale listing; CI would find it only when it samples the exercise)."""
    lines = reference.read_text(encoding="utf-8").splitlines()
    if "id" in entry:
        operator, _, position = str(entry["id"]).partition("@")
        line, column = (int(n) for n in position.split("/")[0].split(":"))
        source = lines[line - 1] if line <= len(lines) else ""
        if operator == "ZeroIterationForLoop":  # its position is the loop's iterable
            assert source[:column].rstrip().endswith(" in") and "for " in source, f"{reference}:{line}: {source!r}"
            return
        tokens = expected_token(operator)
        if tokens is None:
            pytest.skip(f"{operator}: no token to check at its position")
        text = source[column:]
        assert text.startswith(tokens), f"{reference}:{line}:{column} holds {text[:30]!r}, not {operator}'s {tokens}"
    else:
        line = int(str(entry["place"]).rpartition(":")[2])
        before = str(entry["change"]).split(" -> ")[0]
        assert before.startswith(lines[line - 1].strip()), f"{entry['place']} no longer holds {before!r}"
