"""The summary of the whole catalog at one scale: a row per exercise with the reference's figures, a row for a
learner's run beside it where there is one; a CSV, an HTML table (what the report shows), a plot."""
from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from torchkata.pipeline.catalog import Catalog, skip_reason
from torchkata.pipeline.bookkeeping import ERROR_FILE
from torchkata.pipeline.files import atomic_path, read_json, write_text


def _read(path: Path):
    return read_json(path) if path.is_file() else None


def exercise_row(results: Path, exercise, impl: str, scale: str, seed: int, ran: bool,
                 capabilities: set[str]) -> dict:
    row = {"id": exercise.id, "impl": impl, "title": exercise.title, "topic": exercise.topic,
           "status": exercise.status, "metric": exercise.metric, "value": None, "bench_ratio": None,
           "wall_s": None, "deterministic": None, "across_cpus": None, "seeds": None, "mean": None, "ci95_low": None,
           "ci95_high": None, "mutation_score": None, "note": ""}
    if not exercise.done:
        return row
    mutation = _read(results / exercise.id / "mutation.json")  # how strictly it is graded (`torchkata mutate`)
    row["mutation_score"] = mutation["score"] if mutation else None
    reason = skip_reason(exercise, capabilities)
    if reason or not ran:
        row.update(status="skipped", note=reason or "not selected in config `exercises`")
        return row
    base = results / exercise.id / f"{impl}-{scale}"
    run = base / "runs" / f"seed-{seed}"
    metrics, bench = _read(run / "metrics.json"), _read(run / "bench.json")
    determinism, variance = _read(base / "determinism.json"), _read(base / "variance.json")
    errors = sorted(base.glob(f"*/seed-*/{ERROR_FILE}"))
    if errors or metrics is None:
        where = errors[0].parent if errors else run
        error = read_json(errors[0])["error"] if errors else f"no {run / 'metrics.json'}"
        row.update(status="failed", note=f"{where.relative_to(results / exercise.id)}: {error}")
        return row
    row.update(status="ran", value=metrics.get(exercise.metric), bench_ratio=(bench or {}).get("ratio"),
               wall_s=(bench or {}).get("wall_s"),
               deterministic=None if determinism is None else determinism["bitwise_equal"],
               across_cpus=None if determinism is None else determinism.get("cross_cpu", {}).get("verdict"))
    skipped_halves = {k: v for k, v in ((bench or {}).get("halves") or {}).items() if v != "ran"}
    row["note"] = "; ".join(f"{k} half {v}" for k, v in skipped_halves.items())
    if variance and exercise.metric in variance["metrics"]:
        v = variance["metrics"][exercise.metric]
        row.update(seeds=v["n"], mean=v["mean"], ci95_low=v["ci95_low"], ci95_high=v["ci95_high"])
    return row


def build_summary(catalog: Catalog, results: Path, scale: str, seed: int, ran: set[str], capabilities: set[str],
                  impl: str = "reference") -> pd.DataFrame:
    """The reference's row of every exercise, and a starter row beside it wherever a learner's run at this scale
    exists. A reference result on disk is shown also when this call did not select it (a learner's call for one
    exercise must not blank the others' rows of the same scale's table)."""
    rows = []
    for e in catalog.exercises.values():
        shown = (impl == "reference" and e.id in ran) or (results / e.id / f"reference-{scale}").is_dir()
        rows.append(exercise_row(results, e, "reference", scale, seed, shown, capabilities))
        if e.done and (impl == "starter" and e.id in ran or (results / e.id / f"starter-{scale}").is_dir()):
            rows.append(exercise_row(results, e, "starter", scale, seed, True, capabilities))
    return pd.DataFrame(rows)


def status_counts(table: pd.DataFrame) -> str:
    """'4 ran · 177 planned': the headline of the table and of the plot."""
    return " · ".join(f"{n} {status}" for status, n in table["status"].value_counts().items())


