"""The summary of the whole catalog: one row per exercise, a CSV, and a plot."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from torchkata.pipeline.catalog import Catalog, skip_reason
from torchkata.pipeline.files import atomic_path, read_json


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
    if metrics is None:
        row.update(status="failed", note=f"no {run / 'metrics.json'}")
        return row
    row.update(status="ran", value=metrics.get(exercise.metric), bench_ratio=(bench or {}).get("ratio"),
               deterministic=None if determinism is None else determinism["bitwise_equal"])
    if variance and exercise.metric in variance["metrics"]:
        v = variance["metrics"][exercise.metric]
        row.update(seeds=v["n"], mean=v["mean"], ci95_low=v["ci95_low"], ci95_high=v["ci95_high"])
    return row


def build_summary(catalog: Catalog, results: Path, seed: int, ran: set[str], capabilities: set[str]) -> pd.DataFrame:
    return pd.DataFrame([exercise_row(results, e, seed, e.id in ran, capabilities) for e in catalog.exercises.values()])


def plot_summary(table: pd.DataFrame, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"ran": "tab:green", "failed": "tab:red", "skipped": "tab:orange", "planned": "lightgray"}
    counts = table.groupby(["topic", "status"]).size().unstack(fill_value=0)
    counts = counts[[s for s in colours if s in counts]]
    ratios = table.dropna(subset=["bench_ratio"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5), gridspec_kw={"width_ratios": [3, 2]})
    counts.plot.barh(stacked=True, ax=left, color=[colours[s] for s in counts])
    left.set(xlabel="exercises", title="catalog by topic and status")
    if len(ratios):
        right.barh(ratios["id"], ratios["bench_ratio"], color="tab:purple")
        right.axvline(1.0, color="black", linestyle="--")
        right.set(xscale="log", xlabel="time / native PyTorch op (lower is faster)", title="bench ratios")
    else:
        right.set_axis_off()
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
