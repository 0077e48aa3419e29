"""The summary of the whole catalog: one row per exercise, a CSV, an HTML table (what the report shows), a plot."""
from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from torchkata.pipeline.catalog import Catalog, skip_reason
from torchkata.pipeline.files import atomic_path, read_json
from torchkata.pipeline.runner import ERROR_FILE


def _read(path: Path):
    return read_json(path) if path.is_file() else None


def exercise_row(results: Path, exercise, seed: int, ran: bool, capabilities: set[str]) -> dict:
    row = {"id": exercise.id, "title": exercise.title, "topic": exercise.topic, "status": exercise.status,
           "metric": exercise.metric, "value": None, "bench_ratio": None, "deterministic": None,
           "seeds": None, "mean": None, "ci95_low": None, "ci95_high": None, "note": ""}
    if not exercise.done:
        return row
    reason = skip_reason(exercise, capabilities)
    if reason or not ran:
        row.update(status="skipped", note=reason or "not selected in config `exercises`")
        return row
    run = results / exercise.id / "runs" / f"seed-{seed}"
    metrics, bench = _read(run / "metrics.json"), _read(run / "bench.json")
    determinism, variance = _read(results / exercise.id / "determinism.json"), _read(results / exercise.id / "variance.json")
    errors = sorted((results / exercise.id).glob(f"*/seed-*/{ERROR_FILE}"))
    if errors or metrics is None:
        where = errors[0].parent if errors else run
        error = read_json(errors[0])["error"] if errors else f"no {run / 'metrics.json'}"
        row.update(status="failed", note=f"{where.relative_to(results / exercise.id)}: {error}")
        return row
    row.update(status="ran", value=metrics.get(exercise.metric), bench_ratio=(bench or {}).get("ratio"),
               deterministic=None if determinism is None else determinism["bitwise_equal"])
    if variance and exercise.metric in variance["metrics"]:
        v = variance["metrics"][exercise.metric]
        row.update(seeds=v["n"], mean=v["mean"], ci95_low=v["ci95_low"], ci95_high=v["ci95_high"])
    return row


def build_summary(catalog: Catalog, results: Path, seed: int, ran: set[str], capabilities: set[str]) -> pd.DataFrame:
    return pd.DataFrame([exercise_row(results, e, seed, e.id in ran, capabilities) for e in catalog.exercises.values()])


def status_counts(table: pd.DataFrame) -> str:
    """'4 ran · 177 planned': the headline of the table and of the plot."""
    return " · ".join(f"{n} {status}" for status, n in table["status"].value_counts().items())


def plot_summary(table: pd.DataFrame, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    colours = {"ran": "tab:green", "failed": "tab:red", "skipped": "tab:orange", "planned": "lightgray"}
    counts = table.groupby(["topic", "status"]).size().unstack(fill_value=0)
    counts = counts[[s for s in colours if s in counts]]
    ratios = table.dropna(subset=["bench_ratio"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5), gridspec_kw={"width_ratios": [3, 2]})
    counts.plot.barh(stacked=True, ax=left, color=[colours[s] for s in counts])
    left.set(xlabel="exercises", title="catalog by topic and status")
    if len(ratios):
        bars = right.barh(ratios["id"], ratios["bench_ratio"], color="tab:purple")
        right.bar_label(bars, labels=[f"{r:.2f}x" for r in ratios["bench_ratio"]], padding=3)
        right.axvline(1.0, color="black", linestyle="--")
        right.set(xscale="log", xlabel="time / native PyTorch op (lower is faster)", title="bench ratios")
        # plain numbers on both kinds of tick: a log axis spanning less than a decade shows only minor ones
        plain = FuncFormatter(lambda x, _: f"{x:g}")
        right.xaxis.set_major_formatter(plain)
        right.xaxis.set_minor_formatter(plain)
        right.margins(x=0.25)  # room for the labels
    else:
        right.set_axis_off()
    fig.suptitle(f"{title}: {status_counts(table)}")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


_CSS = """body { font: 14px/1.4 system-ui, sans-serif; margin: 1em; color: #1e293b; background: #fff; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #cbd5e1; padding: 0.25em 0.6em; text-align: left; }
th { background: #f1f5f9; }
td:first-child { white-space: nowrap; }"""
_NUMERIC = ["value", "bench_ratio", "seeds", "mean", "ci95_low", "ci95_high"]


def _number(value) -> str:
    return "" if pd.isna(value) else f"{value:.4g}"


def summary_html(table: pd.DataFrame, title: str) -> str:
    """A standalone page: the count per status, the exercises this run covered (ran, failed, skipped) with their
    numbers, then the planned ones. Snakemake's report shows an HTML file inline; a CSV is only a download there."""
    counts = status_counts(table)
    covered = table[table["status"] != "planned"].copy()
    planned = table[table["status"] == "planned"]
    covered[_NUMERIC] = covered[_NUMERIC].apply(pd.to_numeric)  # a column of only None would print "None"
    covered["deterministic"] = covered["deterministic"].map(lambda v: "" if pd.isna(v) else str(bool(v)).lower())
    runs = covered.to_html(index=False, na_rep="", formatters={c: _number for c in _NUMERIC}, border=0,
                           classes="runs")
    rest = planned[["id", "title", "topic"]].to_html(index=False, border=0, classes="planned")
    right = ", ".join(f".runs td:nth-child({list(covered).index(c) + 1})" for c in _NUMERIC)
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>\n'
            f"<style>\n{_CSS}\n{right} {{ text-align: right; white-space: nowrap; }}\n</style></head><body>\n"
            f"<h1>{html.escape(title)}</h1>\n<p>{counts}</p>\n<h2>Exercises in this run ({len(covered)})</h2>\n{runs}\n"
            f"<h2>Planned ({len(planned)})</h2>\n{rest}\n</body></html>\n")
