"""The summary table: the reference's rows, a learner's beside them, the grader's mutation score."""
from torchkata.pipeline.catalog import load_catalog
from torchkata.pipeline.files import write_json
from torchkata.pipeline.summary import build_summary, summary_html


def finished(results, exercise_id, variant, value):
    base = results / exercise_id / variant
    write_json(base / "runs" / "seed-0" / "metrics.json", {"max_abs_error": value})
    write_json(base / "runs" / "seed-0" / "bench.json", {"ratio": 1.5, "wall_s": 0.4, "run_s": 0.2})
    write_json(base / "determinism.json", {"bitwise_equal": True})


def test_rows_for_the_reference_the_learner_and_the_mutation_score(tmp_path):
    finished(tmp_path, "a01", "reference-smoke", 1e-15)
    finished(tmp_path, "a01", "starter-smoke", 0.5)
    finished(tmp_path, "a41", "reference-smoke", 0.0)
    write_json(tmp_path / "a01" / "mutation.json", {"score": 0.97})
    # a learner's call for a01 alone: a41's reference result on disk keeps its row
    table = build_summary(load_catalog(), tmp_path, "smoke", 0, {"a01"}, {"cpu"}, impl="starter")
    rows = table.set_index(["id", "impl"])
    assert rows.loc[("a01", "reference"), "value"] == 1e-15 and rows.loc[("a01", "starter"), "value"] == 0.5
    assert rows.loc[("a41", "reference"), "status"] == "ran"
    assert rows.loc[("a01", "reference"), "mutation_score"] == 0.97
    assert rows.loc[("a01", "reference"), "wall_s"] == 0.4
    assert ("b04-06", "starter") not in rows.index  # no learner's run, no learner's row
    page = summary_html(table, "t")
    assert "Your solutions beside the reference (1)" in page and "mutation_score" in page


def test_a_missing_result_is_a_failure_with_its_path(tmp_path):
    (tmp_path / "a01" / "reference-smoke").mkdir(parents=True)
    table = build_summary(load_catalog(), tmp_path, "smoke", 0, {"a01"}, {"cpu"})
    row = table.set_index(["id", "impl"]).loc[("a01", "reference")]
    assert row["status"] == "failed" and "runs/seed-0/metrics.json" in row["note"]


def test_a_skipped_half_is_noted_beside_the_result(tmp_path):
    finished(tmp_path, "a01", "reference-smoke", 1e-15)
    write_json(tmp_path / "a01" / "reference-smoke" / "runs" / "seed-0" / "bench.json",
               {"ratio": 1.5, "wall_s": 0.4, "halves": {"cuda": "skipped: no CUDA device"}})
    row = build_summary(load_catalog(), tmp_path, "smoke", 0, {"a01"}, {"cpu"}).set_index("id").loc["a01"]
    assert row["status"] == "ran" and row["note"] == "cuda half skipped: no CUDA device"
