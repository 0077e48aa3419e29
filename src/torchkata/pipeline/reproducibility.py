"""The determinism and variance targets of every experiment."""
from __future__ import annotations

import math
from pathlib import Path

from torchkata.pipeline import tracking
from torchkata.pipeline.files import atomic_path, read_json, sha256, write_json
from torchkata.pipeline.doctor import cross_cpu


def deterministic_files(run_dir: Path) -> dict[str, str]:
    """sha256 of what a run promises to reproduce: metrics.json and everything under artifacts/."""
    files = [run_dir / "metrics.json", *sorted(p for p in (run_dir / "artifacts").rglob("*") if p.is_file())]
    return {str(p.relative_to(run_dir)): sha256(p) for p in files}


def compare_runs(first: Path, second: Path) -> dict:
    a, b = deterministic_files(Path(first)), deterministic_files(Path(second))
    files = {name: {"first": a.get(name), "second": b.get(name), "equal": a.get(name) == b.get(name)}
             for name in sorted(set(a) | set(b))}
    return {"first": str(first), "second": str(second),
            "bitwise_equal": all(f["equal"] for f in files.values()), "files": files}


def t_quantile_975(dof: int) -> float:
    from scipy.special import stdtrit  # Student's t quantile; scipy.stats would import in 1.3 s, this in 0.4

    return float(stdtrit(dof, 0.975))


def summarise(values: list[float]) -> dict:
    """Mean, sample std (n-1) and a 95% t-interval of the mean."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return {"n": n, "mean": mean, "std": None, "ci95_low": None, "ci95_high": None, "values": values}
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile_975(n - 1) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci95_low": mean - half, "ci95_high": mean + half, "values": values}


def check_determinism(first: Path, second: Path, out: Path, rerun_record: Path, fingerprints: Path) -> dict:
    """The determinism target: write the comparison, and what the rerun's ops say about other CPU models
    (doctor.cross_cpu); raise, naming the files, when the runs differ."""
    report = compare_runs(first, second)
    if not report["bitwise_equal"]:
        different = [name for name, f in report["files"].items() if not f["equal"]]
        raise DeterminismError(f"not deterministic: {first} and {second} differ in {', '.join(different)}")
    rerun = read_json(rerun_record)
    report["cross_cpu"] = (cross_cpu(rerun["aten_ops"], rerun["params"]["torch_version"], fingerprints)
                           if "aten_ops" in rerun else
                           {"verdict": "not traced", "why": "the rerun records its ops at the default and full scales"})
    write_json(out, report)
    return report


class DeterminismError(RuntimeError):
    pass


def aggregate_variance(run_dirs: list[Path], metrics: list[str], uri: str, experiment: str = tracking.EXPERIMENT) -> dict:
    """Log the seeds' runs to MLflow (each once), read them back from MLflow and summarise."""
    records = [read_json(Path(d) / "run.json") for d in run_dirs]
    run_ids = [tracking.log_record(uri, record, d, experiment) for record, d in zip(records, run_dirs)]
    frame = tracking.fetch_runs(uri, run_ids, experiment)
    frame = frame.assign(seed=frame["params.seed"].astype(int)).sort_values("seed")
    params = records[0]["params"]
    out = {"exercise": params["exercise"], "scale": params["scale"], "impl": params["impl"],
           "seeds": frame["seed"].tolist(), "run_ids": frame["run_id"].tolist(), "metrics": {}}
    for name in metrics:
        column = f"metrics.{name}"
        if column not in frame:
            raise KeyError(f"metric {name!r} is not in the MLflow runs of {out['exercise']}")
        out["metrics"][name] = summarise([float(v) for v in frame[column]])
    return out


def plot_variance(summary: dict, path: Path) -> None:
    """Each metric's seeds, mean and 95% interval. matplotlib's object API, no pyplot: the bookkeeping jobs
    plot in threads of one process, and pyplot's figure registry is global."""
    from matplotlib.figure import Figure

    names = list(summary["metrics"])
    fig = Figure(figsize=(3.2 * len(names), 3))
    axes = fig.subplots(1, len(names), squeeze=False)
    for ax, name in zip(axes[0], names):
        s = summary["metrics"][name]
        ax.scatter(range(s["n"]), s["values"], color="tab:blue", label="seeds")
        ax.axhline(s["mean"], color="black", label="mean")
        if s["std"] is not None:
            ax.errorbar([s["n"]], [s["mean"]], yerr=[[s["mean"] - s["ci95_low"]], [s["ci95_high"] - s["mean"]]],
                        fmt="o", color="tab:red", capsize=4, label="95% CI")
        ax.set_xticks(list(range(s["n"])) + [s["n"]], [str(x) for x in summary["seeds"]] + ["mean"])
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("seed")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"{summary['exercise']}: {len(summary['seeds'])} seeds ({summary['scale']}, {summary['impl']})",
                 fontsize=10)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


def variance_target(run_dirs: list[Path], uri: str, experiment: str, out: Path, plot: Path) -> dict:
    """The variance target: every top-level number of the runs' metrics.json, across the seeds."""
    names = scalar_metrics(read_json(Path(run_dirs[0]) / "metrics.json"))
    summary = aggregate_variance(run_dirs, names, uri, experiment)
    write_json(out, summary)
    plot_variance(summary, plot)
    return summary


def scalar_metrics(metrics: dict) -> list[str]:
    """The top-level numbers of a metrics.json: what the variance target aggregates."""
    return sorted(k for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool))