def plot_summary(table: pd.DataFrame, path: Path, title: str) -> None:
    """Status by topic, bench ratios, and each run's wall time: the cost of the catalog in one picture.
    matplotlib's object API, no pyplot: the summary is drawn in a thread of Snakemake's process."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    colours = {"ran": "tab:green", "failed": "tab:red", "skipped": "tab:orange", "planned": "lightgray"}
    reference = table[table["impl"] == "reference"]
    counts = reference.groupby(["topic", "status"]).size().unstack(fill_value=0)
    ran = table[table["status"] == "ran"].assign(label=lambda t: t["id"] + " (" + t["impl"] + ")")
    fig = Figure(figsize=(15, max(5, 0.22 * len(counts), 0.22 * len(ran))))
    left, middle, right = fig.subplots(1, 3, gridspec_kw={"width_ratios": [3, 2, 2]})
    start = pd.Series(0, index=counts.index)
    for status in (s for s in colours if s in counts):
        left.barh(counts.index, counts[status], left=start, color=colours[status], label=status)
        start = start + counts[status]
    left.legend(fontsize=8)
    left.set(xlabel="exercises", title="catalog by topic and status")
    plain = FuncFormatter(lambda x, _: f"{x:g}")  # a log axis spanning less than a decade shows only minor ticks
    for ax, column, colour, xlabel, fmt in [
        (middle, "bench_ratio", "tab:purple", "time / native PyTorch op (lower is faster)", "{:.2f}x"),
        (right, "wall_s", "tab:blue", "wall time of the result run (s)", "{:.1f} s"),
    ]:
        shown = ran.dropna(subset=[column])
        if not len(shown):
            ax.set_axis_off()
            continue
        bars = ax.barh(shown["label"], shown[column], color=colour)
        ax.bar_label(bars, labels=[fmt.format(v) for v in shown[column]], padding=3, fontsize=8)
        ax.set(xscale="log", xlabel=xlabel, title=column.replace("_", " "))
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(plain)
        ax.margins(x=0.3)  # room for the labels
        ax.tick_params(axis="y", labelsize=8)
    middle.axvline(1.0, color="black", linestyle="--")
    fig.suptitle(f"{title}: {status_counts(reference)}")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


_CSS = """body { font: 14px/1.4 system-ui, sans-serif; margin: 1em; color: #1e293b; background: #fff; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #cbd5e1; padding: 0.25em 0.6em; text-align: left; }
th { background: #f1f5f9; }
td:first-child { white-space: nowrap; }"""
_NUMERIC = ["value", "bench_ratio", "wall_s", "seeds", "mean", "ci95_low", "ci95_high", "mutation_score"]


def _number(value) -> str:
    return "" if pd.isna(value) else f"{value:.4g}"


def learner_comparison(table: pd.DataFrame) -> pd.DataFrame:
    """Per exercise with a learner's run: the starter's figures beside the reference's."""
    keep = ["id", "status", "value", "deterministic", "mean", "ci95_low", "ci95_high", "note"]
    by_impl = {impl: table[table["impl"] == impl][keep].set_index("id") for impl in ("reference", "starter")}
    joined = by_impl["starter"].merge(by_impl["reference"], how="left", left_index=True, right_index=True,
                                      suffixes=("_starter", "_reference"))
    return joined.reset_index()


def summary_html(table: pd.DataFrame, title: str) -> str:
    """A standalone page: the count per status, the exercises this run covered (ran, failed, skipped) with their
    numbers, the learners' runs beside the reference's, then the planned ones. Snakemake's report shows an HTML
    file inline; a CSV is only a download there."""
    counts = status_counts(table[table["impl"] == "reference"])
    covered = table[table["status"] != "planned"].copy()
    planned = table[table["status"] == "planned"]
    covered[_NUMERIC] = covered[_NUMERIC].apply(pd.to_numeric)  # a column of only None would print "None"
    covered["deterministic"] = covered["deterministic"].map(lambda v: "" if pd.isna(v) else str(bool(v)).lower())
    runs = covered.to_html(index=False, na_rep="", formatters={c: _number for c in _NUMERIC}, border=0,
                           classes="runs")
    comparison = learner_comparison(table)
    learners = ("" if comparison.empty else
                f"<h2>Your solutions beside the reference ({len(comparison)})</h2>\n"
                + comparison.to_html(index=False, na_rep="", border=0, classes="learner",
                                     float_format=lambda v: f"{v:.4g}") + "\n")
    rest = planned[["id", "title", "topic"]].to_html(index=False, border=0, classes="planned")
    right = ", ".join(f".runs td:nth-child({list(covered).index(c) + 1})" for c in _NUMERIC)
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>\n'
            f"<style>\n{_CSS}\n{right} {{ text-align: right; white-space: nowrap; }}\n</style></head><body>\n"
            f"<h1>{html.escape(title)}</h1>\n<p>{counts}</p>\n<h2>Exercises in this run ({len(covered)})</h2>\n{runs}\n"
            f"{learners}<h2>Planned ({len(planned)})</h2>\n{rest}\n</body></html>\n")


def write_summary(table: pd.DataFrame, files: dict[str, Path], title: str) -> None:
    """summary.csv, summary.html and summary.png (files: {"csv": path, "html": path, "png": path})."""
    with atomic_path(files["csv"]) as tmp:
        table.to_csv(tmp, index=False)
    write_text(files["html"], summary_html(table, title))
    plot_summary(table, Path(files["png"]), title)
