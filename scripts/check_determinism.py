"""Compare two runs of the same seed byte for byte (metrics.json and artifacts); fail on any difference."""
import argparse
import sys
from pathlib import Path

from torchkata.pipeline.files import write_json
from torchkata.pipeline.reproducibility import compare_runs

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("first", type=Path)
parser.add_argument("second", type=Path)
parser.add_argument("--out", type=Path, required=True)
args = parser.parse_args()
report = compare_runs(args.first, args.second)
for name, f in report["files"].items():
    print(f"{'same' if f['equal'] else 'DIFFERENT'}  {name}  {f['first']}  {f['second']}")
if not report["bitwise_equal"]:
    sys.exit(f"not deterministic: {args.first} and {args.second} differ (see above)")
write_json(args.out, report)
