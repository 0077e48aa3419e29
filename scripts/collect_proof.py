"""Gather the deterministic outputs of every result run into results/proof/ for DVC to hash."""
import argparse
import shutil
from pathlib import Path

from torchkata.pipeline.files import read_json, write_json

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("metrics", type=Path, nargs="+", help="results/<id>/runs/seed-S/metrics.json")
parser.add_argument("--metrics-out", dest="metrics_out", type=Path, required=True)
parser.add_argument("--artifacts", type=Path, required=True)
args = parser.parse_args()
combined = {}
for path in args.metrics:
    exercise = path.parents[2].name
    combined[exercise] = read_json(path)
    source = path.parent / "artifacts"
    if source.is_dir():
        shutil.copytree(source, args.artifacts / exercise)
args.artifacts.mkdir(parents=True, exist_ok=True)
write_json(args.metrics_out, combined)
