"""Write results/summary/: a row per catalog exercise (ran, planned, skipped with the reason, failed) as a CSV
and an HTML table (the report shows the latter), and a plot."""
import argparse
from pathlib import Path

from torchkata.pipeline.catalog import load_catalog
from torchkata.pipeline.files import atomic_path, write_text
from torchkata.pipeline.summary import build_summary, plot_summary, status_counts, summary_html

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--ran", required=True, help="comma-separated ids this run covered, or 'none'")
parser.add_argument("--capabilities", required=True)
parser.add_argument("--scale", required=True)
parser.add_argument("--seed", type=int, required=True)
parser.add_argument("--results", type=Path, default=Path("results"))
parser.add_argument("--out-dir", type=Path, required=True)
args = parser.parse_args()
ran = set() if args.ran == "none" else set(args.ran.split(","))
table = build_summary(load_catalog(), args.results, args.seed, ran, set(args.capabilities.split(",")))
with atomic_path(args.out_dir / "summary.csv") as tmp:
    table.to_csv(tmp, index=False)
title = f"torchkata at scale {args.scale}"
write_text(args.out_dir / "summary.html", summary_html(table, title))
plot_summary(table, args.out_dir / "summary.png", title)
print(table[table["status"] != "planned"].to_string(index=False))
print(status_counts(table))
