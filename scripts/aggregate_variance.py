"""Aggregate an exercise's seeded runs from MLflow into mean, sample std and 95% interval, with a plot."""
import argparse
from pathlib import Path

from torchkata.pipeline.files import read_json, write_json
from torchkata.pipeline.reproducibility import aggregate_variance, plot_variance, scalar_metrics

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("runs", type=Path, nargs="+", help="run.json of each seed")
parser.add_argument("--out", type=Path, required=True)
parser.add_argument("--plot", type=Path, required=True)
args = parser.parse_args()
names = scalar_metrics(read_json(args.runs[0].with_name("metrics.json")))
summary = aggregate_variance(args.runs, names)
write_json(args.out, summary)
plot_variance(summary, args.plot)
for name, s in summary["metrics"].items():
    print(f"{name}: mean {s['mean']:.6g}, std {s['std']:.3g}, 95% CI [{s['ci95_low']:.6g}, {s['ci95_high']:.6g}]")
